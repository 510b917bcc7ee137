package io.tailguard.rollout.tasks;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The stream seeds are part of every recorded result: these are the values runs have always used. */
class PromptStreamsTest {
    @Test
    void everyStreamHasItsOffset() {
        assertEquals(7, PromptStreams.training(7));
        assertEquals(8, PromptStreams.pretrainHeldOut(7));
        assertEquals(9, PromptStreams.pretrainValidation(7));
        assertEquals(1_000_010, PromptStreams.heldOut(7));
        assertEquals(2_000_010, PromptStreams.recovery(7));
        assertEquals(24, PromptStreams.runCompression(7));
        assertEquals(1_000_010, PromptStreams.calibration(7));
        assertEquals(106, PromptStreams.speedup(7));
        assertEquals(1234, PromptStreams.EVAL_SEED);
    }

    @Test
    void samplingSeedsAreAFunctionOfTheRunSeedAndTheBatch() {
        assertEquals(3 * 1_000_003L + 2, PromptStreams.sampling(3, 2));
        assertEquals(5, PromptStreams.sampling(0, 5));
    }
}
