package io.tailguard.actors.runtime;

import org.apache.pekko.actor.typed.receptionist.ServiceKey;

/**
 * What a run reports to whoever watches it (the `train` command's progress display and report):
 * one event per learner step, per controller window, and the end. Observers register under
 * {@link #KEY}; the learner and controller find them through the receptionist, on any node.
 */
public final class RunObserver {
    public static final ServiceKey<Event> KEY = ServiceKey.create(Event.class, "tailguard-run-observer");

    private RunObserver() {
    }

    public sealed interface Event permits Step, Window, Finished, Evaluated, Compressed, Rollout {}

    /** One learner step: its batch and its update (lr: the learning rate this step used). */
    public record Step(int step, long policyVersion, double reward, double passRate, int groups, int droppedDegenerate,
                       int droppedStale, int staleness, double loss, double clipFraction, double tisTruncated,
                       double klK3, double learnSeconds, long tokens, double rolloutTokensPerSecond, long timeMillis, double lr)
            implements Event, Wire {}

    /**
     * One controller window: the closed window's p5 α per bin (and its tokens), the budgets after
     * the decision (the plain policy's), the rollout options ({@code option}), and what the controller
     * judged each bin of the option in use on: judgedP5 and judgedTokens, that option's kept windows
     * merged at its bin's budget (the evidence a raise or a hold rests on; NaN and 0 where it had none;
     * the plain policy's own while it is in use), and that option's sequence α over the same windows
     * (NaN: not judged).
     */
    public record Window(long timeMillis, long scheduleVersion, int[] budgets, double[] alphaP5, long[] tokens, double tau,
                         double predictedSpeedup, String[] changes, OptionWindow option, double[] judgedP5, long[] judgedTokens,
                         double sequenceAlpha)
            implements Event, Wire {
        /** Without a sequence α (not judged). */
        public Window(long timeMillis, long scheduleVersion, int[] budgets, double[] alphaP5, long[] tokens, double tau,
                      double predictedSpeedup, String[] changes, OptionWindow option, double[] judgedP5, long[] judgedTokens) {
            this(timeMillis, scheduleVersion, budgets, alphaP5, tokens, tau, predictedSpeedup, changes, option, judgedP5, judgedTokens,
                    Double.NaN);
        }

        /** A window judged on its own tails alone (one kept window). */
        public Window(long timeMillis, long scheduleVersion, int[] budgets, double[] alphaP5, long[] tokens, double tau,
                      double predictedSpeedup, String[] changes, OptionWindow option) {
            this(timeMillis, scheduleVersion, budgets, alphaP5, tokens, tau, predictedSpeedup, changes, option, alphaP5, tokens, Double.NaN);
        }
    }

    /**
     * A controller window from the plain policy's budget decision and the rollout options' window;
     * chosenSpeedup: the cost model's speedup of the option in use over dense plain decode.
     */
    static Window window(long timeMillis, io.tailguard.rollout.sparse.BudgetController.Decision d, double tau, double predictedSpeedup,
                         long compressedVersion, OptionBook.Window options, double chosenSpeedup) {
        int bins = d.schedule().binCount();
        long[] tokens = new long[bins];
        double[] p5 = new double[bins];
        java.util.Arrays.fill(p5, Double.NaN);
        for (io.tailguard.rollout.sparse.BudgetController.WindowTail t : d.window()) {
            if (t.bin() < bins) {
                tokens[t.bin()] = t.tokens();
                p5[t.bin()] = t.p5();
            }
        }
        String[] changes = d.changes().stream().map(c -> "bin " + c.bin() + ": " + c.from() + " -> " + c.to() + " (" + c.reason() + ")")
                .toArray(String[]::new);
        var cd = options.decision();
        var chosen = cd.chosen();
        // judged: the tail of the option in use (the plain policy's when it is), over the kept windows at its budgets
        double[] judgedP5 = new double[bins];
        long[] judgedTokens = new long[bins];
        java.util.Arrays.fill(judgedP5, Double.NaN);
        for (int b = 0; b < Math.min(bins, chosen.p5().length); b++) {
            judgedP5[b] = chosen.p5()[b];
            judgedTokens[b] = chosen.tokens()[b];
        }
        // "the" compressed option of the older fields: the one in use, else the newest offered
        var featured = chosen.version() >= 0 ? chosen : null;
        for (var o : cd.options()) {
            if (featured == null && o.version() == compressedVersion && o.version() >= 0) {
                featured = o;
            }
        }
        double[] cp5 = featured == null ? new double[0] : featured.p5();
        return new Window(timeMillis, d.schedule().version(), d.schedule().budgets(), p5, tokens, tau, predictedSpeedup, changes,
                new OptionWindow(compressedVersion, chosen.version() >= 0, cp5, options.plainTokens(), options.compressedTokens(),
                        cd.changed() ? cd.reason() : null, chosen.label(), chosen.version(), chosen.schedule().version(),
                        chosen.schedule().budgets(), chosenSpeedup, chosen.tokensPerSecond(), cd.options().get(0).tokensPerSecond()),
                judgedP5, judgedTokens, chosen.sequenceAlpha());
    }

