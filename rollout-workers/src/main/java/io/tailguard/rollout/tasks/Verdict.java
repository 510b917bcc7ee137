package io.tailguard.rollout.tasks;

import java.util.Objects;

/**
 * A verifier's score for one completion: a reward in [0, 1] and a short human-readable reason
 * ("correct", "wrong answer: got 12, expected 13", "no answer found", "timeout after 5s"). Reasons are
 * grouped and counted by eval, so they should stay short and name the kind of failure first.
 */
public record Verdict(double reward, String reason) {
    private static final Verdict CORRECT = new Verdict(1.0, "correct");

    public Verdict {
        if (!(reward >= 0 && reward <= 1)) {
            throw new IllegalArgumentException("reward must be in [0, 1], got " + reward);
        }
        Objects.requireNonNull(reason, "reason");
    }

    public static Verdict correct() {
        return CORRECT;
    }

    public static Verdict wrong(String reason) {
        return new Verdict(0.0, reason);
    }

    public boolean isCorrect() {
        return reward == 1.0;
    }
}
