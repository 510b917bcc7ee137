package io.tailguard.actors.cli;

/** A user error: printed as one line, exit code 2. */
public final class BadInput extends RuntimeException {
    public BadInput(String message) {
        super(message);
    }

    /**
     * A recipe's complaint about one of its parameters, as bad input naming the command's flag of the
     * same name ("steps ..." becomes "--steps ..."); other complaints stay as they are.
     */
    static RuntimeException flagged(IllegalArgumentException e, java.util.Collection<String> flags) {
        String m = String.valueOf(e.getMessage());
        for (String f : flags) {
            if (m.startsWith(f + " ") || m.startsWith(f + ":")) {
                return new BadInput("--" + m);
            }
        }
        return e;
    }
}
