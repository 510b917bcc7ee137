package io.tailguard.actors.cli;

import io.tailguard.model.Devices;
import io.tailguard.recipes.EmbeddedDefault;
import io.tailguard.recipes.PretrainRecipe;
import io.tailguard.recipes.Pretraining;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.TaskSpec;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "pretrain", mixinStandardHelpOptions = true,
        description = {"Train a preset from scratch by teacher forcing on a built-in task's worked solutions and "
                + "practice documents (AdamW at a constant rate after a warm-up, contexts growing from 64 to --context), "
                + "stop once validation pass@1 (prompt seed --seed + 2) reaches --target, write the checkpoint, and "
                + "measure greedy pass@1 on held-out prompts (prompt seed --seed + 1).",
                "The embedded default (--checkpoint default in other commands) is this command with its defaults, then "
                        + "--init <that> --context " + PretrainRecipe.QUICKSTART_CONTEXT + " --task-steps "
                        + PretrainRecipe.QUICKSTART_TASK_STEPS + " --steps " + PretrainRecipe.SECOND_STAGE_STEPS + " --seed "
                        + PretrainRecipe.SECOND_STAGE_SEED + " (the quickstart's lengths).",
                "Prints {\"checkpoint\":DIR,\"pass_at_1\":..,\"steps\":..,\"validation_pass_at_1\":..,\"seconds\":..,"
                        + "\"task\":..,\"context\":..}."})
final class PretrainCommand implements Callable<Integer> {
    @Mixin
    Common common;

    @Option(names = "--task", defaultValue = PretrainRecipe.QUICKSTART_TASK, completionCandidates = BuiltinTaskNames.class,
            description = "Built-in task: ${COMPLETION-CANDIDATES} (default: ${DEFAULT-VALUE}).")
    String task;

    @Mixin
    TaskKnobs knobs;

    @Option(names = "--preset", defaultValue = PretrainRecipe.QUICKSTART_PRESET,
            description = "Model preset: tiny, tiny6 or small (default: ${DEFAULT-VALUE}).")
    String preset;

    @Option(names = "--context", defaultValue = "" + PretrainRecipe.FIRST_STAGE_CONTEXT,
            description = "Final prompt length in tokens (at least 64; default: ${DEFAULT-VALUE}).")
    int context;

    @Option(names = "--out", required = true, description = "Checkpoint directory to write (replaced atomically).")
    Path out;

    @Option(names = "--steps", defaultValue = "" + PretrainRecipe.DEFAULT_STEPS,
            description = "Most optimizer steps; the context ramp is timed by it (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--batch", defaultValue = "" + PretrainRecipe.DEFAULT_BATCH, description = "Examples per step (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--lr", description = "Peak learning rate (default: " + PretrainRecipe.DEFAULT_LR + " for tiny, "
            + PretrainRecipe.SMALL_LR + " for small).")
    Double lr;

    @Option(names = "--target", defaultValue = "" + PretrainRecipe.DEFAULT_TARGET,
            description = "Stop at the first validation at --context (every " + PretrainRecipe.DEFAULT_TARGET_EVERY + " steps once the context ramp has started; "
                    + "greedy, 32 prompts of seed --seed + 2) whose pass@1 reaches this; 0 runs every step (default: ${DEFAULT-VALUE}).")
    double target;

    @Option(names = "--seed", defaultValue = "0",
            description = "Seed of the initialisation and of every training prompt; evaluation uses seed + 1 (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--init", description = "Continue from this checkpoint's weights (same preset, character tokenizer) "
            + "instead of the random initialisation; the optimizer starts fresh. Use another --seed to draw new examples.")
    Path init;

    @Option(names = "--checkpoint-every", defaultValue = "0",
            description = "Also write the checkpoint to --out (atomically) after every K-th step, so that a long run "
                    + "stopped part-way leaves its last one; pretrain.json then says \"complete\": false (default: ${DEFAULT-VALUE}: only at the end).")
    int checkpointEvery;

    @Option(names = "--eval-n", defaultValue = "128", description = "Held-out prompts for pass@1; 0 skips it (default: ${DEFAULT-VALUE}).")
    int evalN;

    /** The recipe's parameters that are this command's flags of the same name. */
    private static final List<String> FLAGS = List.of("task", "context", "steps", "batch", "lr", "target", "init", "task-steps",
            "reward");

