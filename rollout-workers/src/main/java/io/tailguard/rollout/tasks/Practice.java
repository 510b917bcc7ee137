package io.tailguard.rollout.tasks;

import java.util.Objects;

/**
 * A practice document for supervised pretraining ({@link Task#practice}): a context to read and a
 * drill to learn, in which every question of the drill is answered from the context. A trainer
 * conditions on {@code context} and learns {@code drill} on every token, so that the loss carries only
 * what the task's skill predicts (the context's own random facts are unpredictable and would only add
 * gradient noise).
 */
public record Practice(String context, String drill) {
    public Practice {
        Objects.requireNonNull(context, "context");
        Objects.requireNonNull(drill, "drill");
        if (drill.isEmpty()) {
            throw new IllegalArgumentException("a practice drill must not be empty");
        }
    }

    /** The whole document, context then drill. */
    public String text() {
        return context + drill;
    }
}
