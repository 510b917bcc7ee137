package io.tailguard.recipes;

import ai.djl.Device;
import io.tailguard.learner.AdamW;
import io.tailguard.learner.LrSchedule;
import io.tailguard.learner.SupervisedTrainer;
import io.tailguard.model.AttentionKernel;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.io.CheckpointDir;
import io.tailguard.model.io.DType;
import io.tailguard.model.tokenizer.CharTokenizer;
import io.tailguard.rollout.eval.Evaluator;
import io.tailguard.rollout.tasks.Practice;
import io.tailguard.rollout.tasks.Prompt;
import io.tailguard.rollout.tasks.PromptStreams;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.TaskSpec;
import io.tailguard.rollout.tasks.TaskFormat;
import io.tailguard.rollout.tasks.Tasks;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;

/**
 * The warm start: trains a preset from scratch by teacher forcing on a built-in task's worked
 * solutions and practice documents ({@link Task#practice}), stopping by the recipe's validation rule,
 * then writes a complete checkpoint (config, weights, the character tokenizer, the recipe and its
 * outcome as pretrain.json, manifest).
 *
 * <p>Step s (1-based) draws {@code batch} examples at one context, drawn uniformly from
 * [startContext, c(s)] (a batch is padded to its longest example, so one length per step wastes no
 * attention on padding); example k of the run uses prompt or practice index k with the recipe's
 * seed (see
 * {@link PretrainRecipe}: the start context until the lookup has formed there, where it has few
 * candidates and is found quickly, then the ramp to the final context). The first practiceShare of each batch are practice
 * documents, learnt on their drill given their context; the rest are prompts with their worked
 * solutions, learnt on the solution tokens (the {@link TaskFormat} layout that evaluation and RL
 * generate with). Constant learning rate after the warm-up: the stopping rule, not a schedule, ends
 * the run.
 *
 * <p>Bad input (a task, a context, an init checkpoint) is IllegalArgumentException whose message
 * starts with the parameter's name: {@code task}, {@code context}, {@code init}.
 */
public final class Pretraining {

    /** Progress: after every step, and after every validation (at the context it ran). */
    public interface Listener {
        void step(int step, int steps, double loss);

        default void validated(int step, int context, double passAt1) {
        }

        /**
         * A checkpoint point ({@code checkpointEvery} steps apart, never after the last step): the
         * model as it is after {@code step}, with the last validation pass@1 (null if none ran). The
         * model stays the trainer's; do not close it.
         */
        default void checkpoint(Trained sofar) {
        }
    }

    /**
     * A trained model (the caller owns and closes it), the steps it took, and the last validation
     * pass@1 (null if none ran).
     */
    public record Trained(Qwen3Model model, int steps, Double validationPassAt1) implements AutoCloseable {
        @Override
        public void close() {
            model.close();
        }
    }

    private Pretraining() {
    }

    /**
     * The weights of a checkpoint to continue training from: it must be the recipe's preset with the
     * standard character tokenizer (bad input otherwise, naming the directory).
     */
    public static Map<String, float[]> initWeights(Path dir, PretrainRecipe r) {
        ModelConfig want = InitialModel.config(r.preset());
        CheckpointDir.Loaded loaded;
        try {
            loaded = CheckpointDir.read(dir);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("init " + dir + ": " + e.getMessage(), e);
        }
        if (!loaded.config().equals(want)) {
            throw new IllegalArgumentException("init " + dir + ": its model config is not the " + r.preset() + " preset with the character tokenizer");
        }
        Map<String, float[]> weights = new LinkedHashMap<>();
        for (String name : io.tailguard.model.ParameterShapes.of(want).keySet()) {
            weights.put(name, loaded.tensors().get(name).toFloats());
        }
        return weights;
    }

    /** Checks the task and context before any training: a built-in task, a context it accepts. */
    public static Task validate(PretrainRecipe r) {
        if (Tasks.datasetNames().contains(r.task())) {
            throw new IllegalArgumentException("task " + r.task() + " is a dataset task without worked solutions; pretrain needs a built-in task ("
                    + String.join(", ", Tasks.builtinNames()) + ")");
        }
        if (!Tasks.builtinNames().contains(r.task())) {
            throw new IllegalArgumentException("task: unknown task \"" + r.task() + "\"; pretrain takes a built-in task ("
                    + String.join(", ", Tasks.builtinNames()) + ")");
        }
        TaskSpec spec = r.taskSpec();
        try {
            Task t = spec.at(r.context());
            t.prompt(r.seed(), 0);                      // too short a context fails here, not mid-run
            taskAt(spec, r.startContext(), r.context()).prompt(r.seed(), 0);
            return t;
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("context: " + e.getMessage(), e);
        }
    }

