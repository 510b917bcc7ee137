package io.tailguard.actors.runtime;

import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.receptionist.Receptionist;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * The `train` command's observer: records every event for the report, prints a progress line per
 * learner step and per schedule change (stderr), and completes {@link #finished()} at the end.
 */
public final class RunRecorder {
    private final List<RunObserver.Step> steps = Collections.synchronizedList(new ArrayList<>());
    private final List<RunObserver.Window> windows = Collections.synchronizedList(new ArrayList<>());
    private final List<RunObserver.Evaluated> evals = Collections.synchronizedList(new ArrayList<>());
    private final List<RunObserver.Compressed> compressed = Collections.synchronizedList(new ArrayList<>());
    private final List<RunObserver.Rollout> rollouts = Collections.synchronizedList(new ArrayList<>());
    private final CompletableFuture<RunObserver.Finished> finished = new CompletableFuture<>();
    private final PrintStream out;
    private final int totalSteps;
    private volatile RunObserver.Window last;

    public RunRecorder(PrintStream progress, int totalSteps) {
        this.out = progress;
        this.totalSteps = totalSteps;
    }

    public Behavior<RunObserver.Event> behavior() {
        return Behaviors.setup(ctx -> {
            ctx.getSystem().receptionist().tell(Receptionist.register(RunObserver.KEY, ctx.getSelf()));
            return Behaviors.receiveMessage(e -> {
                on(e);
                return Behaviors.same();
            });
        });
    }

    void on(RunObserver.Event e) {
        if (e instanceof RunObserver.Step s) {
            steps.add(s);
            RunObserver.Window w = last;
            out.printf(Locale.ROOT, "step %d/%d  reward %.3f  pass %.3f  loss %s  tis-trunc %s  lr %.2e  stale %d  rollout %.0f tok/s%s%n",
                    s.step(), totalSteps, s.reward(), s.passRate(), fmt(s.loss()), fmt(s.tisTruncated()), s.lr(), s.staleness(),
                    s.rolloutTokensPerSecond(), w == null ? "" : "  " + tails(w));
        } else if (e instanceof RunObserver.Window w) {
            windows.add(w);
            last = w;
            for (String c : w.changes()) {
                out.printf(Locale.ROOT, "schedule v%d: %s%n", w.scheduleVersion(), c);
            }
            if (w.option() != null && w.option().change() != null) {
                out.printf(Locale.ROOT, "rollout option: %s%n", w.option().change());
            }
        } else if (e instanceof RunObserver.Evaluated v) {
            evals.add(v);
            out.printf(Locale.ROOT, "eval at step %d: pass@1 %.3f%n", v.step(), v.passAt1());
        } else if (e instanceof RunObserver.Compressed c) {
            compressed.add(c);
            out.printf(Locale.ROOT, "compressed v%d with %s at %d bits: KL %.5f per token, %d bytes%n", c.version(), c.method(),
                    c.bits(), c.kl(), c.bytes());
        } else if (e instanceof RunObserver.Rollout ro) {
            rollouts.add(ro);
            if (ro.measured()) {
                out.printf(Locale.ROOT, "rollout speedup, lease %d (schedule v%d): measured ×%.2f, predicted ×%.2f; decode %.0f%% of its rollout%n",
                        ro.lease(), ro.scheduleVersion(), ro.speedup(), ro.predictedSpeedup(), 100 * ro.decodeFraction());
            }
        } else if (e instanceof RunObserver.Finished f) {
            finished.complete(f);
        }
    }

    private static String fmt(double v) {
        return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%.4f", v);
    }

    /** "p5 α [bin:budget=α ...] speedup ×" for the progress line. */
    static String tails(RunObserver.Window w) {
        StringBuilder b = new StringBuilder("p5α/budget");
        for (int i = 0; i < w.budgets().length; i++) {
            if (!Double.isNaN(w.alphaP5()[i])) {
                b.append(String.format(Locale.ROOT, " b%d:%.2f/%d", i, w.alphaP5()[i], w.budgets()[i]));
            }
        }
        if (!Double.isNaN(w.sequenceAlpha())) {
            b.append(String.format(Locale.ROOT, "  seqα %.3f", w.sequenceAlpha()));
        }
        b.append(String.format(Locale.ROOT, "  predicted ×%.2f", w.predictedSpeedup()));
        RunObserver.OptionWindow o = w.option();
        if (o != null && o.compressedVersion() >= 0) {
            b.append(String.format(Locale.ROOT, "  option %s%s; compressed v%d %s", o.inUse(), o.inUseVersion() >= 0 ? " v" + o.inUseVersion() : "",
                    o.compressedVersion(), o.compressedInUse() ? "in use" : "probed"));
            for (int i = 0; i < o.compressedP5().length; i++) {
                if (!Double.isNaN(o.compressedP5()[i])) {
                    b.append(String.format(Locale.ROOT, " b%d:%.2f", i, o.compressedP5()[i]));
                }
            }
        } else if (o != null && o.inUse() != null && !RunObserver.Rollout.PLAIN.equals(o.inUse())) {
            // the policy's own weights on another cache (plain+kv16): its own budgets
            b.append("  option ").append(o.inUse());
            int[] ib = o.inUseBudgets() == null ? new int[0] : o.inUseBudgets();
            for (int i = 0; i < ib.length; i++) {
                if (i < w.judgedP5().length && !Double.isNaN(w.judgedP5()[i])) {
                    b.append(String.format(Locale.ROOT, " b%d:%.2f/%d", i, w.judgedP5()[i], ib[i]));
                }
            }
        }
        return b.toString();
    }

    public CompletableFuture<RunObserver.Finished> finished() {
        return finished;
    }

    public List<RunObserver.Step> steps() {
        synchronized (steps) {
            return List.copyOf(steps);
        }
    }

    public List<RunObserver.Window> windows() {
        synchronized (windows) {
            return List.copyOf(windows);
        }
    }

    public List<RunObserver.Compressed> compressions() {
        synchronized (compressed) {
            return List.copyOf(compressed);
        }
    }

    /** Every lease's rollout time, in the order they came. */
    public List<RunObserver.Rollout> rollouts() {
        synchronized (rollouts) {
            return List.copyOf(rollouts);
        }
    }

    public List<RunObserver.Evaluated> evaluations() {
        synchronized (evals) {
            return List.copyOf(evals);
        }
    }

    /**
     * The compressed rollout options over the run: their share of the rollout tokens, the share of
     * windows one was in use in, the versions offered, and the lowest judged p5 α of the last window
     * with tokens (per bin; NaN where none); the windows each option (by format label) was in use
     * in, and the option in use at the last window, the chosen combination: its format, version,
     * schedule version and budgets, the cost model's speedup over dense plain decode, and its measured
     * generation tokens per second next to the plain policy's over the kept windows. Null when no
     * compressed version was ever offered.
     */
    public Map<String, Object> compressedSummary() {
        List<RunObserver.Window> ws = windows();
        long plain = 0;
        long compressed = 0;
        int inUse = 0;
        int offered = 0;
        java.util.Set<Long> versions = new java.util.TreeSet<>();
        double[] lastP5 = null;
        RunObserver.OptionWindow lastOption = null;
        Map<String, Integer> inUseBy = new java.util.TreeMap<>();
        for (RunObserver.Window w : ws) {
            RunObserver.OptionWindow o = w.option();
            if (o == null) {
                continue;
            }
            lastOption = o;
            if (o.inUse() != null) {
                inUseBy.merge(o.inUse(), 1, Integer::sum);
            }
            plain += o.plainTokens();
            compressed += o.compressedTokens();
            if (o.compressedVersion() >= 0) {
                offered++;
                versions.add(o.compressedVersion());
                inUse += o.compressedInUse() ? 1 : 0;
                for (double a : o.compressedP5()) {
                    if (!Double.isNaN(a)) {
                        lastP5 = o.compressedP5();
                        break;
                    }
                }
            }
        }
        if (versions.isEmpty()) {
            return null;
        }
        Map<String, Object> m = new java.util.LinkedHashMap<>();
        m.put("versions", List.copyOf(versions));
        m.put("token_share", plain + compressed == 0 ? Double.NaN : compressed / (double) (plain + compressed));
        m.put("windows_in_use", inUse);
        m.put("windows_offered", offered);
        m.put("last_alpha_p5", lastP5);
        m.put("windows_in_use_by_format", inUseBy);
        if (lastOption != null && lastOption.inUse() != null) {
            m.put("in_use", lastOption.inUse());
            m.put("in_use_version", lastOption.inUseVersion());
            m.put("in_use_schedule_version", lastOption.inUseScheduleVersion());
            m.put("in_use_budgets", lastOption.inUseBudgets());
            m.put("in_use_predicted_speedup", lastOption.inUsePredictedSpeedup());
            m.put("in_use_tokens_per_s", lastOption.inUseTokensPerSecond());
            m.put("plain_tokens_per_s", lastOption.plainTokensPerSecond());
            m.put("measured_speedup_vs_plain", lastOption.measuredSpeedupVsPlain());
        }
        return m;
    }

    /** What {@link #inBandFraction} counts: every held pair, those held at the floor, those held by the sequence guard. */
    public enum Held { ALL, AT_FLOOR, BY_SEQUENCE }

    /** {@link #inBandFraction(int, double, double, long, int, double, Held)} without the sequence guard. */
    public double inBandFraction(int warmup, double below, double above, long minTokens, int floor, boolean atFloorOnly) {
        return inBandFraction(warmup, below, above, minTokens, floor, 0, atFloorOnly ? Held.AT_FLOOR : Held.ALL);
    }

    /**
     * Share of (window, bin) pairs, after the first `warmup` windows, whose tail is held in band:
     * the p5 α the controller judged the bin on at that window (its kept windows merged at the bin's
     * budget) in [τ − below, τ + above], or above the band in a bin whose budget is already {@code floor}
     * (the least the controller may set: it has nothing left to cut there, and above the band is
     * where it stays), or, with the sequence guard on (sequenceTau above 0), above the band in a
     * window whose sequence α is itself in its band, [sequenceTau − below, sequenceTau + above]
     * (the sequence guard holds the schedule there: the bins stay above the p5 band because the
     * sequence α, not the p5, is what lowering them would spend). A bin judged on fewer than minTokens tokens (the least the controller acts on) does not
     * count. NaN when none count. {@code held}: the share of the counted pairs held at all, held at
     * the floor (the part the floor clause admits), or held by the sequence guard.
     */
    public double inBandFraction(int warmup, double below, double above, long minTokens, int floor, double sequenceTau, Held held) {
        List<RunObserver.Window> ws = windows();
        int n = 0;
        int in = 0;
        int atFloor = 0;
        int bySequence = 0;
        for (int k = Math.min(warmup, ws.size()); k < ws.size(); k++) {
            RunObserver.Window w = ws.get(k);
            // the judged tail is the option in use's, so its floor is judged at that option's budgets
            int[] budgets = w.option() != null && w.option().inUseBudgets() != null ? w.option().inUseBudgets() : w.budgets();
            double seq = w.sequenceAlpha();
            boolean sequenceBinds = sequenceTau > 0 && seq >= sequenceTau - below && seq <= sequenceTau + above;
            for (int b = 0; b < w.judgedP5().length; b++) {
                double a = w.judgedP5()[b];
                // a bin with fewer tokens than the controller acts on has no p5 worth judging
                if (!Double.isNaN(a) && w.judgedTokens()[b] >= minTokens) {
                    n++;
                    if (a >= w.tau() - below && a <= w.tau() + above) {
                        in++;
                    } else if (a > w.tau() + above && b < budgets.length && budgets[b] > 0 && budgets[b] <= floor) {
                        in++;
                        atFloor++;
                    } else if (a > w.tau() + above && sequenceBinds) {
                        in++;
                        bySequence++;
                    }
                }
            }
        }
        int count = switch (held) {
            case ALL -> in;
            case AT_FLOOR -> atFloor;
            case BY_SEQUENCE -> bySequence;
        };
        return n == 0 ? Double.NaN : count / (double) n;
    }
}
