package io.tailguard.actors.runtime;

/**
 * A running run as the controller reports it (`status`): the schedule, the run's progress, the
 * buffer's and learner's live settings with the settings version, the keys tuned away from the
 * configuration, the compressed rollout option, the approximation budget's options, and the
 * failures of the controller's file writes and of the compression jobs. Package-private (it carries {@link TuningBook.Tuned}): only
 * the admin endpoint reads it (`status` prints the endpoint's JSON).
 */
record ControllerStatus(Schedule schedule, Run run, LiveSettings live, TuningBook.Tuned[] tuned, CompressedOption compressed,
                        Failures stateWrites, Approximation approximation, Failures compressionJobs) implements Wire {

    /** The status of the controller's plain objects, with the cluster's members. */
    static ControllerStatus of(io.tailguard.rollout.sparse.BudgetController budgets, double predictedSpeedup, Leasing leasing,
                               CompressedOption compressed, double rolloutRate, Approximation approximation, TuningBook tuning,
                               String[] members, FailureStreak.View writes, Failures compressionJobs) {
        io.tailguard.rollout.sparse.Schedule sched = budgets.schedule();
        PolicyPublished policy = leasing.policy();
        LeaseBook<?> leases = leasing.book();
        return new ControllerStatus(new Schedule(sched.version(), sched.budgets(), budgets.p5PerBin(), budgets.settings().tau(),
                predictedSpeedup), new Run(policy == null ? -1 : policy.version(), leases.openLeases(), leases.nextGroup(),
                leasing.bufferGroups(), rolloutRate, members), tuning.live(), tuning.tuned().toArray(TuningBook.Tuned[]::new),
                compressed, of(writes), approximation, compressionJobs);
    }

    /** A failure streak as the status shows it. */
    static Failures of(FailureStreak.View v) {
        return new Failures(v.total(), v.inRow(), v.bound(), v.lastError());
    }

    /** The schedule: version, budgets and p5 α per bin (NaN: no tokens), τ, the cost model's predicted rollout speedup. */
    record Schedule(long version, int[] budgets, double[] alphaP5, double tau, double predictedSpeedup) implements Wire {}

    /** The run: policy version (−1: none yet), open leases, groups issued, buffer depth, rollout rate, cluster members. */
    record Run(long policyVersion, int leasesOpen, long groupsIssued, int bufferGroups, double rolloutTokensPerSecond,
                      String[] members) implements Wire {}

    /**
     * Jobs that failed (the controller's file writes, each after its retries; the compression
     * worker's jobs): in all, in a row now, how many in a row stop the run (0: never), and the last
     * one's error (null: none yet).
     */
    record Failures(long failures, int failuresInARow, int stopAt, String lastError) implements Wire {}

    /**
     * The compressed rollout option. version: the compressed version offered (−1: none); inUse: it
     * gets the bulk of the leases; alphaP5: its p5 α per bin at the current budgets (NaN: no
     * tokens); tokenShare: its share of all rollout tokens reported so far; reason: why the last
     * decision left it where it is.
     */
    record CompressedOption(boolean on, long version, String describe, boolean inUse, double probeShare, int maxLag,
                                   double[] alphaP5, double tokenShare, String reason) implements Wire {}

    /**
     * The approximation budget: the option in use (its label), its measured generation tokens per
     * second over the plain policy's over the kept windows (NaN: either had no lease there), why it
     * is in use, and every option (the plain policy first).
     */
    record Approximation(String inUse, double measuredSpeedupVsPlain, String reason, Option[] options) implements Wire {}

    /**
     * One rollout option: its format's label and description, the compressed version (−1: the plain
     * policy), whether it is in use, its schedule's version and budgets, its p5 α per bin at them
     * over the kept windows (NaN: no tokens), its predicted cost and the cost model's speedup of it
     * over dense plain decode, its measured generation tokens per second over the kept windows
     * (NaN: no lease), where it stands (in use, probed, ...), and its sequence α over the kept
     * windows (NaN: not judged).
     */
    record Option(String label, String format, long version, boolean inUse, long scheduleVersion, int[] budgets, double[] alphaP5,
                  double predictedCost, double predictedSpeedup, double tokensPerSecond, String state, double sequenceAlpha)
            implements Wire {
        /** Without a sequence α (not judged). */
        Option(String label, String format, long version, boolean inUse, long scheduleVersion, int[] budgets, double[] alphaP5,
               double predictedCost, double predictedSpeedup, double tokensPerSecond, String state) {
            this(label, format, version, inUse, scheduleVersion, budgets, alphaP5, predictedCost, predictedSpeedup, tokensPerSecond,
                    state, Double.NaN);
        }
    }
}
