package io.tailguard.actors.cli;

import io.tailguard.learner.DistillSparse;
import io.tailguard.learner.LearnerCheckpoint;
import io.tailguard.model.Devices;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.lora.LoraConfig;
import io.tailguard.model.lora.LoraFiles;
import io.tailguard.model.tokenizer.Tokenizer;
import io.tailguard.model.tokenizer.Tokenizers;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.tasks.PromptStreams;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.TaskSpec;
import io.tailguard.rollout.tasks.Tasks;
import io.tailguard.recipes.SyncResume;
import io.tailguard.recipes.SyncTrainer;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "train-sync", mixinStandardHelpOptions = true,
        description = "Synchronous GRPO + TIS training in one process: sparse (or dense) rollouts, rewards, dense log-probs, one update per step.")
final class TrainSyncCommand implements Callable<Integer> {
    @Mixin
    Common common;

    @Option(names = "--checkpoint", required = true,
            description = "Starting checkpoint (with its tokenizer.json); 'default' is the embedded default, pretrained on first use.")
    Path checkpoint;

    /** --task (built-in or math/code with --dataset), its knobs and the chat template's options. */
    @Mixin
    TaskOptions taskOptions;

    @Option(names = "--max-new-tokens", defaultValue = "0", paramLabel = "N",
            description = "A dataset task's completion budget in new tokens; required for math and code (their records carry "
                    + "answers, not worked solutions). Built-in tasks size completions by their worked solution and take none.")
    int maxNewTokens;

    @Option(names = "--held-out", paramLabel = "FILE",
            description = "A dataset task's held-out file of the same kind: pass@1 at start and end on its first --eval-n "
                    + "records. Without one a dataset run reports no pass@1 (never measured on training records).")
    Path heldOut;

    @Option(names = "--context", defaultValue = "512", description = "Prompt length in tokens (default: ${DEFAULT-VALUE}).")
    int context;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Mode mode;

    static final class Mode {
        @ArgGroup(exclusive = false)
        SparsityHolder sparse;

        @Option(names = "--dense", description = "Dense rollouts.")
        boolean dense;
    }

    static final class SparsityHolder {
        @ArgGroup(exclusive = true, multiplicity = "1")
        SparsityOptions s;
    }

    @Option(names = "--steps", required = true, description = "Policy updates.")
    int steps;

    @Option(names = "--prompts", defaultValue = "4", description = "Prompts per step (default: ${DEFAULT-VALUE}).")
    int prompts;

    @Option(names = "--group", defaultValue = "8", description = "Samples per prompt, G (default: ${DEFAULT-VALUE}).")
    int group;

    @Option(names = "--lr", defaultValue = "1e-4", description = "Learning rate (default: ${DEFAULT-VALUE}).")
    double lr;

    @Option(names = "--seed", defaultValue = "7", description = "Run seed: prompts and sampling (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--micro-batch", defaultValue = "16", description = "Sequences per forward/backward (default: ${DEFAULT-VALUE}).")
    int microBatch;

    @Option(names = "--eval-n", defaultValue = "64", description = "Held-out prompts for pass@1 at start and end; 0 skips (default: ${DEFAULT-VALUE}).")
    int evalN;

    @Option(names = "--eval-seed", defaultValue = "" + PromptStreams.EVAL_SEED, description = "Seed of the held-out prompts (default: ${DEFAULT-VALUE}).")
    long evalSeed;

    @Option(names = "--out", description = "Write the trained checkpoint (with optimizer and trainer state) here.")
    Path out;

    @Option(names = "--checkpoint-every", defaultValue = "0", description = "Also write the learner checkpoint to --out "
            + "after every K steps, atomically (default: ${DEFAULT-VALUE}, only at the end).")
    int checkpointEvery;

    @Option(names = "--stop-after", defaultValue = "0", description = "Stop after step N, leaving a learner checkpoint in "
            + "--out; continue later with the same options and --resume (default: ${DEFAULT-VALUE}, run all --steps).")
    int stopAfter;

    @Option(names = "--resume", description = "Continue the run whose learner checkpoint is in --out (weights, optimizer, "
            + "step; with --distill the LoRA and its optimizer) at its step + 1, up to --steps. Give the options of the "
            + "first run: the same options give the same steps. The start pass@1 is not evaluated again.")
    boolean resume;

    @Option(names = "--distill", description = "DistillSparse (docs/algorithms.md, DistillSparse): the sparse actor samples with a LoRA that "
            + "the dense probe and the policy update ignore; after each policy update the base is frozen and the LoRA "
            + "is trained on the sparse forward with L_PPO + λ·k3 KL to the dense log-probs. --out then also gets "
            + "the folder lora (a PEFT adapter: adapter_model.safetensors, adapter_config.json). Needs a sparse schedule.")
    boolean distill;

