package io.tailguard.bench;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.tailguard.actors.cli.BadInput;
import io.tailguard.actors.cli.Checkpoints;
import io.tailguard.actors.cli.Common;
import io.tailguard.actors.cli.Json;
import io.tailguard.model.Devices;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.tokenizer.Tokenizers;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.tasks.Tasks;
import io.tailguard.actors.runtime.RunObserver;
import io.tailguard.actors.runtime.RunRecorder;
import io.tailguard.actors.runtime.RunSettings;
import io.tailguard.actors.runtime.TailguardNode;
import io.tailguard.recipes.SyncTrainer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;

/**
 * The actor runtime's overhead: the same RL work (N steps of P prompts × G samples at context L,
 * under one fixed schedule, one rollout worker) through the synchronous loop and through the actor
 * system in this process, one after the other. Throughput is trained rollout tokens per wall second
 * over steps 2..N (step 1 pays the warm-up) in both.
 */
@Command(name = "runtime", mixinStandardHelpOptions = true,
        description = "Rollout throughput of the actor runtime against the synchronous loop, same work, same process.")
final class RuntimeBench implements Callable<Integer> {
    @Mixin
    Common common;

    @Option(names = "--checkpoint", required = true, description = "Policy checkpoint ('default': the embedded default).")
    Path checkpoint;

    @Option(names = "--task", defaultValue = "kv-recall", description = "Built-in task (default: ${DEFAULT-VALUE}).")
    String task;

    @Option(names = "--context", defaultValue = "256", description = "Prompt length (default: ${DEFAULT-VALUE}).")
    int context;

    @Option(names = "--steps", defaultValue = "8", description = "Learner steps per mode (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--prompts", defaultValue = "2", description = "Prompts per step (default: ${DEFAULT-VALUE}).")
    int prompts;

    @Option(names = "--group", defaultValue = "8", description = "Samples per prompt (default: ${DEFAULT-VALUE}).")
    int group;

    @Option(names = "--budget", defaultValue = "64", description = "Fixed KV budget of both runs (default: ${DEFAULT-VALUE}).")
    int budget;

    @Option(names = "--rounds", defaultValue = "2", description = "Alternating rounds (sync, then actors) per mode; each mode reports its best (default: ${DEFAULT-VALUE}).")
    int rounds;

    @Override
    public Integer call() throws Exception {
        if (steps < 2 || prompts < 1 || group < 2 || rounds < 1) {
            throw new BadInput("--steps must be >= 2, --prompts >= 1, --group >= 2, --rounds >= 1");
        }
        Path ckpt = Checkpoints.resolve(checkpoint);
        Schedule schedule = Schedule.fixed(budget);
        // Alternating rounds, so load from other jobs on a shared machine falls on both modes alike.
        double sync = 0;
        double actors = 0;
        List<Double> syncRounds = new java.util.ArrayList<>();
        List<Double> actorRounds = new java.util.ArrayList<>();
        for (int r = 0; r < rounds; r++) {
            double sr = syncThroughput(ckpt, schedule);
            double ar = actorThroughput(ckpt, schedule);
            syncRounds.add(round(sr));
            actorRounds.add(round(ar));
            sync = Math.max(sync, sr);
            actors = Math.max(actors, ar);
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("sync_tokens_per_s", round(sync));
        out.put("actor_tokens_per_s", round(actors));
        out.put("actor_vs_sync", Math.round(actors / sync * 1000) / 1000.0);
        out.put("sync_rounds", syncRounds);
        out.put("actor_rounds", actorRounds);
        out.put("steps", steps);
        out.put("context", context);
        out.put("budget", budget);
        if (common.json) {
            Json.print(out);
        } else {
            out.forEach((k, v) -> System.out.println(k + ": " + v));
        }
        return 0;
    }

    private static double round(double v) {
        return Math.round(v * 10) / 10.0;
    }

    private double syncThroughput(Path ckpt, Schedule schedule) {
        try (Qwen3Model model = ModelLoader.load(ckpt, Devices.parse(common.device()))) {
            SyncTrainer.Options o = new SyncTrainer.Options(steps, prompts, group, 1e-4, 0, 7, 16, 0, io.tailguard.rollout.tasks.PromptStreams.EVAL_SEED);
            SyncTrainer.Result r = new SyncTrainer(model, Tokenizers.fromCheckpoint(ckpt), Tasks.builtin(task, context), schedule, o)
                    .run(line -> System.err.printf("sync step %d%n", line.step()), null, ckpt.toString());
            long tokens = 0;
            double seconds = 0;
            for (SyncTrainer.StepLine l : r.steps().subList(1, r.steps().size())) {
                tokens += l.rolloutTokens();
                seconds += l.rolloutSeconds() + l.learnSeconds();
            }
            return tokens / seconds;
        }
    }

    private double actorThroughput(Path ckpt, Schedule schedule) throws Exception {
        Path tmp = Files.createTempDirectory("tailguard-runtime-bench");
        Path sched = tmp.resolve("schedule.conf");
        Files.writeString(sched, schedule.toHocon());
        Config c = ConfigFactory.parseMap(Map.ofEntries(
                        Map.entry("tailguard.train.checkpoint", ckpt.toString()), Map.entry("tailguard.train.task", task),
                        Map.entry("tailguard.train.context-min", context), Map.entry("tailguard.train.context-max", context),
                        Map.entry("tailguard.train.steps", steps), Map.entry("tailguard.train.eval-n", 0),
                        Map.entry("tailguard.train.out", tmp.resolve("run").toString()),
                        Map.entry("tailguard.rollout.workers", 1), Map.entry("tailguard.rollout.prompts-per-lease", prompts),
                        Map.entry("tailguard.rollout.group-size", group), Map.entry("tailguard.rollout.shadow-fraction", 0),
                        Map.entry("tailguard.learner.groups-per-step", prompts), Map.entry("tailguard.learner.lr", 1e-4),
                        Map.entry("tailguard.learner.warmup-steps", 0), Map.entry("tailguard.learner.checkpoint-every", 1_000_000),
                        Map.entry("tailguard.controller.schedule", sched.toString()),
                        Map.entry("tailguard.controller.min-tokens", 1_000_000_000),
                        Map.entry("tailguard.metrics.port", 0), Map.entry("tailguard.admin.port", 0)))
                .withFallback(ConfigFactory.load()).resolve();
        RunSettings s = RunSettings.parse(c, "bench runtime");
        RunRecorder rec = new RunRecorder(new PrintStream(PrintStream.nullOutputStream()), steps);
        try (TailguardNode node = new TailguardNode(c, s, TailguardNode.ROLES, ckpt, common.device(), true, rec.behavior())) {
            java.util.concurrent.CompletableFuture.anyOf(rec.finished(), node.stopped()).get(1800, TimeUnit.SECONDS);
            if (node.stopped().isDone()) {
                throw new IllegalStateException(node.stopped().join());
            }
        }
        List<RunObserver.Step> st = rec.steps();
        long tokens = 0;
        for (RunObserver.Step x : st.subList(1, st.size())) {
            tokens += x.tokens();
        }
        double seconds = (st.get(st.size() - 1).timeMillis() - st.get(0).timeMillis()) / 1000.0;
        return tokens / seconds;
    }
}
