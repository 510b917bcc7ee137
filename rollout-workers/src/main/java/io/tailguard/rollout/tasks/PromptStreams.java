package io.tailguard.rollout.tasks;

/**
 * The prompt streams a run draws from, by name. A generated task's prompt is a function of
 * (stream seed, index); each use below gets its own stream seed, derived from the run's seed, so
 * that training never sees a prompt that evaluation, validation, calibration or compression later
 * measures with. The offsets are part of every recorded result: changing one changes which prompts
 * a run sees, so they are defined here once and never elsewhere.
 */
public final class PromptStreams {
    /** The held-out evaluation seed every command defaults to (train, train-sync, eval, compress). */
    public static final long EVAL_SEED = 1234;

    /** Pretraining's held-out pass@1 after training: seed + 1. */
    public static final long PRETRAIN_HELD_OUT = 1;
    /** Pretraining's validation (the curriculum and the stopping rule): seed + 2. */
    public static final long PRETRAIN_VALIDATION = 2;
    /** A compression method's held-out KL prompts: seed + 1000003. */
    public static final long HELD_OUT = 1_000_003L;
    /**
     * The offline schedule calibration at the start of a run (tailguard.controller.schedule =
     * calibrate): seed + 1000003, the held-out KL's offset (another command's prompts; kept as runs
     * have always drawn them).
     */
    public static final long CALIBRATION = HELD_OUT;
    /** The rollout-speedup measurement after a run: seed + 99. */
    public static final long SPEEDUP = 99;
    /** V:N:M recovery's training prompts: seed + 2000003. */
    public static final long RECOVERY = 2_000_003L;
    /** The actor runtime's compression worker draws calibration and held-out prompts from seed + 17. */
    public static final long RUN_COMPRESSION = 17;
    /** ... and its held-out KL prompts start at this index of that stream (calibration at 0). */
    public static final long RUN_COMPRESSION_HELD_OUT_FROM = 1_000_000L;

    private PromptStreams() {
    }

    /** The training prompts: the run's seed itself. */
    public static long training(long seed) {
        return seed;
    }

    public static long pretrainHeldOut(long seed) {
        return seed + PRETRAIN_HELD_OUT;
    }

    public static long pretrainValidation(long seed) {
        return seed + PRETRAIN_VALIDATION;
    }

    public static long heldOut(long seed) {
        return seed + HELD_OUT;
    }

    public static long calibration(long seed) {
        return seed + CALIBRATION;
    }

    public static long speedup(long seed) {
        return seed + SPEEDUP;
    }

    public static long recovery(long seed) {
        return seed + RECOVERY;
    }

    public static long runCompression(long seed) {
        return seed + RUN_COMPRESSION;
    }

    /**
     * The sampling seed of rollout batch {@code k} (a train-sync step, a controller lease id): a
     * function of the run's seed and k only, so a re-run or a resume of train-sync samples the same
     * tokens. A re-issued lease has a new id, so its groups are sampled anew (its prompts are the
     * same: they are addressed by group id).
     */
    public static long sampling(long seed, long k) {
        return seed * 1_000_003L + k;
    }
}