    @Option(names = "--lora-rank", defaultValue = "8", description = "DistillSparse LoRA rank r (default: ${DEFAULT-VALUE}).")
    int loraRank;

    @Option(names = "--lora-alpha", defaultValue = "16", description = "DistillSparse LoRA alpha; the update is scaled by alpha/r (default: ${DEFAULT-VALUE}).")
    double loraAlpha;

    @Option(names = "--lora-targets", split = ",", defaultValue = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
            description = "Linear modules the LoRA adapts (default: all seven).")
    java.util.List<String> loraTargets;

    @Option(names = "--lora-lr", defaultValue = "1e-3", description = "DistillSparse LoRA learning rate, same warm-up and decay as --lr (default: ${DEFAULT-VALUE}).")
    double loraLr;

    @Option(names = "--distill-kl", defaultValue = "0.001", description = "DistillSparse KL weight λ (published 0.001) (default: ${DEFAULT-VALUE}).")
    double distillKl;

    @Option(names = "--distill-divergence", defaultValue = "k3", description = "DistillSparse penalty: k3 (published: the k3 "
            + "estimator on the sampled tokens) or full (the exact KL(dense ‖ sparse+LoRA) over the vocabulary at every "
            + "generated position; one more forward per micro-batch) (default: ${DEFAULT-VALUE}).")
    String distillDivergence;

    @Option(names = "--distill-ppo", defaultValue = "1", description = "DistillSparse weight of the PPO part of the LoRA's loss "
            + "(published 1; 0 trains the LoRA by the KL penalty alone) (default: ${DEFAULT-VALUE}).")
    double distillPpo;

