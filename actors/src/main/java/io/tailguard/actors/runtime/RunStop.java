package io.tailguard.actors.runtime;

import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;
import org.slf4j.LoggerFactory;

import java.util.concurrent.CompletableFuture;

/**
 * How a failure that must not be run past stops the run, from any actor of a node's actor system
 * (an extension, so no actor needs another constructor argument): the first line given wins, is
 * logged at error level, and completes {@link #reason()}, which {@link TailguardNode#stopped()}
 * hands to `train` and `node`; they stop the node and exit 1 with that line.
 */
public final class RunStop implements Extension {
    private static final ExtensionId<RunStop> ID = new ExtensionId<>() {
        @Override
        public RunStop createExtension(ActorSystem<?> system) {
            return new RunStop();
        }
    };

    private final CompletableFuture<String> reason = new CompletableFuture<>();

    private RunStop() {
    }

    public static RunStop of(ActorSystem<?> system) {
        return ID.apply(system);
    }

    /** Stops the run with this line (the first call wins; later ones are logged only). */
    public void stop(String line) {
        LoggerFactory.getLogger(RunStop.class).error("{}", line);
        reason.complete(line);
    }

    /** Completes with the line of the failure that stopped the run; never, while the run goes on. */
    public CompletableFuture<String> reason() {
        return reason;
    }
}