    /**
     * The rollout options in one window: the newest compressed version offered (−1: none), whether a
     * compressed option had the bulk of the leases after the decision, the p5 α per bin of the
     * compressed option in use (else of the newest offered) at its budgets over the kept windows
     * (NaN: no tokens), the window's rollout tokens of the plain policy and of the compressed
     * options, and the decision's reason when the option in use changed (else null). Then the
     * option in use after the decision, the chosen combination: its format's label ("plain" or e.g.
     * "yaqa_b4"), compressed version (−1: plain), schedule version and budgets, the cost model's
     * speedup of it over dense plain decode, and its measured generation tokens per second over the
     * kept windows next to the plain policy's (NaN: no lease).
     */
    public record OptionWindow(long compressedVersion, boolean compressedInUse, double[] compressedP5, long plainTokens,
                               long compressedTokens, String change, String inUse, long inUseVersion, long inUseScheduleVersion,
                               int[] inUseBudgets, double inUsePredictedSpeedup, double inUseTokensPerSecond,
                               double plainTokensPerSecond) implements Wire {
        /** Measured tokens per second of the option in use over the plain policy's (NaN: either had no lease). */
        public double measuredSpeedupVsPlain() {
            return inUseTokensPerSecond / plainTokensPerSecond;
        }
    }

    /**
     * Held-out greedy pass@1 of the learner's policy at a step (the start, every
     * tailguard.train.eval-every steps, the end): timeMillis when the evaluation began (the policy
     * of that step existed then), seconds it took.
     */
    public record Evaluated(int step, double passAt1, long timeMillis, double seconds) implements Event, Wire {}

    /** The compression worker compressed policy version `version`: KL per token to it, bytes of the codes. */
    public record Compressed(long version, String method, int bits, double kl, long bytes, double seconds, String dir)
            implements Event, Wire {}

    /**
     * One lease's rollout, as its worker timed it: the generation's prefill and decode seconds
     * (decode: the decode loop with sampling, {@code decodeSteps} steps over a batch of
     * {@code sequences}), under schedule version {@code scheduleVersion}. When the lease measured the
     * rollout speedup ({@code measured}; tailguard.rollout.speedup-every), the same tokens were also
     * decoded densely in lockstep: liveStepSeconds and denseStepSeconds are each mode's timed decode
     * steps, densePrefillSeconds the dense cache's prefill, and predictedLiveSeconds and
     * predictedDenseSeconds the cost model's for the same steps; all NaN when not measured. option:
     * the weights that sampled, {@link #PLAIN} (the policy's own) or a compressed version's
     * {@link CompressedPublished#option()}; the dense reference is always the policy's own weights.
     * The lease's worker seconds by phase: generateSeconds, the whole generation (a measured lease's
     * dense reference included); scoreSeconds, the dense teacher-forced scoring of the α sample (0
     * for a lease the dense policy sampled itself); shadowSeconds, the shadow replay.
     */
    public record Rollout(long timeMillis, String worker, long lease, long scheduleVersion, int sequences, int decodeSteps,
                          double prefillSeconds, double decodeSeconds, boolean measured, double liveStepSeconds,
                          double denseStepSeconds, double densePrefillSeconds, double predictedLiveSeconds,
                          double predictedDenseSeconds, String option, double generateSeconds, double scoreSeconds,
                          double shadowSeconds) implements Event, Wire {
        /** {@link #option}: the policy's own float32 weights. */
        public static final String PLAIN = io.tailguard.rollout.sparse.ApproximationBudget.PLAIN;

        /** Measured dense over live decode-step seconds (NaN when not measured). */
        public double speedup() {
            return measured ? denseStepSeconds / liveStepSeconds : Double.NaN;
        }

        /** The cost model's dense over live seconds for the same decode steps (NaN when not measured). */
        public double predictedSpeedup() {
            return measured ? predictedDenseSeconds / predictedLiveSeconds : Double.NaN;
        }

        /** The measured lease's dense reference (its prefill and decode steps), 0 when not measured: worker time the lease's option does not cost. */
        public double referenceSeconds() {
            return measured ? densePrefillSeconds + denseStepSeconds : 0;
        }

        /** Share of the lease's rollout wall time (prefill and decode) spent decoding. */
        public double decodeFraction() {
            return decodeSeconds / (prefillSeconds + decodeSeconds);
        }
    }

    /** The learner is done (all steps, or the time limit). */
    public record Finished(int steps, String reason) implements Event, Wire {}
}