    @Override
    public Integer call() {
        TaskSpec spec = taskSpec();
        Schedule schedule = mode.dense ? Schedule.dense() : mode.sparse.s.resolve();
        SyncTrainer.Distill distillOptions = null;
        if (distill) {
            if (schedule.isDense()) {
                throw new BadInput("--distill trains the sparse actor's LoRA: give --schedule or --budget, not --dense");
            }
            if (!(loraLr > 0) || !Double.isFinite(loraLr)) {
                throw new BadInput("--lora-lr must be a positive number, got " + loraLr);
            }
            if (!(distillKl >= 0) || !Double.isFinite(distillKl)) {
                throw new BadInput("--distill-kl must be a number >= 0, got " + distillKl);
            }
            if (!(distillPpo >= 0) || !Double.isFinite(distillPpo)) {
                throw new BadInput("--distill-ppo must be a number >= 0, got " + distillPpo);
            }
            DistillSparse.Divergence divergence;
            try {
                divergence = DistillSparse.Divergence.parse(distillDivergence);
            } catch (IllegalArgumentException e) {
                throw new BadInput("--distill-divergence: " + e.getMessage());
            }
            LoraConfig loraConfig;
            try {
                loraConfig = new LoraConfig(loraRank, loraAlpha, loraTargets);
            } catch (IllegalArgumentException e) {
                throw new BadInput("--lora-rank/--lora-alpha/--lora-targets: " + e.getMessage());
            }
            distillOptions = new SyncTrainer.Distill(loraConfig, loraLr, distillKl, distillPpo, divergence, seed);
        }
        if (steps < 1) {
            throw new BadInput("--steps must be >= 1, got " + steps);
        }
        if (checkpointEvery < 0) {
            throw new BadInput("--checkpoint-every must be >= 0, got " + checkpointEvery);
        }
        if (stopAfter < 0 || stopAfter > steps) {
            throw new BadInput("--stop-after must be between 1 and --steps " + steps + ", got " + stopAfter);
        }
        if (out == null && (checkpointEvery > 0 || stopAfter > 0 || resume)) {
            throw new BadInput((resume ? "--resume" : checkpointEvery > 0 ? "--checkpoint-every" : "--stop-after")
                    + " needs --out (the learner checkpoint's directory)");
        }
        SyncTrainer.Options o = new SyncTrainer.Options(steps, prompts, group, lr, SyncTrainer.warmupSteps(steps), seed,
                microBatch, evalN, evalSeed);
        checkpoint = Checkpoints.resolve(checkpoint);
        // the parent checkpoint's chat template, resumed or not (a learner checkpoint keeps its tokenizer only)
        spec = spec.withChat(taskOptions.chat(checkpoint).orElse(null));
        Map<String, String> runOptions = SyncResume.settings(spec, context, schedule, o, distillOptions);
        if (out != null) {
            // A run killed mid-checkpoint may have left its last checkpoint moved aside: put it back before looking.
            io.tailguard.model.io.CheckpointDir.recoverLeftovers(out);
        }
        if (!resume && out != null && LearnerCheckpoint.exists(out)) {
            throw new BadInput("--out " + out + " already holds a learner checkpoint (step " + LearnerCheckpoint.state(out).step()
                    + "); give --resume to continue it, or another --out");
        }
        int resumedFrom;
        try {
            resumedFrom = resume ? SyncResume.step(out, o, distill, runOptions) : 0;
        } catch (IllegalArgumentException e) {
            throw BadInput.flagged(e, FLAGS);
        }
        if (resume && resumedFrom == steps) {
            String msg = "train-sync: " + out + " is already at step " + steps + " of --steps " + steps + "; nothing to do";
            if (common.json) {
                Map<String, Object> res = new LinkedHashMap<>();
                res.put("resumed_from", resumedFrom);
                res.put("steps", steps);
                res.put("checkpoint", out.toString());
                res.put("message", msg);
                Json.print(res);
            } else {
                System.out.println(msg);
            }
            return 0;
        }
        if (stopAfter > 0 && stopAfter <= resumedFrom) {
            throw new BadInput("--stop-after " + stopAfter + ": the checkpoint in " + out + " is already at step " + resumedFrom);
        }
        Task t = spec.at(context);
        TaskOptions.warnSkipped(t);
        Task heldOutTask = heldOutTask(spec);
        // Resuming, the weights (and tokenizer) are the checkpoint's in --out; --checkpoint stays the parent.
        Path from = resume ? out : checkpoint;
        Tokenizer tok = Tokenizers.fromCheckpoint(from);
        try (Qwen3Model model = ModelLoader.load(from, Devices.parse(common.device()))) {
            long start = System.nanoTime();
            SyncTrainer.Checkpointing saving = new SyncTrainer.Checkpointing(out, checkpoint.toString(), checkpointEvery,
                    stopAfter, resume, runOptions);
            SyncTrainer.Result r = new SyncTrainer(model, tok, t, heldOutTask, schedule, o, distillOptions).run(line -> {
                var l = line.learner();
                String stats = l.objective() == null ? "all groups degenerate"
                        : String.format("loss %.4f clip %.3f tis-trunc %.3f k3 %.2e entropy %.3f grad %.3f",
                        l.objective().loss(), l.objective().clipFraction(), l.objective().tisTruncatedFraction(),
                        l.objective().klK3(), l.entropy(), l.gradNorm());
                String text = String.format("step %d reward %.3f pass %.3f groups %d/%d %s rollout %.1fs learn %.1fs",
                        line.step(), line.meanReward(), line.passRate(), l.groupsKept(), l.groupsKept() + l.groupsDropped(),
                        stats, line.rolloutSeconds(), line.learnSeconds());
                var d = line.distill();
                if (d != null) {
                    text += String.format(" | distill loss %.4f k3 %.2e%s grad %.3f %.1fs", d.loss(), d.klK3(),
                            Double.isNaN(d.klFull()) ? "" : String.format(" kl %.2e", d.klFull()), d.gradNorm(),
                            line.distillSeconds());
                }
                if (common.json) {
                    Map<String, Object> j = new LinkedHashMap<>();
                    j.put("step", line.step());
                    j.put("reward", Progress.round(line.meanReward(), 4));
                    j.put("pass", Progress.round(line.passRate(), 4));
                    j.put("groups_kept", l.groupsKept());
                    j.put("groups_dropped", l.groupsDropped());
                    if (l.objective() != null) {
                        j.put("loss", l.objective().loss());
                        j.put("clip_fraction", l.objective().clipFraction());
                        j.put("tis_truncated_fraction", l.objective().tisTruncatedFraction());
                        j.put("mean_abs_old_minus_inf", l.objective().meanAbsOldMinusInf());
                        j.put("max_abs_old_minus_inf", l.objective().maxAbsOldMinusInf());
                        j.put("kl_k1", l.objective().klK1());
                        j.put("kl_k3", l.objective().klK3());
                        j.put("entropy", l.entropy());
                        j.put("grad_norm", l.gradNorm());
                    }
                    j.put("rollout_seconds", Progress.round(line.rolloutSeconds(), 3));
                    j.put("learn_seconds", Progress.round(line.learnSeconds(), 3));
                    if (d != null) {
                        j.put("distill_loss", d.loss());
                        j.put("distill_kl_k3", d.klK3());
                        if (!Double.isNaN(d.klFull())) {
                            j.put("distill_kl_full", d.klFull());
                        }
                        j.put("distill_grad_norm", d.gradNorm());
                        if (d.objective() != null) {
                            j.put("distill_clip_fraction", d.objective().clipFraction());
                        }
                        j.put("distill_seconds", Progress.round(line.distillSeconds(), 3));
                    }
                    Json.print(j);
                } else {
                    System.out.println(text);
                }
            }, saving);
            Map<String, Object> res = new LinkedHashMap<>();
            // Absent rather than made up: a resumed run's start was evaluated by its first part, and
            // a stopped run has no end yet.
            if (!resume) {
                res.put("pass_at_1_start", r.passAt1Start());
            }
            if (spec.isDataset()) {
                res.put("held_out", heldOut != null ? heldOut.toString()
                        : "none: no --held-out file, so pass@1 is not measured (never on training records)");
            }
            if (r.lastStep() == steps) {
                res.put("pass_at_1_end", r.passAt1End());
                res.put("rollout_speedup", Progress.round(r.rolloutSpeedup(), 3));
            }
            res.put("steps", steps);
            if (resume) {
                res.put("resumed_from", r.resumedFrom());
            }
            if (r.lastStep() < steps) {
                res.put("stopped_after", r.lastStep());
            }
            res.put("seconds", Progress.round((System.nanoTime() - start) / 1e9, 1));
            res.put("schedule", mode.dense ? "dense" : mode.sparse.s.describe());
            if (out != null) {
                res.put("checkpoint", out.toString());
            }
            if (distill) {
                res.put("lora", out == null ? null : out.resolve(LoraFiles.DIR).toString());
            }
            Json.print(res);
        }
        return 0;
    }

