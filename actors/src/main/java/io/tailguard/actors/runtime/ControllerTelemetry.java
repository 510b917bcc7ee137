package io.tailguard.actors.runtime;

import io.tailguard.rollout.sparse.BudgetController;
import io.tailguard.rollout.sparse.ApproximationBudget;
import io.tailguard.rollout.sparse.CostModel;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.sparse.WeightFormat;
import org.slf4j.Logger;

/**
 * What the controller logs and exports to Prometheus ({@link NodeMetrics}) as things happen: leases
 * issued, done, late and timed out; rollout tokens per option; compressed versions offered; each
 * window's decisions; the schedule and settings after every change.
 */
final class ControllerTelemetry {
    private final NodeMetrics metrics;
    private final Logger log;
    private final CostModel cost;
    private final int promptTokens;
    private final int newTokens;
    private final int groupSize;
    private final java.util.Map<WeightFormat, CostModel> formats = new java.util.HashMap<>();
    private double densePlain = -1;

    /**
     * cost: the cost model at the run's rollout batch (a lease's prompts × G); promptTokens and
     * newTokens: the rollout a schedule's predicted speedup is priced at (a prompt of the middle of
     * the run's contexts, and the most tokens a completion is given at context-max); groupSize: the
     * samples that share a prompt's prefill (G).
     */
    ControllerTelemetry(NodeMetrics metrics, Logger log, CostModel cost, int promptTokens, int newTokens, int groupSize) {
        this.metrics = metrics;
        this.log = log;
        this.cost = cost;
        this.promptTokens = promptTokens;
        this.newTokens = newTokens;
        this.groupSize = groupSize;
    }

    /**
     * The cost model's dense-over-schedule speedup of a rollout: the run's middle prompt and its
     * longest completion, with a G-th of the prompt's prefill (a group's samples share it).
     */
    double predictedSpeedup(Schedule schedule) {
        return cost.predictedSpeedup(schedule, promptTokens, newTokens, groupSize);
    }

    /**
     * The cost model's predicted cost (effective FLOPs) of one sample of that rollout decoded with a
     * format's weights (their bytes per decode step) on its KV cache (2 or 4 bytes per value) under a schedule, with a G-th of the prompt's
     * float32 prefill: what the approximation budget compares its options by.
     */
    double predictedCost(WeightFormat format, Schedule schedule) {
        CostModel c = format.isPlain() ? cost : formats.computeIfAbsent(format, f -> cost.withWeights(f).withKvBytes(f.cacheBytes()));
        return c.generationCost(schedule, promptTokens, newTokens) - c.prefillCost(promptTokens) * (1 - 1.0 / groupSize);
    }

    /** Dense plain decode's predicted cost over {@link #predictedCost} of an option: its predicted rollout speedup. */
    double predictedSpeedup(WeightFormat format, Schedule schedule) {
        if (densePlain < 0) {
            densePlain = predictedCost(WeightFormat.plain(), Schedule.dense());
        }
        return densePlain / predictedCost(format, schedule);
    }

    void issued(RolloutWorker.Work w, int openLeases) {
        metrics.leases.labelValues("issued").inc();
        metrics.optionLeases.labelValues(w.compressed() == null ? "plain" : "compressed").inc();
        metrics.leasesOpen.set(openLeases);
    }

    /** A done lease: open, or late (re-issued already; the buffer drops its duplicate groups). */
    void done(boolean open, int openLeases) {
        metrics.leases.labelValues(open ? "done" : "late").inc();
        metrics.leasesOpen.set(openLeases);
    }

    void expired(LeaseBook.Lease l) {
        metrics.leases.labelValues("reissued").inc();
        log.warn("lease {} of {} timed out; its {} groups go to the next worker", l.id(), l.worker(), l.groups().length);
    }

    /**
     * A lease's rollout time: decode and prefill seconds into counters (so a scrape can take any
     * window's decode share), the lease's decode share, and its measured and predicted speedup when
     * it measured one.
     */
    void rollout(RunObserver.Rollout r) {
        metrics.rolloutSeconds.labelValues("prefill").inc(Math.max(0, r.prefillSeconds()));
        metrics.rolloutSeconds.labelValues("decode").inc(Math.max(0, r.decodeSeconds()));
        metrics.rolloutDecodeFraction.set(r.decodeFraction());
        if (r.measured()) {
            metrics.measuredSpeedup.set(r.speedup());
            metrics.measuredSpeedupPredicted.set(r.predictedSpeedup());
        }
    }

    void openLeases(int n) {
        metrics.leasesOpen.set(n);
    }

    void tokens(boolean compressed, long tokens) {
        metrics.optionTokens.labelValues(compressed ? "compressed" : "plain").inc(tokens);
    }

    void offered(CompressedPublished c, ApproximationBudget.Settings settings, String reason) {
        metrics.compressedRolloutVersion.set(c.version());
        log.info("compressed rollout option: {} (KL {} per token){}", c.describe(), c.kl(),
                settings.on() ? "; " + reason : "; compressed rollout is off");
    }

    /** A window's decisions: the plain policy's budgets, and the option in use with every option's schedule. */
    void window(ApproximationBudget.Decision option, BudgetController.Decision budgets) {
        if (option.changed()) {
            log.info("rollout option: {}", option.reason());
        }
        metrics.rolloutOptions(option, o -> predictedSpeedup(o.format(), o.schedule()));
        for (BudgetController.Change c : budgets.changes()) {
            log.info("schedule v{}: bin {} budget {} -> {}: {}", budgets.schedule().version(), c.bin(), c.from(), c.to(), c.reason());
            metrics.scheduleChanges.labelValues(c.to() > c.from() ? "up" : "down").inc();
        }
    }

    /** The controller's schedule, its p5 α per bin, τ and predicted speedup, and the settings version. */
    void schedule(BudgetController budgets, long settingsVersion) {
        metrics.controllerSchedule(budgets.schedule(), budgets.p5PerBin(), budgets.settings().tau(),
                predictedSpeedup(budgets.schedule()), settingsVersion);
    }
}
