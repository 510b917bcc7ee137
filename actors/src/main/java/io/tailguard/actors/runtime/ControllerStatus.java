package io.tailguard.actors.runtime;

/**
 * A running run as the controller reports it (`status`): the schedule, the run's progress, the
 * buffer's and learner's live settings with the settings version, the keys tuned away from the
 * configuration, and the compressed rollout option. Package-private (it carries {@link TuningBook.Tuned}): only
 * the admin endpoint reads it (`status` prints the endpoint's JSON).
 */
record ControllerStatus(Schedule schedule, Run run, LiveSettings live, TuningBook.Tuned[] tuned, CompressedOption compressed,
                        StateWrites stateWrites) implements Wire {

    /** The status of the controller's plain objects, with the cluster's members. */
    static ControllerStatus of(io.tailguard.rollout.sparse.BudgetController budgets, double predictedSpeedup, Leasing leasing,
                               OptionBook options, TuningBook tuning, String[] members, FailureStreak.View writes) {
        io.tailguard.rollout.sparse.Schedule sched = budgets.schedule();
        PolicyPublished policy = leasing.policy();
        LeaseBook<?> leases = leasing.book();
        return new ControllerStatus(new Schedule(sched.version(), sched.budgets(), budgets.p5PerBin(), budgets.settings().tau(),
                predictedSpeedup), new Run(policy == null ? -1 : policy.version(), leases.openLeases(), leases.nextGroup(),
                leasing.bufferGroups(), options.rate(), members), tuning.live(), tuning.tuned().toArray(TuningBook.Tuned[]::new),
                options.view(), new StateWrites(writes.total(), writes.inRow(), writes.bound(), writes.lastError()));
    }

    /** The schedule: version, budgets and p5 α per bin (NaN: no tokens), τ, the cost model's predicted rollout speedup. */
    record Schedule(long version, int[] budgets, double[] alphaP5, double tau, double predictedSpeedup) implements Wire {}

    /** The run: policy version (−1: none yet), open leases, groups issued, buffer depth, rollout rate, cluster members. */
    record Run(long policyVersion, int leasesOpen, long groupsIssued, int bufferGroups, double rolloutTokensPerSecond,
                      String[] members) implements Wire {}

    /**
     * The controller's file writes that failed (each after its retries): in all, in a row now, how
     * many in a row stop the run, and the last one's error (null: none yet).
     */
    record StateWrites(long failures, int failuresInARow, int stopAt, String lastError) implements Wire {}

    /**
     * The compressed rollout option. version: the compressed version offered (−1: none); inUse: it
     * gets the bulk of the leases; alphaP5: its p5 α per bin at the current budgets (NaN: no
     * tokens); tokenShare: its share of all rollout tokens reported so far; reason: why the last
     * decision left it where it is.
     */
    record CompressedOption(boolean on, long version, String describe, boolean inUse, double probeShare, int maxLag,
                                   double[] alphaP5, double tokenShare, String reason) implements Wire {}
}
