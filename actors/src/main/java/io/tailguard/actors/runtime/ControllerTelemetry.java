package io.tailguard.actors.runtime;

import io.tailguard.rollout.sparse.BudgetController;
import io.tailguard.rollout.sparse.CompressedActorGuard;
import org.slf4j.Logger;

/**
 * What the controller logs and exports to Prometheus ({@link NodeMetrics}) as things happen: leases
 * issued, done, late and timed out; rollout tokens per option; compressed versions offered; each
 * window's decisions; the schedule and settings after every change.
 */
final class ControllerTelemetry {
    private final NodeMetrics metrics;
    private final Logger log;

    ControllerTelemetry(NodeMetrics metrics, Logger log) {
        this.metrics = metrics;
        this.log = log;
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

    void openLeases(int n) {
        metrics.leasesOpen.set(n);
    }

    void tokens(boolean compressed, long tokens) {
        metrics.optionTokens.labelValues(compressed ? "compressed" : "plain").inc(tokens);
    }

    void offered(CompressedPublished c, CompressedActorGuard.Settings settings, String reason) {
        metrics.compressedRolloutVersion.set(c.version());
        log.info("compressed rollout option: {} (KL {} per token){}", c.describe(), c.kl(),
                settings.on() ? "; " + reason : "; compressed rollout is off");
    }

    /** A window's decisions: the compressed option's, then the budget controller's. */
    void window(CompressedActorGuard.Decision option, BudgetController.Decision budgets) {
        if (option.changed()) {
            log.info("rollout option: {}", option.reason());
        }
        metrics.compressedOption(option);
        for (BudgetController.Change c : budgets.changes()) {
            log.info("schedule v{}: bin {} budget {} -> {}: {}", budgets.schedule().version(), c.bin(), c.from(), c.to(), c.reason());
            metrics.scheduleChanges.labelValues(c.to() > c.from() ? "up" : "down").inc();
        }
    }

    void schedule(io.tailguard.rollout.sparse.Schedule sched, double[] p5, double tau, double predictedSpeedup, long settingsVersion) {
        metrics.controllerSchedule(sched, p5, tau, predictedSpeedup, settingsVersion);
    }
}
