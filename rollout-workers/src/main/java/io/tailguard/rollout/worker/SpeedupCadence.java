package io.tailguard.rollout.worker;

import io.tailguard.rollout.sparse.Schedule;

/**
 * Which leases measure the rollout speedup inside the run ({@link RolloutEngine#run} with
 * measureSpeedup): of the leases a worker rolls out under a sparse schedule or with a compressed
 * actor (anything but plain dense), the every-th, 2·every-th, … (0: none). A measured lease decodes its batch twice, so a measurement
 * in every lease would slow the run's rollouts by more than the dense time; one in every few gives a
 * curve over the run at a small share of that. Counting only measurable leases keeps the spacing
 * when the schedule or the rollout option changes. One per worker, kept across policy versions.
 */
public final class SpeedupCadence {
    private final int every;
    private long measurable;

    public SpeedupCadence(int every) {
        if (every < 0) {
            throw new IllegalArgumentException("speedup-every must be >= 0, got " + every);
        }
        this.every = every;
    }

    /**
     * Whether the next lease is measured: its schedule, and whether the policy itself samples it
     * (not a compressed actor). Counts it when it could be.
     */
    public boolean next(Schedule schedule, boolean policyActor) {
        if (every == 0 || (schedule.isDense() && policyActor)) {
            return false;
        }
        measurable++;
        return measurable % every == 0;
    }
}
