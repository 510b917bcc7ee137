package io.tailguard.actors.runtime;

/**
 * The live-tunable settings of the trajectory buffer and the learner, as the controller holds them:
 * the staleness bound, the learner's peak learning rate and the DistillSparse switch. {@code version}
 * is the controller's settings version, one more for every accepted `tune` (or config-file edit)
 * that changed anything, whichever keys it touched; the schedule has its own version. The controller
 * sends it to the buffer and the learner when they appear (and when they ask, after a restart) and
 * after every accepted change.
 */
public record LiveSettings(long version, int staleness, double lr, boolean distill)
        implements Wire, TrajectoryBuffer.Command, Learner.Command {
}