    /** Trains the recipe's model from its random initialisation until its stopping rule or its last step. */
    static Trained train(PretrainRecipe r, Device device, Listener listener) {
        return train(r, null, device, listener);
    }

    /**
     * Trains the recipe's model until its stopping rule or its last step, starting from the weights
     * of {@code init} (a checkpoint of the same preset and tokenizer; null: the random
     * initialisation). The optimizer state starts fresh either way.
     */
    static Trained train(PretrainRecipe r, Map<String, float[]> init, Device device, Listener listener) {
        return train(r, init, device, listener, 0);
    }

    /**
     * As {@link #train(PretrainRecipe, Map, Device, Listener)}, calling {@link Listener#checkpoint}
     * after every {@code checkpointEvery}-th step that is not the run's last (0: never). Checkpoints
     * do not change the training: the same recipe gives the same weights with or without them.
     */
    public static Trained train(PretrainRecipe r, Map<String, float[]> init, Device device, Listener listener,
                                int checkpointEvery) {
        Task finalTask = validate(r);
        TaskSpec spec = r.taskSpec();
        Task startTask = taskAt(spec, r.startContext(), r.context());
        CharTokenizer tok = CharTokenizer.standard();
        ModelConfig config = InitialModel.config(r.preset());
        Qwen3Model model = Qwen3Model.create(config, init != null ? init : InitialModel.weights(config, r.seed()), device);
        LrSchedule schedule = new LrSchedule(r.lr(), r.warmupSteps(), r.steps(), 1.0);
        AdamW.Options adam = new AdamW.Options(0.9, 0.95, 1e-8, r.weightDecay(), 1.0);
        int practicePerBatch = (int) Math.round(r.practiceShare() * r.batch());
        Double validation = null;
        int rampFrom = r.startContext() == r.context() ? 0 : -1;   // the step the ramp started after; -1: not yet
        int s = 1;
        try (SupervisedTrainer trainer = new SupervisedTrainer(model, schedule, adam, r.batch())) {
            for (; s <= r.steps(); s++) {
                int hi = contextCeiling(r, rampFrom, s);
                // one context per step: a batch is padded to its longest example, so examples of
                // mixed lengths would each cost the longest one's attention
                int ctx = stepContext(r, s, hi);
                Task task = taskAt(spec, ctx, r.context());
                List<int[]> prompts = new ArrayList<>(r.batch());
                List<int[]> completions = new ArrayList<>(r.batch());
                for (int i = 0; i < r.batch(); i++) {
                    long k = (long) (s - 1) * r.batch() + i;
                    Optional<Practice> practice = i < practicePerBatch ? task.practice(PromptStreams.training(r.seed()), k) : Optional.empty();
                    if (practice.isPresent()) {
                        prompts.add(withBos(tok, practice.get().context()));
                        completions.add(tok.encode(practice.get().drill()));
                    } else {
                        Prompt p = task.prompt(PromptStreams.training(r.seed()), k);
                        prompts.add(TaskFormat.promptIds(tok, task, p));
                        completions.add(TaskFormat.completionIds(tok, task.solution(p).orElseThrow()));
                    }
                }
                SupervisedTrainer.StepStats st = trainer.step(prompts, completions);
                listener.step(s, r.steps(), st.loss());
                boolean stop = false;
                if (s % (rampFrom < 0 ? r.validateEvery() : r.targetEvery()) == 0) {
                    if (rampFrom < 0) {
                        double pass = validationPassAt1(model, startTask, r);
                        listener.validated(s, r.startContext(), pass);
                        if (pass >= r.mastery()) {
                            rampFrom = s;
                        }
                    } else if (r.target() > 0) {
                        validation = validationPassAt1(model, finalTask, r);
                        listener.validated(s, r.context(), validation);
                        stop = validation >= r.target();
                    }
                }
                if (stop) {
                    break;
                }
                if (checkpointEvery > 0 && s % checkpointEvery == 0 && s < r.steps()) {
                    listener.checkpoint(new Trained(model, s, validation));
                }
            }
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
        return new Trained(model, Math.min(s, r.steps()), validation);
    }

    /** Step s's context, drawn uniformly from [startContext, hi] by the recipe's seed and the step. */
    static int stepContext(PretrainRecipe r, int s, int hi) {
        SplittableRandom rng = new SplittableRandom(r.seed() * 0x9E3779B97F4A7C15L + s);
        return r.startContext() + rng.nextInt(hi - r.startContext() + 1);
    }

    /** Greedy, dense pass@1 on the recipe's validation prompts (seed + 2) of a task. */
    static double validationPassAt1(Qwen3Model model, Task task, PretrainRecipe r) {
        return Evaluator.evaluate(model, CharTokenizer.standard(), task,
                new Evaluator.EvalOptions(r.validationPrompts(), 1, 0.0, PromptStreams.pretrainValidation(r.seed()), 16, 32),
                AttentionKernel.DENSE).passAt1();
    }

    /**
     * Greedy, dense pass@1 of a trained model on n held-out prompts of the task (prompt seed
     * seed + 1: apart from the training and the validation prompts).
     */
    public static double heldOutPassAt1(Qwen3Model model, Task task, int n, long seed, Evaluator.Progress progress) {
        return Evaluator.evaluate(model, CharTokenizer.standard(), task,
                new Evaluator.EvalOptions(n, 1, 0.0, PromptStreams.pretrainHeldOut(seed), 16, 16), AttentionKernel.DENSE,
                progress).passAt1();
    }

    private static int[] withBos(CharTokenizer tok, String text) {
        int[] ids = tok.encode(text);
        int[] out = new int[ids.length + 1];
        out[0] = tok.bosId();
        System.arraycopy(ids, 0, out, 1, ids.length);
        return out;
    }

    /**
     * The task at a curriculum context {@code ctx} on the way to {@code finalContext}: steps given
     * explicitly shrink with the context, K · ctx / final (at least 1), as the default steps
     * (a fixed share of the context) do, so that the short contexts the curriculum starts at hold
     * them; the final context has all K.
     */
    static Task taskAt(TaskSpec spec, int ctx, int finalContext) {
        if (spec.steps() == 0 || ctx >= finalContext) {
            return spec.at(ctx);
        }
        int k = (int) Math.max(1, (long) spec.steps() * ctx / finalContext);
        return new TaskSpec(spec.name(), k, spec.reward()).at(ctx);
    }

    /**
     * The longest context of step s: startContext until the ramp starts (rampFrom < 0: not yet),
     * then growing linearly to the final context over rampSteps steps.
     */
    static int contextCeiling(PretrainRecipe r, int rampFrom, int step) {
        if (rampFrom < 0) {
            return r.startContext();
        }
        double progress = r.rampSteps() == 0 ? 1.0 : Math.min(1.0, (double) (step - rampFrom) / r.rampSteps());
        return r.startContext() + (int) Math.round((r.context() - r.startContext()) * progress);
    }

    /**
     * Writes the model as a complete checkpoint (atomically), with the recipe and its outcome (steps
     * run, last validation pass@1) as pretrain.json; the manifest's step is the steps run.
     */
    public static void write(Path out, PretrainRecipe r, Trained trained) {
        write(out, r, null, trained);
    }

    /** As {@link #write(Path, PretrainRecipe, Trained)}; {@code init}, when not null, is recorded as the checkpoint training started from. */
    public static void write(Path out, PretrainRecipe r, Path init, Trained trained) {
        write(out, r, init, trained, true);
    }

    /**
     * As {@link #write(Path, PretrainRecipe, Path, Trained)}; {@code complete} is false for a
     * checkpoint written part-way through the run (recorded in pretrain.json as {@code "complete"}).
     */
    public static void write(Path out, PretrainRecipe r, Path init, Trained trained, boolean complete) {
        CharTokenizer tok = CharTokenizer.standard();
        Qwen3Model model = trained.model();
        ModelConfig c = model.config();
        Map<String, Object> info = new LinkedHashMap<>(r.toMap());
        if (init != null) {
            info.put("init", init.toAbsolutePath().normalize().toString());
        }
        info.put("steps_run", trained.steps());
        info.put("validation_pass_at_1", trained.validationPassAt1());
        info.put("complete", complete);
        byte[] recipe = (RecipeJson.of(info) + "\n").getBytes(StandardCharsets.UTF_8);
        Map<String, float[]> weights = model.hostWeights();
        for (Map.Entry<String, float[]> e : weights.entrySet()) {
            for (float v : e.getValue()) {
                if (!Float.isFinite(v)) {
                    // never cache or hand out a diverged model as the embedded default
                    throw new IllegalStateException("pretraining diverged: " + e.getKey() + " is not finite; nothing written");
                }
            }
        }
        CheckpointDir.write(out, c, ModelLoader.hostTensors(c, weights), DType.F32, tok.toJson(),
                Map.of("pretrain.json", recipe), 0, null, trained.steps(), 0);
    }
}
