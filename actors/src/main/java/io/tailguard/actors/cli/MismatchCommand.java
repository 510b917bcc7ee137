package io.tailguard.actors.cli;

import io.tailguard.model.Devices;
import io.tailguard.model.KvCache;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.lora.LoraAdapter;
import io.tailguard.model.tokenizer.Tokenizer;
import io.tailguard.model.tokenizer.Tokenizers;
import io.tailguard.rollout.eval.Evaluator;
import io.tailguard.rollout.eval.TailMeasurement;
import io.tailguard.rollout.sparse.Budgets;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.sparse.TailStats;
import io.tailguard.rollout.tasks.Task;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "mismatch", mixinStandardHelpOptions = true,
        description = {"The per-token acceptance rate alpha = sum_v min(p, q) between sparse rollouts under a schedule "
                + "and the dense policy with the same weights, by position bin (docs/algorithms.md, \"The α mismatch and its tail\").",
                "Samples N trajectories at temperature 1 under the schedule (exact alpha when the vocabulary has at "
                        + "most 4096 tokens, else from both sides' top 20), scores a share of them densely, teacher-forced.",
                "With --lora, the sparse actor samples with the LoRA; the dense probe does not use it.",
                "With --actor, a compressed checkpoint (compress yaqa or vnm output, or any checkpoint) samples "
                        + "and --checkpoint, the dense policy, probes.",
                "Prints {\"bins\":[{\"start\":..,\"end\":..,\"tokens\":..,\"alpha_p5\":..,\"alpha_mean\":..}],"
                        + "\"trajectories\":..,\"probed\":..,\"schedule_version\":..,\"lora\":..}."})
final class MismatchCommand implements Callable<Integer> {
    @Mixin
    Common common;

    @Option(names = "--checkpoint", required = true, description = "Checkpoint directory (with its tokenizer.json); \"default\" is the embedded default, trained once and cached.")
    Path checkpoint;

    @Mixin
    TaskOptions task;

    @ArgGroup(exclusive = true, multiplicity = "1")
    SparsityOptions sparsity;

    @Mixin
    LoraOption lora;

    @Option(names = "--actor", description = "The rollout actor: a compressed checkpoint (compress yaqa or compress vnm "
            + "output, loaded dequantized) or any checkpoint of the same shape; --checkpoint, dense, probes it.")
    Path actor;

    @Option(names = "--n", defaultValue = "8", description = "Trajectories (prompts) to sample (default: ${DEFAULT-VALUE}).")
    int n;

    @Option(names = "--context", defaultValue = "512", description = "Prompt length in tokens of a built-in task (default: ${DEFAULT-VALUE}).")
    int context;

    @Option(names = "--bin-width", defaultValue = "2048", description = "Position bin width in tokens, a multiple of "
            + KvCache.PAGE + " (default: ${DEFAULT-VALUE}).")
    int binWidth;

    @Option(names = "--probe-fraction", defaultValue = "1", description = "Share of trajectories probed, in (0, 1] (default: ${DEFAULT-VALUE}).")
    double probeFraction;

    @Option(names = "--seed", defaultValue = "0", description = "Prompt, sampling and probe-selection seed (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--batch", defaultValue = "8", description = "Sequences generated together (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--max-new", defaultValue = "256",
            description = "New tokens per trajectory for tasks without worked solutions (math, code); built-in tasks "
                    + "get their solution's length + 25%% + 8 (default: ${DEFAULT-VALUE}).")
    int maxNew;

    @Override
    public Integer call() {
        checkCommon(n, batch, maxNew, binWidth);
        if (!(probeFraction > 0 && probeFraction <= 1)) {
            throw new BadInput("--probe-fraction must be in (0, 1], got " + probeFraction);
        }
        task.validate();
        Schedule schedule = sparsity.resolve();
        Task tk = task.resolve(context);
        checkpoint = Checkpoints.resolve(checkpoint);
        tk = io.tailguard.rollout.tasks.ChatTask.of(tk, task.chat(checkpoint));
        Tokenizer tok = Tokenizers.fromCheckpoint(checkpoint);
        TailMeasurement.Result r;
        if (actor != null && lora.lora != null) {
            throw new BadInput("--actor and --lora: give one rollout actor");
        }
        if (actor != null && !java.nio.file.Files.isDirectory(actor)) {
            throw new BadInput("--actor: " + actor + ": not a directory");
        }
        try (Qwen3Model model = ModelLoader.load(checkpoint, Devices.parse(common.device()));
             Qwen3Model act = actor == null ? null : io.tailguard.compression.CompressedCheckpoints.loadDequantized(actor, Devices.parse(common.device()))) {
            if (act != null && !act.config().equals(model.config())) {
                throw new BadInput("--actor: " + actor + ": its config differs from " + checkpoint + "'s (another model?)");
            }
            LoraAdapter adapter = lora.attach(model);
            Progress bar = new Progress("mismatch " + tk.name());
            try {
                r = TailMeasurement.measure(model, act, tok, tk, Evaluator.prompts(tk, n, seed), schedule, binWidth,
                        probeFraction, seed, batch, maxNew, bar::update, adapter);
            } finally {
                bar.finish();
            }
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("bins", bins(r.tails()));
        out.put("trajectories", r.trajectories());
        out.put("probed", r.probed());
        out.put("sequence_alpha", Progress.round(r.tails().sequenceAlpha(), 6));
        out.put("schedule_version", schedule.version());
        out.put("schedule", sparsity.describe());
        out.put("generated_tokens", r.generatedTokens());
        out.put("lora", lora.describe());
        out.put("actor", actor == null ? null : actor.toString());
        if (common.json) {
            Json.print(out);
        } else {
            System.out.printf("%s under %s%s: %d trajectories, %d probed%n", tk.name(), sparsity.describe(),
                    lora.lora == null ? "" : " with LoRA " + lora.lora, r.trajectories(), r.probed());
            System.out.printf("  sequence alpha (exp of minus the mean over the probed trajectories of the sum of 1 - alpha) %.4f%n",
                    r.tails().sequenceAlpha());
            for (TailStats.BinSummary b : r.tails().summary()) {
                System.out.printf("  [%d, %d)  %6d tokens  alpha p5 %.4f  mean %.4f%n", b.start(), b.end(), b.tokens(), b.alphaP5(), b.alphaMean());
            }
        }
        return 0;
    }

    /** The documented bin rows, α rounded to 6 decimals. */
    static List<Map<String, Object>> bins(TailStats tails) {
        List<Map<String, Object>> rows = new ArrayList<>();
        for (TailStats.BinSummary b : tails.summary()) {
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("start", b.start());
            row.put("end", b.end());
            row.put("tokens", b.tokens());
            row.put("alpha_p5", Progress.round(b.alphaP5(), 6));
            row.put("alpha_mean", Progress.round(b.alphaMean(), 6));
            rows.add(row);
        }
        return rows;
    }

    /** Range checks shared with calibrate. */
    static void checkCommon(int n, int batch, int maxNew, int binWidth) {
        if (n < 1) {
            throw new BadInput("--n must be >= 1, got " + n);
        }
        if (batch < 1) {
            throw new BadInput("--batch must be >= 1, got " + batch);
        }
        if (maxNew < 1) {
            throw new BadInput("--max-new must be >= 1, got " + maxNew);
        }
        if (!Budgets.validBinWidth(binWidth)) {
            throw new BadInput("--bin-width must be " + Budgets.BIN_WIDTH_RULE + ", got " + binWidth);
        }
    }
}
