package io.tailguard.compression;

import io.tailguard.model.Qwen3Model;

import java.util.List;

/** Checks on calibration sequences (token ids the model will run), shared by every method that takes them. */
final class Calibration {
    private Calibration() {}

    /** Non-empty, and every sequence fits the model; {@code whenMissing} is the message for none. */
    static void require(Qwen3Model model, List<int[]> calibration, String whenMissing) {
        if (calibration == null || calibration.isEmpty()) {
            throw new IllegalArgumentException(whenMissing);
        }
        check(model, calibration);
    }

    /** Every sequence is 1 .. maxPositions tokens of the model's vocabulary. */
    static void check(Qwen3Model model, List<int[]> calibration) {
        int vocab = model.config().vocabSize();
        for (int[] s : calibration) {
            if (s.length == 0 || s.length > model.maxPositions()) {
                throw new IllegalArgumentException("calibration sequence of length " + s.length + " not in [1, "
                        + model.maxPositions() + "]");
            }
            for (int id : s) {
                if (id < 0 || id >= vocab) {
                    throw new IllegalArgumentException("token id " + id + " outside the vocabulary of " + vocab);
                }
            }
        }
    }
}
