package io.tailguard.rollout.worker;

import io.tailguard.rollout.sparse.Schedule;

import java.util.HashMap;
import java.util.Map;

/**
 * Which leases measure the rollout speedup inside the run ({@link RolloutEngine#run} with
 * measureSpeedup): of the leases a worker rolls out with one rollout option (the policy's own
 * weights, or one compressed format) other than plain dense, the every-th, 2·every-th, … of that
 * option's (0: none). A measured lease decodes its batch twice, so a measurement in every lease
 * would slow the run's rollouts by more than the dense time; one in every few gives a curve over the
 * run at a small share of that. Each option counts its own leases: the controller hands a fixed
 * share of leases to a probed option in a regular pattern (every 4th at a probe share of 0.25), and
 * one count over all leases would then measure only the probes, or never them. Counting only
 * measurable leases keeps the spacing when the schedule changes. One per worker, kept across policy
 * versions.
 */
public final class SpeedupCadence {
    /** The option key of the policy's own weights. */
    public static final String POLICY = "";

    private final int every;
    private final Map<String, Long> measurable = new HashMap<>();

    public SpeedupCadence(int every) {
        if (every < 0) {
            throw new IllegalArgumentException("speedup-every must be >= 0, got " + every);
        }
        this.every = every;
    }

    /**
     * Whether the next lease is measured: its schedule, and the option that samples it ({@link
     * #POLICY}, or a compressed format's label). Counts it, for its option, when it could be.
     */
    public boolean next(Schedule schedule, String option) {
        if (every == 0 || (schedule.isDense() && POLICY.equals(option))) {
            return false;
        }
        long n = measurable.merge(option, 1L, Long::sum);
        return n % every == 0;
    }
}
