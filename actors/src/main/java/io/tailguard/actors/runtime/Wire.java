package io.tailguard.actors.runtime;

/**
 * Marks a message that may cross nodes. Pekko binds this interface to {@link KryoSerializer};
 * every implementing class (and every class its fields hold) must be registered in
 * {@link WireRegistry}, or serialization refuses it. Local-only messages (timer ticks, adapted
 * replies) do not implement it.
 */
public interface Wire {
}
