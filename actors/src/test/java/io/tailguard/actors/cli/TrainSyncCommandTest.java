package io.tailguard.actors.cli;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.tailguard.learner.LearnerCheckpoint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TrainSyncCommandTest {
    @Test
    void runsStepsPrintsTheSummaryAndWritesAResumableCheckpoint(@TempDir Path tmp) throws Exception {
        Path init = tmp.resolve("init");
        assertEquals(0, CliBadInputTest.cli("init-model", "--preset", "tiny", "--out", init.toString()).code());
        Path out = tmp.resolve("rl");
        CliBadInputTest.Run r = CliBadInputTest.cli("train-sync", "--checkpoint", init.toString(), "--task", "kv-recall",
                "--context", "96", "--budget", "48", "--steps", "2", "--prompts", "2", "--group", "4", "--eval-n", "2",
                "--out", out.toString(), "--json");
        assertEquals(0, r.code(), r.err());
        String[] lines = r.out().strip().split("\n");
        assertEquals(3, lines.length, r.out());
        JsonObject last = JsonParser.parseString(lines[2]).getAsJsonObject();
        assertTrue(last.has("pass_at_1_start") && last.has("pass_at_1_end") && last.has("rollout_speedup"));
        assertEquals(1, JsonParser.parseString(lines[0]).getAsJsonObject().get("step").getAsInt());
        assertTrue(Files.isRegularFile(out.resolve(LearnerCheckpoint.OPTIMIZER)));
        assertTrue(Files.readString(out.resolve(LearnerCheckpoint.STATE)).contains("\"step\": 2"));
        assertEquals(0, CliBadInputTest.cli("generate", "--checkpoint", out.toString(), "--prompt", "a=1", "--max-new", "2").code());
    }

    @Test
    void needsExactlyOneRolloutMode(@TempDir Path tmp) {
        CliBadInputTest.Run r = CliBadInputTest.cli("train-sync", "--checkpoint", tmp.toString(), "--task", "kv-recall", "--steps", "1");
        assertEquals(2, r.code());
        CliBadInputTest.Run both = CliBadInputTest.cli("train-sync", "--checkpoint", tmp.toString(), "--task", "kv-recall",
                "--steps", "1", "--dense", "--budget", "64");
        assertEquals(2, both.code());
    }

    @Test
    void distillWritesAPeftLoraThatMismatchAndEvalApplyToTheSparseActor(@TempDir Path tmp) throws Exception {
        Path init = tmp.resolve("init");
        assertEquals(0, CliBadInputTest.cli("init-model", "--preset", "tiny", "--out", init.toString()).code());
        Path out = tmp.resolve("distilled");
        CliBadInputTest.Run r = CliBadInputTest.cli("train-sync", "--checkpoint", init.toString(), "--task", "kv-recall",
                "--context", "96", "--budget", "48", "--steps", "2", "--prompts", "2", "--group", "4", "--eval-n", "0",
                "--distill", "--lora-rank", "4", "--out", out.toString(), "--json");
        assertEquals(0, r.code(), r.err());
        String[] lines = r.out().strip().split("\n");
        JsonObject step = JsonParser.parseString(lines[0]).getAsJsonObject();
        assertTrue(step.has("distill_kl_k3") && step.has("distill_loss") && step.has("distill_grad_norm"), lines[0]);
        // the adapter as PEFT's save_pretrained writes one, in the checkpoint's folder lora
        JsonObject config = JsonParser.parseString(Files.readString(out.resolve("lora/adapter_config.json"))).getAsJsonObject();
        assertEquals("LORA", config.get("peft_type").getAsString());
        assertEquals(4, config.get("r").getAsInt());
        assertEquals(16, config.get("lora_alpha").getAsInt());
        assertTrue(io.tailguard.model.io.SafeTensors.read(out.resolve("lora/adapter_model.safetensors"))
                .containsKey("base_model.model.model.layers.3.mlp.down_proj.lora_B.weight"));
        assertTrue(Files.readString(out.resolve("manifest.json")).contains("\"lora/adapter_model.safetensors\""), "written with the checkpoint");
        assertTrue(!Files.exists(out.resolve("adapter_config.json")), "transformers must not take the checkpoint for an adapter");

        CliBadInputTest.Run m = CliBadInputTest.cli("mismatch", "--checkpoint", out.toString(), "--task", "kv-recall",
                "--context", "96", "--budget", "48", "--n", "2", "--lora", out.toString(), "--json");
        assertEquals(0, m.code(), m.err());
        assertTrue(m.out().contains("\"lora\":\"" + out), m.out());
        CliBadInputTest.Run e = CliBadInputTest.cli("eval", "--checkpoint", out.toString(), "--task", "kv-recall",
                "--context", "96", "--n", "2", "--budget", "48", "--lora", out.resolve("lora/adapter_model.safetensors").toString(), "--json");
        assertEquals(0, e.code(), e.err());
        CliBadInputTest.Run dense = CliBadInputTest.cli("eval", "--checkpoint", out.toString(), "--task", "kv-recall",
                "--n", "1", "--lora", out.toString());
        assertEquals(2, dense.code());
        assertTrue(dense.err().contains("--lora"), dense.err());
        Path broken = tmp.resolve("broken");
        Files.createDirectories(broken);
        Files.copy(out.resolve("lora/adapter_config.json"), broken.resolve("adapter_config.json"));
        Files.writeString(broken.resolve("adapter_model.safetensors"), "not safetensors");
        CliBadInputTest.Run bad = CliBadInputTest.cli("mismatch", "--checkpoint", out.toString(), "--task", "kv-recall",
                "--budget", "48", "--lora", broken.toString());
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("adapter_model.safetensors") && bad.err().strip().split("\n").length == 1, bad.err());
        // a PEFT option that changes the math: exit 2 naming the key
        Path dora = tmp.resolve("dora");
        Files.createDirectories(dora);
        Files.copy(out.resolve("lora/adapter_model.safetensors"), dora.resolve("adapter_model.safetensors"));
        Files.writeString(dora.resolve("adapter_config.json"), Files.readString(out.resolve("lora/adapter_config.json"))
                .replace("\"use_dora\": false", "\"use_dora\": true"));
        CliBadInputTest.Run doraRun = CliBadInputTest.cli("mismatch", "--checkpoint", out.toString(), "--task", "kv-recall",
                "--budget", "48", "--lora", dora.toString());
        assertEquals(2, doraRun.code());
        assertTrue(doraRun.err().contains("key use_dora") && doraRun.err().strip().split("\n").length == 1, doraRun.err());
        CliBadInputTest.Run noSparse = CliBadInputTest.cli("train-sync", "--checkpoint", init.toString(), "--task", "kv-recall",
                "--steps", "1", "--dense", "--distill");
        assertEquals(2, noSparse.code());
        assertTrue(noSparse.err().contains("--distill"), noSparse.err());
    }

    static final String[] TINY_DISTILL = {"--task", "kv-recall", "--context", "96", "--budget", "48", "--steps", "4",
            "--prompts", "2", "--group", "4", "--eval-n", "0", "--distill", "--lora-rank", "4", "--json"};

    static CliBadInputTest.Run trainSync(Path init, Path out, String... more) {
        java.util.List<String> a = new java.util.ArrayList<>(java.util.List.of("train-sync", "--checkpoint", init.toString()));
        a.addAll(java.util.List.of(TINY_DISTILL));
        if (out != null) {
            a.addAll(java.util.List.of("--out", out.toString()));
        }
        a.addAll(java.util.List.of(more));
        return CliBadInputTest.cli(a.toArray(String[]::new));
    }

    /** The step lines by step, without the wall-clock fields. */
    static java.util.Map<Integer, JsonObject> steps(String stdout) {
        java.util.Map<Integer, JsonObject> out = new java.util.TreeMap<>();
        for (String line : stdout.strip().split("\n")) {
            JsonObject j = JsonParser.parseString(line).getAsJsonObject();
            if (j.has("step")) {
                for (String k : java.util.List.copyOf(j.keySet())) {
                    if (k.endsWith("_seconds")) {
                        j.remove(k);
                    }
                }
                out.put(j.get("step").getAsInt(), j);
            }
        }
        return out;
    }

    static JsonObject summary(String stdout) {
        String[] lines = stdout.strip().split("\n");
        return JsonParser.parseString(lines[lines.length - 1]).getAsJsonObject();
    }

    static long stateStep(Path out) throws Exception {
        return JsonParser.parseString(Files.readString(out.resolve(LearnerCheckpoint.STATE))).getAsJsonObject().get("step").getAsLong();
    }

    /**
     * Issue 5's acceptance: stopped between steps and resumed, the next steps' lines (policy and
     * DistillSparse losses, KL, gradient norms, rewards) equal the uninterrupted run's. On the tiny
     * random model every kv-recall group has reward 0, so the policy loss is absent; the distill
     * loss is not (its KL term needs no reward), and it depends on the base, the LoRA, the LoRA's
     * AdamW moments and the step counter. GrpoDistillResumeTest covers the policy loss with signal.
     */
    @Test
    void stoppedAndResumedRunsPrintTheUninterruptedRunsSteps(@TempDir Path tmp) throws Exception {
        Path init = tmp.resolve("init");
        assertEquals(0, CliBadInputTest.cli("init-model", "--preset", "tiny", "--out", init.toString()).code());
        CliBadInputTest.Run straight = trainSync(init, tmp.resolve("straight"));
        assertEquals(0, straight.code(), straight.err());
        java.util.Map<Integer, JsonObject> want = steps(straight.out());
        assertEquals(java.util.Set.of(1, 2, 3, 4), want.keySet());
        assertTrue(want.get(3).get("distill_loss").getAsDouble() != 0
                && want.get(3).get("distill_loss").getAsDouble() != want.get(4).get("distill_loss").getAsDouble(), want.toString());

        Path out = tmp.resolve("run");
        CliBadInputTest.Run first = trainSync(init, out, "--checkpoint-every", "2", "--stop-after", "2");
        assertEquals(0, first.code(), first.err());
        assertEquals(java.util.Set.of(1, 2), steps(first.out()).keySet());
        JsonObject s1 = summary(first.out());
        assertEquals(2, s1.get("stopped_after").getAsInt());
        assertTrue(!s1.has("pass_at_1_end") && !s1.has("rollout_speedup"), s1.toString());
        assertEquals(2, stateStep(out));
        assertTrue(Files.isRegularFile(out.resolve(LearnerCheckpoint.LORA_OPTIMIZER)));
        assertTrue(Files.isRegularFile(out.resolve("lora/adapter_model.safetensors")));

        CliBadInputTest.Run second = trainSync(init, out, "--resume");
        assertEquals(0, second.code(), second.err());
        java.util.Map<Integer, JsonObject> got = steps(second.out());
        assertEquals(java.util.Set.of(3, 4), got.keySet());
        assertEquals(want.get(3), got.get(3), "step 3 after resuming");
        assertEquals(want.get(4), got.get(4), "step 4 after resuming");
        JsonObject s2 = summary(second.out());
        assertEquals(2, s2.get("resumed_from").getAsInt());
        assertTrue(!s2.has("pass_at_1_start") && s2.has("pass_at_1_end") && !s2.has("stopped_after"), s2.toString());
        assertEquals(4, stateStep(out));
        assertArrayEquals(Files.readAllBytes(tmp.resolve("straight").resolve("model.safetensors")),
                Files.readAllBytes(out.resolve("model.safetensors")), "same final weights");
        assertArrayEquals(Files.readAllBytes(tmp.resolve("straight").resolve("lora/adapter_model.safetensors")),
                Files.readAllBytes(out.resolve("lora/adapter_model.safetensors")), "same final LoRA");
        assertArrayEquals(Files.readAllBytes(tmp.resolve("straight").resolve(LearnerCheckpoint.LORA_OPTIMIZER)),
                Files.readAllBytes(out.resolve(LearnerCheckpoint.LORA_OPTIMIZER)), "same final LoRA moments");

        CliBadInputTest.Run again = trainSync(init, out, "--resume");
        assertEquals(0, again.code(), again.err());
        assertTrue(again.out().contains("already at step 4"), again.out());
        assertEquals(4, stateStep(out));
    }

    @Test
    void checkpointEveryKWritesBetweenStepsAndAKilledRunResumesFromTheLastOne(@TempDir Path tmp) throws Exception {
        Path init = tmp.resolve("init");
        assertEquals(0, CliBadInputTest.cli("init-model", "--preset", "tiny", "--out", init.toString()).code());
        Path out = tmp.resolve("run");
        // The checkpoint of step s is on disk before step s's line is reported: watch it, then die after step 3.
        java.util.List<Long> seen = new java.util.ArrayList<>();
        try (io.tailguard.model.Qwen3Model model = io.tailguard.model.ModelLoader.load(init, ai.djl.Device.cpu())) {
            io.tailguard.recipes.SyncTrainer tr = new io.tailguard.recipes.SyncTrainer(model,
                    io.tailguard.model.tokenizer.Tokenizers.fromCheckpoint(init), io.tailguard.rollout.tasks.Tasks.builtin("kv-recall", 96),
                    io.tailguard.rollout.sparse.Schedule.fixed(48),
                    new io.tailguard.recipes.SyncTrainer.Options(4, 2, 4, 1e-4, 0, 7, 16, 0, 1234));
            RuntimeException killed = new RuntimeException("killed");
            RuntimeException e = org.junit.jupiter.api.Assertions.assertThrows(RuntimeException.class, () -> tr.run(line -> {
                try {
                    seen.add(Files.exists(out) ? stateStep(out) : -1);
                } catch (Exception x) {
                    throw new IllegalStateException(x);
                }
                if (line.step() == 3) {
                    throw killed;
                }
            }, new io.tailguard.recipes.SyncTrainer.Checkpointing(out, init.toString(), 2, 0, false)));
            assertEquals(killed, e);
        }
        assertEquals(java.util.List.of(-1L, 2L, 2L), seen, "saved after step 2 only");
        // and say it died while saving step 4's checkpoint, between the two renames: step 2's moved aside,
        // step 4's still in its temporary directory
        Files.move(out, tmp.resolve(".run.old-123456789"));
        Files.writeString(Files.createDirectory(tmp.resolve(".run.tmp-987654321")).resolve("model.safetensors"), "torn");
        CliBadInputTest.Run resumed = CliBadInputTest.cli("train-sync", "--checkpoint", init.toString(), "--task", "kv-recall",
                "--context", "96", "--budget", "48", "--steps", "4", "--prompts", "2", "--group", "4", "--eval-n", "0",
                "--out", out.toString(), "--resume", "--json");
        assertEquals(0, resumed.code(), resumed.err());
        assertEquals(java.util.Set.of(3, 4), steps(resumed.out()).keySet(), resumed.out());
        assertEquals(4, stateStep(out));
        try (var left = Files.list(tmp)) {
            assertEquals(java.util.List.of("init", "run"), left.map(f -> f.getFileName().toString()).sorted().toList());
        }
    }

    @Test
    void badResumesExitTwoNamingTheFileOrOption(@TempDir Path tmp) throws Exception {
        Path init = tmp.resolve("init");
        assertEquals(0, CliBadInputTest.cli("init-model", "--preset", "tiny", "--out", init.toString()).code());
        CliBadInputTest.Run noOut = trainSync(init, null, "--resume");
        assertEquals(2, noOut.code());
        assertTrue(noOut.err().contains("--resume") && noOut.err().contains("--out"), noOut.err());
        CliBadInputTest.Run divergence = trainSync(init, tmp.resolve("d"), "--distill-divergence", "kl");
        assertEquals(2, divergence.code());
        assertTrue(divergence.err().contains("--distill-divergence") && divergence.err().contains("k3, full"), divergence.err());
        CliBadInputTest.Run ppo = trainSync(init, tmp.resolve("p"), "--distill-ppo", "-1");
        assertEquals(2, ppo.code());
        assertTrue(ppo.err().contains("--distill-ppo"), ppo.err());
        CliBadInputTest.Run everyNoOut = trainSync(init, null, "--checkpoint-every", "1");
        assertEquals(2, everyNoOut.code());
        assertTrue(everyNoOut.err().contains("--checkpoint-every"), everyNoOut.err());
        CliBadInputTest.Run stopTooLate = trainSync(init, tmp.resolve("x"), "--stop-after", "5");
        assertEquals(2, stopTooLate.code());
        assertTrue(stopTooLate.err().contains("--stop-after"), stopTooLate.err());
        CliBadInputTest.Run nothing = trainSync(init, tmp.resolve("empty"), "--resume");
        assertEquals(2, nothing.code());
        assertTrue(nothing.err().contains("empty") && nothing.err().contains(LearnerCheckpoint.STATE), nothing.err());
        CliBadInputTest.Run plainModel = trainSync(init, init, "--resume");
        assertEquals(2, plainModel.code(), "a model checkpoint is not a learner checkpoint");

        Path out = tmp.resolve("run");
        assertEquals(0, trainSync(init, out, "--stop-after", "2").code());
        for (String[] bad : new String[][] {{"--seed", "8"}, {"--prompts", "3"}, {"--steps", "1"},
                {"--steps", "10"}, {"--lr", "2e-4"}, {"--micro-batch", "4"}, {"--lora-lr", "1e-2"}, {"--distill-kl", "0.5"},
                {"--lora-alpha", "8"}, {"--distill-divergence", "full"}, {"--distill-ppo", "0"}}) {
            CliBadInputTest.Run r = trainSync(init, out, java.util.stream.Stream.concat(java.util.stream.Stream.of("--resume"),
                    java.util.stream.Stream.of(bad)).toArray(String[]::new));
            assertEquals(2, r.code(), String.join(" ", bad) + ": " + r.err());
            assertTrue(r.err().contains(bad[0]) && r.err().strip().split("\n").length == 1, r.err());
        }
        // Without --resume, a learner checkpoint in --out is not overwritten.
        byte[] state = Files.readAllBytes(out.resolve(LearnerCheckpoint.STATE));
        CliBadInputTest.Run overwrite = trainSync(init, out);
        assertEquals(2, overwrite.code());
        assertTrue(overwrite.err().contains("--resume") && overwrite.err().contains(out.toString()), overwrite.err());
        assertArrayEquals(state, Files.readAllBytes(out.resolve(LearnerCheckpoint.STATE)));
        CliBadInputTest.Run stopBehind = trainSync(init, out, "--resume", "--stop-after", "2");
        assertEquals(2, stopBehind.code());
        assertTrue(stopBehind.err().contains("--stop-after"), stopBehind.err());
        // The checkpoint is grpo+distill-sparse; a run without --distill is another kind.
        CliBadInputTest.Run kind = CliBadInputTest.cli("train-sync", "--checkpoint", init.toString(), "--task", "kv-recall",
                "--context", "96", "--budget", "48", "--steps", "4", "--prompts", "2", "--group", "4", "--eval-n", "0",
                "--out", out.toString(), "--resume");
        assertEquals(2, kind.code());
        assertTrue(kind.err().contains(LearnerCheckpoint.STATE) && kind.err().contains("grpo+distill-sparse"), kind.err());
        // A distill checkpoint without the LoRA's moments (written before they were saved) cannot resume DistillSparse.
        Files.delete(out.resolve(LearnerCheckpoint.LORA_OPTIMIZER));
        CliBadInputTest.Run old = trainSync(init, out, "--resume");
        assertEquals(2, old.code());
        assertTrue(old.err().contains(LearnerCheckpoint.LORA_OPTIMIZER), old.err());
    }
}
