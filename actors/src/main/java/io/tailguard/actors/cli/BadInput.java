package io.tailguard.actors.cli;

/** A user error: printed as one line, exit code 2. */
public final class BadInput extends RuntimeException {
    public BadInput(String message) {
        super(message);
    }
}
