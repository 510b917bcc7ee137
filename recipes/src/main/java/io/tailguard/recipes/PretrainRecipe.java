package io.tailguard.recipes;

import io.tailguard.rollout.tasks.TaskSpec;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Everything that determines a warm-start checkpoint: the task and preset, the final context, the
 * optimisation (at most {@code steps} steps, batch, peak learning rate, warm-up, weight decay), the
 * curriculum and the stopping rule.
 *
 * <p>Validation: greedy pass@1 on {@code validationPrompts} prompts (prompt seed seed + 2,
 * {@link io.tailguard.rollout.tasks.PromptStreams#pretrainValidation}, apart from the training
 * prompts and from the held-out seed + 1), every {@code validateEvery} steps
 * before the ramp and every {@code targetEvery} steps after its start.
 *
 * <p>Curriculum, by mastery: every step's context is drawn from [startContext, c(s)]. c stays at
 * startContext until validation at startContext reaches {@code mastery} (the lookup has formed
 * where it has few candidates), then grows linearly to {@code context} over {@code rampSteps}
 * steps. {@code practiceShare} of every batch are the task's practice documents.
 *
 * <p>Stopping rule: once the ramp has started, validation runs at the final context, and training
 * stops at the first validation that reaches {@code target} (0: never; all steps run). Same recipe,
 * same weights: the seed drives initialisation, every training and validation prompt, and so every
 * decision; none reads the clock.
 *
 * <p>{@link #hash()} names the embedded default's cache directory, so a changed recipe (or a bumped
 * {@link #VERSION}, for a change in the training code itself) trains a new default instead of
 * reusing a stale one.
 *
 * <p>{@code taskSteps} and {@code reward} are the task's own knobs ({@link TaskSpec}: steps of a
 * completion, 0 the task's default; exact or graded reward), recorded so that a checkpoint says what
 * it was trained on. At their defaults they stay out of {@link #toMap()}, so recipes from before
 * they existed keep their hash (and the cached default its directory).
 *
 * <p>{@code from}: the recipe whose trained weights this one starts from (a curriculum's earlier
 * stage, {@link #continuing}), null for the random initialisation; its hash enters this one's.
 *
 * <p>Bad values are IllegalArgumentException whose message starts with the parameter's name
 * ({@code task-steps}, {@code reward} for the task's knobs, as the command line names them).
 */
public record PretrainRecipe(String task, String preset, int context, int steps, int batch, double lr, long seed,
                      int warmupSteps, double weightDecay, int startContext, double mastery, int rampSteps,
                      double practiceShare, double target, int validateEvery, int targetEvery, int validationPrompts,
                      int taskSteps, TaskSpec.Reward reward, PretrainRecipe from) {

    /** Bump when the training code changes what a recipe produces. */
    static final int VERSION = 3;

    /**
     * The quickstart task and lengths: the embedded default is trained to them. Prompts of about a
     * thousand tokens and a completion of 256 symbols attending back into them: the lengths where
     * sparse decode pays, and where a rollout costs more than the learner's step on it.
     */
    public static final String QUICKSTART_TASK = "copy";
    /** Six layers, two of them dense: the copy is done in the two, and four decode sparsely. */
    public static final String QUICKSTART_PRESET = "tiny6";
    public static final int QUICKSTART_CONTEXT = 1024;
    /** Copy's span in the quickstart: 32 chunks of 8 symbols. */
    public static final int QUICKSTART_TASK_STEPS = 32;
    /**
     * The embedded default's first stage, and `pretrain`'s defaults: copy's default span (128
     * symbols) at context 768, from the random initialisation. The second stage continues from it at
     * the quickstart's lengths ({@link #embeddedDefault()}).
     */
    public static final int FIRST_STAGE_CONTEXT = 768;
    /** The second stage's steps and prompt seed (a seed of its own: new examples, not the first stage's again). */
    public static final int SECOND_STAGE_STEPS = 400;
    public static final long SECOND_STAGE_SEED = 5;

    public static final int DEFAULT_STEPS = 900;
    public static final int DEFAULT_BATCH = 16;
    public static final double DEFAULT_LR = 1e-3;
    /** The small preset's default rate: Adam's rate scaled by about 1 / width (μP). */
    public static final double SMALL_LR = 3e-4;
    public static final double DEFAULT_TARGET = 0.4;
    /**
     * Steps between validations at the final context once the ramp has started. Each costs a greedy
     * decode of the validation prompts at the longest lengths (the embedded default's two stages
     * spent about a minute on them at every 20 steps); the stop is checked at this grain.
     */
    public static final int DEFAULT_TARGET_EVERY = 100;

    public PretrainRecipe {
        if (steps < 1) {
            throw new IllegalArgumentException("steps must be >= 1, got " + steps);
        }
        if (batch < 1) {
            throw new IllegalArgumentException("batch must be >= 1, got " + batch);
        }
        if (!(lr > 0) || !Double.isFinite(lr)) {
            throw new IllegalArgumentException("lr must be a finite number > 0, got " + lr);
        }
        if (!(target >= 0 && target <= 1)) {
            throw new IllegalArgumentException("target must be a pass rate in [0, 1], got " + target);
        }
        if (startContext > context) {
            throw new IllegalArgumentException("start context " + startContext + " exceeds context " + context);
        }
        if (taskSteps < 0) {
            throw new IllegalArgumentException("task-steps: must be >= 0 (0: the task's default), got " + taskSteps);
        }
        if (reward == null) {
            throw new IllegalArgumentException("reward: must be exact or graded, got null");
        }
        if (from != null && !from.preset.equals(preset)) {
            throw new IllegalArgumentException("init: a " + preset + " recipe cannot continue a " + from.preset + " one");
        }
        if (!(mastery >= 0 && mastery <= 1) || rampSteps < 0 || validateEvery < 1 || targetEvery < 1 || validationPrompts < 1) {
            throw new IllegalArgumentException("bad curriculum: mastery " + mastery + ", ramp " + rampSteps
                    + " steps, validation every " + validateEvery + " / " + targetEvery + " steps on " + validationPrompts + " prompts");
        }
    }

    /** The recipe for a task and budget, with the curriculum and stopping rule this project settled on. */
    public static PretrainRecipe of(String task, String preset, int context, int steps, int batch, double lr, long seed,
                                    double target) {
        int warmup = Math.max(1, Math.min(30, steps / 20));
        return new PretrainRecipe(task, preset, context, steps, batch, lr, seed, warmup, 0.0,
                Math.min(64, context), 0.4, 50, 0.75, target, 10, DEFAULT_TARGET_EVERY, 32, 0, TaskSpec.Reward.EXACT, null);
    }

    /** This recipe on the task with {@code taskSteps} steps (0: the task's default) and {@code reward}. */
    public PretrainRecipe withTask(int taskSteps, TaskSpec.Reward reward) {
        return new PretrainRecipe(task, preset, context, steps, batch, lr, seed, warmupSteps, weightDecay, startContext,
                mastery, rampSteps, practiceShare, target, validateEvery, targetEvery, validationPrompts, taskSteps, reward, from);
    }

    /**
     * This recipe trained from the weights {@code before} trains (null: the random initialisation),
     * with a fresh optimizer: a stage of a curriculum. The first stage's hash enters this one's.
     */
    public PretrainRecipe continuing(PretrainRecipe before) {
        return new PretrainRecipe(task, preset, context, steps, batch, lr, seed, warmupSteps, weightDecay, startContext,
                mastery, rampSteps, practiceShare, target, validateEvery, targetEvery, validationPrompts, taskSteps, reward, before);
    }

    /**
     * The task with its knobs.
     *
     * @throws IllegalArgumentException an unknown task ("task: ..."), or knobs its task does not take
     *                                  ("task-steps: ...", "reward: ...")
     */
    public TaskSpec taskSpec() {
        return new TaskSpec(task, taskSteps, reward);
    }

    public static PretrainRecipe of(String task, String preset, int context, int steps, int batch, double lr, long seed) {
        return of(task, preset, context, steps, batch, lr, seed, DEFAULT_TARGET);
    }

    /**
     * A preset's default peak learning rate. Adam moves every coordinate by about the rate each step,
     * so a model four times as wide as tiny takes a rate about four times lower: at tiny's 1e-3 the
     * small preset's weights fill with noise and it never learns kv-recall.
     */
    public static double defaultLr(String preset) {
        return "small".equals(preset) ? SMALL_LR : DEFAULT_LR;
    }

    /**
     * The embedded default, in two stages: copy's default 128-symbol span at context 768 from the
     * random initialisation (seed 0, at most {@value #DEFAULT_STEPS} steps), then, from its weights,
     * the quickstart's 256-symbol span at context 1024 (seed {@value #SECOND_STAGE_SEED}, at most
     * {@value #SECOND_STAGE_STEPS} steps). A model that copies 128 symbols learns the longer span in a
     * few hundred steps; from scratch at the long lengths every step costs the long sequences' time.
     */
    public static PretrainRecipe embeddedDefault() {
        PretrainRecipe first = of(QUICKSTART_TASK, QUICKSTART_PRESET, FIRST_STAGE_CONTEXT, DEFAULT_STEPS, DEFAULT_BATCH, DEFAULT_LR, 0);
        return of(QUICKSTART_TASK, QUICKSTART_PRESET, QUICKSTART_CONTEXT, SECOND_STAGE_STEPS, DEFAULT_BATCH, DEFAULT_LR,
                SECOND_STAGE_SEED).withTask(QUICKSTART_TASK_STEPS, TaskSpec.Reward.EXACT).continuing(first);
    }

    /** The recipe as a JSON-ready map (stored in the checkpoint's pretrain.json). */
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
        m.put("weight_decay", weightDecay);
        m.put("start_context", startContext);
        m.put("mastery", mastery);
        m.put("ramp_steps", rampSteps);
        m.put("practice_share", practiceShare);
        m.put("target", target);
        m.put("validate_every", validateEvery);
        m.put("target_every", targetEvery);
        m.put("validation_prompts", validationPrompts);
        // only when set: the hash of a recipe that leaves them at their defaults is what it was before they existed
        if (taskSteps != 0) {
            m.put("task_steps", taskSteps);
        }
        if (reward != TaskSpec.Reward.EXACT) {
            m.put("reward", reward.toString());
        }
        if (from != null) {
            m.put("from", from.hash());
        }
        return m;
    }

    /** First 12 hex digits of the sha256 of {@link #toMap()}'s JSON. */
    public String hash() {
        try {
            byte[] d = MessageDigest.getInstance("SHA-256").digest(RecipeJson.of(toMap()).getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(d).substring(0, 12);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
