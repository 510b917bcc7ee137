package io.tailguard.cli;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Everything that determines a warm-start checkpoint: the task and preset, the final context, the
 * optimisation (steps, batch, peak learning rate, warm-up) and the curriculum (the context grows
 * from {@code startContext} to {@code context} over the first {@code rampFraction} of the steps, and
 * {@code practiceShare} of every batch are the task's practice documents). Same recipe, same
 * weights: the seed drives initialisation and every training prompt.
 *
 * <p>{@link #hash()} names the embedded default's cache directory, so a changed recipe (or a bumped
 * {@link #VERSION}, for a change in the training code itself) trains a new default instead of
 * reusing a stale one.
 */
record PretrainRecipe(String task, String preset, int context, int steps, int batch, double lr, long seed,
                      int warmupSteps, int startContext, double rampFraction, double practiceShare) {

    /** Bump when the training code changes what a recipe produces. */
    static final int VERSION = 1;

    /** The quickstart task and context: the embedded default is this recipe. */
    static final String QUICKSTART_TASK = "kv-recall";
    static final int QUICKSTART_CONTEXT = 256;

    static final int DEFAULT_STEPS = 1200;
    static final int DEFAULT_BATCH = 8;
    static final double DEFAULT_LR = 3e-3;

    PretrainRecipe {
        if (steps < 1) {
            throw new BadInput("--steps must be >= 1, got " + steps);
        }
        if (batch < 1) {
            throw new BadInput("--batch must be >= 1, got " + batch);
        }
        if (!(lr > 0) || !Double.isFinite(lr)) {
            throw new BadInput("--lr must be a finite number > 0, got " + lr);
        }
        if (startContext > context) {
            throw new IllegalArgumentException("start context " + startContext + " exceeds context " + context);
        }
    }

    /** The recipe for a task and budget, with the curriculum this project settled on. */
    static PretrainRecipe of(String task, String preset, int context, int steps, int batch, double lr, long seed) {
        int warmup = Math.max(1, Math.min(50, steps / 20));
        return new PretrainRecipe(task, preset, context, steps, batch, lr, seed, warmup,
                Math.min(64, context), 0.5, 0.75);
    }

    /** The embedded default: the quickstart task at the quickstart context, from seed 0. */
    static PretrainRecipe embeddedDefault() {
        return of(QUICKSTART_TASK, "tiny", QUICKSTART_CONTEXT, DEFAULT_STEPS, DEFAULT_BATCH, DEFAULT_LR, 0);
    }

    /** The recipe as a JSON-ready map (stored in the checkpoint as pretrain.json). */
    Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("version", VERSION);
        m.put("task", task);
        m.put("preset", preset);
        m.put("context", context);
        m.put("steps", steps);
        m.put("batch", batch);
        m.put("lr", lr);
        m.put("seed", seed);
        m.put("warmup_steps", warmupSteps);
        m.put("start_context", startContext);
        m.put("ramp_fraction", rampFraction);
        m.put("practice_share", practiceShare);
        return m;
    }

    /** First 12 hex digits of the sha256 of {@link #toMap()}'s JSON. */
    String hash() {
        try {
            byte[] d = MessageDigest.getInstance("SHA-256").digest(Json.of(toMap()).getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(d).substring(0, 12);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
