package io.tailguard.actors.runtime;

/**
 * The learner published policy version {@code version} (after {@code step} updates) as a checkpoint
 * directory at {@code uri} in the checkpoint store; {@code sha256} is that of its manifest.json,
 * which itself holds the sha256 of every file, so a reader that checks both has exactly the bytes
 * the learner wrote. Weights never travel in a message.
 */
public record PolicyPublished(long version, long step, String uri, String sha256)
        implements Wire, Controller.Command, RolloutWorker.Command, CompressionWorker.Command {
}