    /**
     * The task as the flags give it: a built-in task with its knobs, or a dataset task with its file
     * and completion budget (bad input naming the flag otherwise); the chat format comes later, from
     * the checkpoint.
     */
    private TaskSpec taskSpec() {
        taskOptions.validate();
        String task = taskOptions.task;
        if (!taskOptions.isDataset()) {
            if (maxNewTokens != 0) {
                throw new BadInput("--max-new-tokens: " + task + " is a built-in task and sizes each completion by its "
                        + "worked solution; --max-new-tokens applies to dataset tasks");
            }
            if (heldOut != null) {
                throw new BadInput("--held-out: " + task + " is a built-in task; its held-out prompts are those of --eval-seed");
            }
            return taskOptions.knobs.spec(task);
        }
        TaskSpec spec;
        try {
            spec = TaskSpec.dataset(task, taskOptions.dataset, maxNewTokens);
        } catch (IllegalArgumentException e) {
            throw BadInput.flagged(e, List.of("max-new-tokens", "dataset"));
        }
        readable("--dataset", spec);
        if (heldOut != null) {
            readable("--held-out", TaskSpec.dataset(task, heldOut, maxNewTokens));
        }
        return spec;
    }

    /** A dataset file read once before any work, so that a missing or empty one is bad input naming its flag. */
    private static void readable(String flag, TaskSpec spec) {
        try {
            spec.at(0);
        } catch (IllegalArgumentException e) {
            throw new BadInput(flag + ": " + e.getMessage());
        }
    }

    /** The held-out task: the task itself for a built-in one, --held-out's records for a dataset, or null. */
    private Task heldOutTask(TaskSpec spec) {
        if (!spec.isDataset()) {
            return spec.at(context);
        }
        if (heldOut == null) {
            if (evalN > 0) {
                System.err.println("note: no --held-out file: pass@1 is not measured (never on the training records)");
            }
            return null;
        }
        if (io.tailguard.rollout.tasks.DatasetTask.sha256(heldOut).equals(io.tailguard.rollout.tasks.DatasetTask.sha256(spec.dataset()))) {
            throw new BadInput("--held-out: " + heldOut + " is the --dataset file itself (same sha256); held-out pass@1 "
                    + "must not be measured on training records");
        }
        Task h = new TaskSpec(spec.name(), 0, TaskSpec.Reward.EXACT, heldOut, spec.maxNewTokens(), spec.chat()).at(context);
        TaskOptions.warnSkipped(h);
        return h;
    }

    /** The loop's parameters that are this command's flags of the same name. */
    private static final List<String> FLAGS = List.of("resume", "seed", "steps", "prompts", "task", "dataset", "max-new-tokens",
            "chat-template", "context", "group", "lr",
            "micro-batch", "lora-rank", "lora-alpha", "lora-targets", "lora-lr", "distill-kl", "distill-divergence", "distill-ppo");
}
