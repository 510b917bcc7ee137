package io.tailguard.actors.runtime;

import io.tailguard.rollout.sparse.ApproximationBudget;
import io.tailguard.rollout.sparse.BudgetController;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.sparse.TailStats;
import io.tailguard.rollout.sparse.WeightFormat;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The rollout options' accounting around the {@link ApproximationBudget} (the engine that decides
 * which weights and which schedule a lease rolls out with): the newest compressed version of each
 * format offered, the rollout tokens of the plain policy and of the compressed options (this window
 * and the whole run), the rollout rate over the last window, and the last window's decision. Every
 * lease's tails, plain or compressed, go to the engine, which files them with the option that rolled out.
 */
final class OptionBook {
    /** One window closed: the engine's decision, and the tokens each kind of option rolled out in it. */
    record Window(ApproximationBudget.Decision decision, long plainTokens, long compressedTokens) {}

    /**
     * What a lease rolls out with: a compressed version (null: the policy itself), its schedule and
     * its shadow schedule, and whether on a float16 KV cache (the option's cache, {@link WeightFormat#cacheBits}).
     */
    record Pick(CompressedPublished compressed, Schedule schedule, Schedule shadow, boolean halfCache) {}

    private final ApproximationBudget engine;
    private final Map<String, CompressedPublished> newest = new LinkedHashMap<>();
    private ApproximationBudget.Decision last;
    private long windowPlain;
    private long windowCompressed;
    private long plain;
    private long compressedTokens;
    private double rate;
    private long windowStartNanos;

    /** plainBudgets: the plain policy's budget controller (the controller's schedule); pricing: the cost model's, per option. */
    OptionBook(BudgetController plainBudgets, ApproximationBudget.Settings settings, ApproximationBudget.Pricing pricing, long nowNanos) {
        this(plainBudgets, settings, pricing, false, nowNanos);
    }

    /** halfCaches: every option is also offered on a float16 KV cache ({@link ApproximationBudget}). */
    OptionBook(BudgetController plainBudgets, ApproximationBudget.Settings settings, ApproximationBudget.Pricing pricing,
               boolean halfCaches, long nowNanos) {
        this.engine = new ApproximationBudget(plainBudgets, settings, pricing, halfCaches);
        this.windowStartNanos = nowNanos;
    }

    /** A compressed version: an option from now on when its format is new or it is newer than the format's held version (then true). */
    boolean offer(CompressedPublished c) {
        if (!engine.offer(c.format(), c.version())) {
            return false;
        }
        newest.put(c.format().label(), c);
        return true;
    }

    /** Formats' schedules from before a restart (by label): each starts on its own when offered again. */
    void resume(java.util.Map<String, io.tailguard.rollout.sparse.Schedule> schedules) {
        engine.resume(schedules);
    }

    /** Each compressed format's current schedule, by label. */
    java.util.Map<String, io.tailguard.rollout.sparse.Schedule> compressedSchedules() {
        return engine.compressedSchedules();
    }

    /** The option of a new lease. */
    Pick choose(long policyVersion) {
        ApproximationBudget.Choice c = engine.choose(policyVersion);
        return new Pick(c.plain() ? null : newest.get(c.format().weights().label()), c.schedule(), c.shadow(),
                c.format().cacheBits() == 16);
    }

    /** A lease's tail report, to the option that rolled it out. True when a compressed version sampled. */
    boolean report(Controller.TailReport r) {
        boolean compressed = r.compressedVersion() >= 0;
        engine.report(r.format().isEmpty() ? ApproximationBudget.PLAIN : r.format(), r.compressedVersion(),
                r.used() == null ? null : r.used().toSchedule(), r.tails() == null ? null : TailStats.fromBytes(r.tails()),
                r.shadow() == null ? null : r.shadow().toSchedule(), r.shadowTails() == null ? null : TailStats.fromBytes(r.shadowTails()),
                r.tokens(), r.decodeSeconds());
        if (compressed) {
            windowCompressed += r.tokens();
            compressedTokens += r.tokens();
        } else {
            windowPlain += r.tokens();
            plain += r.tokens();
        }
        return compressed;
    }

