package io.tailguard.cli;

import ai.djl.Device;
import io.tailguard.learner.AdamW;
import io.tailguard.learner.LrSchedule;
import io.tailguard.learner.SupervisedTrainer;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import io.tailguard.model.io.CheckpointDir;
import io.tailguard.model.io.DType;
import io.tailguard.model.tokenizer.CharTokenizer;
import io.tailguard.rollout.tasks.Prompt;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.TaskFormat;
import io.tailguard.rollout.tasks.Tasks;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;

/**
 * The warm start: trains a preset from scratch by teacher forcing on a built-in task's worked
 * solutions and practice documents ({@link Task#practice}), then writes a complete checkpoint
 * (config, weights, the character tokenizer, the recipe as pretrain.json, manifest).
 *
 * <p>Step s (1-based) draws {@code batch} examples; example k of the run uses prompt or practice
 * index k with the recipe's seed, at a context drawn uniformly from [startContext, hi(s)], where
 * hi grows linearly from startContext to the final context over the first rampFraction of the
 * steps (short contexts first: with few pairs to choose from, the retrieval signal is strong).
 * The first practiceShare of each batch are practice documents, learnt on every token
 * (prompt = [bos]); the rest are prompts with their worked solutions, learnt on the solution
 * tokens (the {@link TaskFormat} layout that evaluation and RL generate with).
 */
final class Pretraining {

    /** Step, total steps and the loss of the step, after every step. */
    interface Listener {
        void step(int step, int steps, double loss);
    }

    private Pretraining() {
    }

    /** Checks the task and context before any training: a built-in task, a context it accepts. */
    static Task validate(PretrainRecipe r) {
        if (Tasks.datasetNames().contains(r.task())) {
            throw new BadInput("--task " + r.task() + " is a dataset task without worked solutions; pretrain needs a built-in task ("
                    + String.join(", ", Tasks.builtinNames()) + ")");
        }
        if (!Tasks.builtinNames().contains(r.task())) {
            throw new BadInput("--task: unknown task \"" + r.task() + "\"; pretrain takes a built-in task ("
                    + String.join(", ", Tasks.builtinNames()) + ")");
        }
        try {
            Task t = Tasks.builtin(r.task(), r.context());
            t.prompt(r.seed(), 0);                      // too short a context fails here, not mid-run
            Tasks.builtin(r.task(), r.startContext()).prompt(r.seed(), 0);
            return t;
        } catch (IllegalArgumentException e) {
            throw new BadInput("--context: " + e.getMessage());
        }
    }

    /** Trains the recipe's model; the caller owns (and closes) it. */
    static Qwen3Model train(PretrainRecipe r, Device device, Listener listener) {
        validate(r);
        CharTokenizer tok = CharTokenizer.standard();
        ModelConfig config = ModelConfig.preset(r.preset(), tok.vocabSize(), tok.eosId());
        Qwen3Model model = Qwen3Model.create(config, RandomInit.weights(config, r.seed(), 0.02, 0.0), device);
        LrSchedule schedule = new LrSchedule(r.lr(), r.warmupSteps(), r.steps(), 0.1);
        int practicePerBatch = (int) Math.round(r.practiceShare() * r.batch());
        try (SupervisedTrainer trainer = new SupervisedTrainer(model, schedule, AdamW.Options.defaults(), r.batch())) {
            for (int s = 1; s <= r.steps(); s++) {
                int hi = contextCeiling(r, s);
                List<int[]> prompts = new ArrayList<>(r.batch());
                List<int[]> completions = new ArrayList<>(r.batch());
                for (int i = 0; i < r.batch(); i++) {
                    long k = (long) (s - 1) * r.batch() + i;
                    SplittableRandom rng = new SplittableRandom(r.seed() * 0x9E3779B97F4A7C15L + k);
                    int ctx = r.startContext() + rng.nextInt(hi - r.startContext() + 1);
                    Task task = Tasks.builtin(r.task(), ctx);
                    Optional<String> practice = i < practicePerBatch ? task.practice(r.seed(), k) : Optional.empty();
                    if (practice.isPresent()) {
                        prompts.add(new int[] {tok.bosId()});
                        completions.add(tok.encode(practice.get()));
                    } else {
                        Prompt p = task.prompt(r.seed(), k);
                        prompts.add(TaskFormat.promptIds(tok, p));
                        completions.add(TaskFormat.completionIds(tok, task.solution(p).orElseThrow()));
                    }
                }
                SupervisedTrainer.StepStats st = trainer.step(prompts, completions);
                listener.step(s, r.steps(), st.loss());
            }
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
        return model;
    }

    /** The longest context of step s: startContext, growing linearly to the final context. */
    static int contextCeiling(PretrainRecipe r, int step) {
        double ramp = r.rampFraction() * r.steps();
        double progress = ramp <= 0 ? 1.0 : Math.min(1.0, step / ramp);
        return r.startContext() + (int) Math.round((r.context() - r.startContext()) * progress);
    }

    /** Writes the model as a complete checkpoint (atomically), with the recipe as pretrain.json. */
    static void write(Path out, PretrainRecipe r, Qwen3Model model) {
        CharTokenizer tok = CharTokenizer.standard();
        ModelConfig c = model.config();
        byte[] recipe = (Json.of(r.toMap()) + "\n").getBytes(StandardCharsets.UTF_8);
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
                Map.of("pretrain.json", recipe), 0, null, r.steps(), 0);
    }
}
