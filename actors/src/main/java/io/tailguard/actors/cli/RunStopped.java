package io.tailguard.actors.cli;

/**
 * A run stopped by a failure it must not run past (the controller's files cannot be written,
 * compression keeps failing): printed as its one line, exit code 1.
 */
final class RunStopped extends RuntimeException {
    RunStopped(String line) {
        super(line, null, false, false);
    }
}