    /**
     * Closes a window: the rollout rate over it, and the engine's decision (every option's schedule,
     * then the option in use). adapt: the budget controllers move budgets (else they only report).
     */
    Window tick(long nowNanos, long policyVersion, boolean adapt) {
        rate = (windowPlain + windowCompressed) / Math.max(1e-9, (nowNanos - windowStartNanos) / 1e9);
        windowStartNanos = nowNanos;
        last = engine.tick(policyVersion, adapt);
        Window w = new Window(last, windowPlain, windowCompressed);
        windowPlain = 0;
        windowCompressed = 0;
        return w;
    }

    void retune(BudgetController.Settings controller, ApproximationBudget.Settings settings) {
        engine.retune(controller, settings);
    }

    ApproximationBudget.Settings settings() {
        return engine.settings();
    }

    /** The newest compressed version offered, of any format (−1: none). */
    long version() {
        return engine.newestVersion();
    }

    String reason() {
        return engine.reason();
    }

    /** Rollout tokens per second, all options, over the last closed window. */
    double rate() {
        return rate;
    }

    /**
     * The compressed option status shows as "the" compressed option: the one in use, else the
     * newest offered (null: none offered).
     */
    private ApproximationBudget.OptionState featured(List<ApproximationBudget.OptionState> options) {
        ApproximationBudget.OptionState out = null;
        for (ApproximationBudget.OptionState o : options) {
            if (o.version() >= 0 && (o.inUse() || out == null || (!out.inUse() && o.version() > out.version()))) {
                out = o;
            }
        }
        return out;
    }

    /** The compressed option as status shows it. */
    ControllerStatus.CompressedOption view(long policyVersion) {
        ApproximationBudget.Settings g = engine.settings();
        long all = plain + compressedTokens;
        ApproximationBudget.OptionState f = featured(engine.options(policyVersion));
        CompressedPublished c = f == null ? null : newest.get(f.label());
        return new ControllerStatus.CompressedOption(g.on(), f == null ? -1 : f.version(), c == null ? "" : c.describe(),
                f != null && f.inUse(), g.probeShare(), g.maxLag(), f == null ? new double[0] : f.p5(),
                all == 0 ? 0 : compressedTokens / (double) all, engine.reason());
    }

    /** Every option and the one in use, as status shows them; speedup: the cost model's dense-over-option speedup. */
    ControllerStatus.Approximation approximation(long policyVersion, java.util.function.ToDoubleBiFunction<WeightFormat, Schedule> speedup) {
        List<ApproximationBudget.OptionState> options = engine.options(policyVersion);
        ControllerStatus.Option[] out = new ControllerStatus.Option[options.size()];
        double plainRate = options.get(0).tokensPerSecond();
        ApproximationBudget.OptionState chosen = options.get(0);
        for (int i = 0; i < out.length; i++) {
            ApproximationBudget.OptionState o = options.get(i);
            out[i] = new ControllerStatus.Option(o.label(), o.format().toString(), o.version(), o.inUse(), o.schedule().version(),
                    o.schedule().budgets(), o.p5(), o.predictedCost(), speedup.applyAsDouble(o.format(), o.schedule()), o.tokensPerSecond(),
                    o.state(), o.sequenceAlpha());
            if (o.inUse()) {
                chosen = o;
            }
        }
        return new ControllerStatus.Approximation(chosen.label(), chosen.tokensPerSecond() / plainRate, engine.reason(), out);
    }

    /** The last window's decision (null before the first). */
    ApproximationBudget.Decision last() {
        return last;
    }

    /** A lease measured in the run ({@link RunObserver.Rollout#measured}): to the engine's prices. */
    void measured(RunObserver.Rollout r) {
        if (r.measured()) {
            engine.measured(r.option(), r.liveStepSeconds(), r.denseStepSeconds(), r.predictedLiveSeconds(), r.predictedDenseSeconds());
        }
    }
}
