package io.tailguard.actors.cli;

/**
 * Adds a top-level command to {@code tailguard} from a module above this one (bench), found with
 * {@link java.util.ServiceLoader}, so that the CLI lives here without depending upward.
 */
public interface CommandProvider {
    /** A picocli {@code @Command}-annotated object. */
    Object command();
}