    @Override
    public Integer call() {
        if (evalN < 0) {
            throw new BadInput("--eval-n must be >= 0, got " + evalN);
        }
        if (checkpointEvery < 0) {
            throw new BadInput("--checkpoint-every must be >= 0, got " + checkpointEvery);
        }
        if (context < 64) {
            throw new BadInput("--context must be at least 64 tokens, got " + context);
        }
        PretrainRecipe recipe;
        Task tk;
        java.util.Map<String, float[]> initWeights;
        try {
            recipe = PretrainRecipe.of(task, preset, context, steps, batch, lr != null ? lr : PretrainRecipe.defaultLr(preset),
                    seed, target).withTask(knobs.steps, TaskSpec.Reward.parse(knobs.reward));
            tk = Pretraining.validate(recipe);
            io.tailguard.model.ModelConfig.preset(preset, 1, 0);   // an unknown preset fails before training
            initWeights = init == null ? null : Pretraining.initWeights(init, recipe);
        } catch (IllegalArgumentException e) {
            throw flagged(e);
        }
        long t0 = System.nanoTime();
        Double pass;
        int ran;
        Double validation;
        java.util.function.Consumer<Pretraining.Trained> saver = checkpointEvery == 0 ? null : sofar -> {
            Pretraining.write(out, recipe, init, sofar, false);
            System.err.printf("%nwrote %s at step %d%n", out, sofar.steps());
        };
        try (Pretraining.Trained trained = train(recipe, initWeights, Devices.parse(common.device), checkpointEvery, saver)) {
            Pretraining.write(out, recipe, init, trained);
            ran = trained.steps();
            validation = trained.validationPassAt1();
            pass = evalN == 0 ? null : evaluate(trained, tk, evalN, seed);
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        System.err.printf("wrote %s: %s at context %d, %d steps, pass@1 %s, %.1f s%n", out, task, context, ran,
                pass == null ? "not measured" : String.format("%.3f", pass), seconds);
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("checkpoint", out.toString());
        r.put("pass_at_1", pass == null ? null : Progress.round(pass, 6));
        r.put("steps", ran);
        r.put("validation_pass_at_1", validation == null ? null : Progress.round(validation, 6));
        r.put("seconds", Progress.round(seconds, 1));
        r.put("task", task);
        r.put("context", context);
        if (common.json) {
            Json.print(r);
        }
        return 0;
    }

    /** A recipe's complaint about one of its parameters, as bad input naming the flag ("steps ..." becomes "--steps ..."). */
    static RuntimeException flagged(IllegalArgumentException e) {
        return BadInput.flagged(e, FLAGS);
    }

    /**
     * The progress bar of a pretraining run on stderr: the smoothed loss and the last validation
     * pass@1; every checkpoint point's model goes to {@code saver} (if any). {@link #finish()} ends
     * the bar's line.
     */
    static class Bar implements EmbeddedDefault.Listener {
        private Progress bar;
        private final java.util.function.Consumer<Pretraining.Trained> saver;
        private double ema = Double.NaN;
        private String val = "";
        private long start = System.nanoTime();

        Bar(PretrainRecipe recipe, java.util.function.Consumer<Pretraining.Trained> saver) {
            this.bar = new Progress(label(recipe));
            this.saver = saver;
        }

        private static String label(PretrainRecipe r) {
            return "pretrain " + r.task() + " @" + r.context();
        }

        /** A new bar for the next recipe of a curriculum (the embedded default trains its stages one after the other). */
        void stage(PretrainRecipe recipe) {
            bar.finish();
            bar = new Progress(label(recipe));
            ema = Double.NaN;
            val = "";
            start = System.nanoTime();
        }

        @Override
        public void step(int s, int total, double loss) {
            ema = Double.isNaN(ema) ? loss : 0.95 * ema + 0.05 * loss;
            bar.update(s, total, String.format("loss %.3f%s", ema, val));
        }

        @Override
        public void validated(int s, int context, double passAt1) {
            val = String.format(", validation pass@1 %.2f at context %d, step %d, %.0f s", passAt1, context, s,
                    (System.nanoTime() - start) / 1e9);
        }

        @Override
        public void checkpoint(Pretraining.Trained sofar) {
            if (saver != null) {
                saver.accept(sofar);
            }
        }

        void finish() {
            bar.finish();
        }
    }

    /** Trains with a progress bar (the smoothed loss and the last validation pass@1) on stderr. */
    static Pretraining.Trained train(PretrainRecipe recipe, ai.djl.Device device) {
        return train(recipe, null, device);
    }

    /** As {@link #train(PretrainRecipe, ai.djl.Device)}, from {@code init}'s weights when not null. */
    static Pretraining.Trained train(PretrainRecipe recipe, java.util.Map<String, float[]> init, ai.djl.Device device) {
        return train(recipe, init, device, 0, null);
    }

    /** As {@link #train(PretrainRecipe, java.util.Map, ai.djl.Device)}, handing every {@code checkpointEvery}-th step's model to {@code saver}. */
    static Pretraining.Trained train(PretrainRecipe recipe, java.util.Map<String, float[]> init, ai.djl.Device device,
                                     int checkpointEvery, java.util.function.Consumer<Pretraining.Trained> saver) {
        Bar bar = new Bar(recipe, saver);
        try {
            return Pretraining.train(recipe, init, device, bar, checkpointEvery);
        } finally {
            bar.finish();
        }
    }

    /** Greedy pass@1 on the held-out prompts (seed + 1), with a progress bar. */
    private static double evaluate(Pretraining.Trained trained, Task task, int n, long seed) {
        Progress bar = new Progress("eval " + task.name());
        try {
            return Pretraining.heldOutPassAt1(trained.model(), task, n, seed, bar::update);
        } finally {
            bar.finish();
        }
    }
}
