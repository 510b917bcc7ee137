package io.tailguard.actors.cli;

import com.google.gson.JsonObject;
import io.tailguard.model.io.Manifest;
import io.tailguard.recipes.EmbeddedDefault;
import io.tailguard.recipes.PretrainRecipe;
import io.tailguard.recipes.Pretraining;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static io.tailguard.actors.cli.CliBadInputTest.assertBadInput;
import static io.tailguard.actors.cli.CliBadInputTest.cli;
import static io.tailguard.actors.cli.TaskCommandsTest.assertKeys;
import static io.tailguard.actors.cli.TaskCommandsTest.lastJson;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** pretrain end to end with a few steps, its determinism and bad input; --checkpoint default. */
class PretrainCommandTest {
    @TempDir
    Path tmp;

    JsonObject pretrain(Path out, long seed) {
        return lastJson(cli("pretrain", "--task", "kv-recall", "--preset", "tiny", "--context", "96", "--out", out.toString(),
                "--steps", "3", "--batch", "2", "--seed", "" + seed, "--eval-n", "2", "--json"));
    }

    static String weightsHash(Path dir) {
        return Manifest.read(dir).sha256().get("model.safetensors");
    }

    @Test
    void writesACompleteCheckpointThatTheOtherCommandsLoad() {
        Path out = tmp.resolve("warm");
        JsonObject o = pretrain(out, 0);
        assertKeys(o, "checkpoint", "pass_at_1", "steps", "seconds", "task", "context");
        assertEquals(out.toString(), o.get("checkpoint").getAsString());
        assertEquals(3, o.get("steps").getAsInt());
        assertEquals("kv-recall", o.get("task").getAsString());
        assertEquals(96, o.get("context").getAsInt());
        double pass = o.get("pass_at_1").getAsDouble();
        assertTrue(pass >= 0 && pass <= 1, "pass@1 " + pass);
        for (String f : new String[] {"config.json", "model.safetensors", "tokenizer.json", "manifest.json", "pretrain.json"}) {
            assertTrue(Files.isRegularFile(out.resolve(f)), f);
        }
        assertEquals(3, Manifest.read(out).step());
        lastJson(cli("generate", "--checkpoint", out.toString(), "--prompt", "kv-recall\na123\n?a", "--max-new", "4", "--json"));
        JsonObject e = lastJson(cli("eval", "--checkpoint", out.toString(), "--task", "kv-recall", "--context", "96", "--n", "2", "--json"));
        assertEquals(2, e.get("n").getAsInt());
    }

    @Test
    void theDefaultLearningRateIsThePresetsAndLrOverridesIt() throws Exception {
        Path tiny = tmp.resolve("tiny");
        pretrain(tiny, 0);
        assertEquals(1e-3, lr(tiny));
        Path small = tmp.resolve("small");
        lastJson(cli("pretrain", "--task", "kv-recall", "--preset", "small", "--context", "64", "--out", small.toString(),
                "--steps", "1", "--batch", "1", "--target", "0", "--eval-n", "0", "--json"));
        assertEquals(3e-4, lr(small));
        Path given = tmp.resolve("given");
        lastJson(cli("pretrain", "--task", "kv-recall", "--preset", "tiny", "--context", "96", "--out", given.toString(),
                "--steps", "1", "--batch", "1", "--lr", "5e-4", "--eval-n", "0", "--json"));
        assertEquals(5e-4, lr(given));
    }

    static double lr(Path checkpoint) throws Exception {
        return com.google.gson.JsonParser.parseString(Files.readString(checkpoint.resolve("pretrain.json"))).getAsJsonObject()
                .get("lr").getAsDouble();
    }

    @Test
    void theContextRampsOnceTheLookupIsMastered() {
        // (the ramp's arithmetic: PretrainingTest in recipes) 20 steps: validations at steps 10 and 20, at the start context; an untrained model masters
        // nothing, so the ramp never starts, nothing is validated at --context and every step runs
        JsonObject o = lastJson(cli("pretrain", "--context", "96", "--out", tmp.resolve("ramp").toString(), "--steps", "20",
                "--batch", "2", "--eval-n", "0", "--json"));
        assertEquals(20, o.get("steps").getAsInt());
        assertTrue(!o.has("validation_pass_at_1") && !o.has("pass_at_1"), o.toString());
    }

    @Test
    void theSameSeedGivesTheSameWeights() {
        pretrain(tmp.resolve("a"), 7);
        pretrain(tmp.resolve("b"), 7);
        pretrain(tmp.resolve("c"), 8);
        assertEquals(weightsHash(tmp.resolve("a")), weightsHash(tmp.resolve("b")));
        assertNotEquals(weightsHash(tmp.resolve("a")), weightsHash(tmp.resolve("c")));
    }

    @Test
    void initContinuesFromACheckpoint() throws Exception {
        Path a = tmp.resolve("a");
        pretrain(a, 3);
        Path b = tmp.resolve("b");
        JsonObject o = lastJson(cli("pretrain", "--task", "kv-recall", "--preset", "tiny", "--context", "96", "--out", b.toString(),
                "--steps", "1", "--batch", "2", "--seed", "3", "--eval-n", "0", "--init", a.toString(), "--json"));
        assertEquals(1, o.get("steps").getAsInt());
        String info = Files.readString(b.resolve("pretrain.json"));
        assertTrue(info.contains("\"init\":\"" + a.toAbsolutePath().normalize()), info);
        // one more step from a's weights is neither a's weights nor one step from the random start
        Path c = tmp.resolve("c");
        cli("pretrain", "--task", "kv-recall", "--preset", "tiny", "--context", "96", "--out", c.toString(),
                "--steps", "1", "--batch", "2", "--seed", "3", "--eval-n", "0", "--json");
        assertNotEquals(weightsHash(a), weightsHash(b));
        assertNotEquals(weightsHash(c), weightsHash(b));
        // a tiny checkpoint is not a small model; a directory that is no checkpoint names itself
        assertBadInput(cli("pretrain", "--preset", "small", "--out", tmp.resolve("y").toString(), "--steps", "1",
                "--init", a.toString()), "--init", "small");
        assertBadInput(cli("pretrain", "--out", tmp.resolve("y").toString(), "--steps", "1",
                "--init", tmp.resolve("none").toString()), "--init");
        assertTrue(Files.notExists(tmp.resolve("y")));
    }

    @Test
    void aCheckpointPartWayHoldsThatStepsWeightsAndChangesNothing() throws Exception {
        Path two = tmp.resolve("two");
        cli("pretrain", "--task", "kv-recall", "--preset", "tiny", "--context", "96", "--out", two.toString(),
                "--steps", "2", "--batch", "2", "--seed", "5", "--eval-n", "0", "--json");
        Path three = tmp.resolve("three");
        pretrain(three, 5);
        // the same 3-step run, checkpointing every 2 steps: one checkpoint, after step 2
        Path mid = tmp.resolve("mid");
        int[] calls = {0};
        PretrainRecipe r = PretrainRecipe.of("kv-recall", "tiny", 96, 3, 2, 1e-3, 5, 0.3);
        try (Pretraining.Trained t = PretrainCommand.train(r, null, io.tailguard.model.Devices.parse("cpu"), 2, sofar -> {
            calls[0]++;
            assertEquals(2, sofar.steps());
            Pretraining.write(mid, r, null, sofar, false);
        })) {
            Pretraining.write(tmp.resolve("end"), r, t);
        }
        assertEquals(1, calls[0]);
        assertEquals(weightsHash(two), weightsHash(mid), "the checkpoint after step 2 is the 2-step run's weights");
        assertEquals(weightsHash(three), weightsHash(tmp.resolve("end")), "checkpointing does not change the run");
        assertTrue(Files.readString(mid.resolve("pretrain.json")).contains("\"complete\":false"));
        assertTrue(Files.readString(three.resolve("pretrain.json")).contains("\"complete\":true"));
        assertEquals(2, Manifest.read(mid).step());
        // through the command: the last write is the complete checkpoint
        Path cmd = tmp.resolve("cmd");
        JsonObject o = lastJson(cli("pretrain", "--task", "kv-recall", "--preset", "tiny", "--context", "96", "--out", cmd.toString(),
                "--steps", "3", "--batch", "2", "--seed", "5", "--eval-n", "0", "--checkpoint-every", "1", "--json"));
        assertEquals(3, o.get("steps").getAsInt());
        assertEquals(weightsHash(three), weightsHash(cmd));
        assertTrue(Files.readString(cmd.resolve("pretrain.json")).contains("\"complete\":true"));
        assertBadInput(cli("pretrain", "--out", tmp.resolve("y").toString(), "--steps", "1", "--checkpoint-every", "-1"),
                "--checkpoint-every");
    }

    @Test
    void badInputExitsTwo() {
        String out = tmp.resolve("x").toString();
        assertBadInput(cli("pretrain", "--task", "no-such-task", "--out", out, "--steps", "1"), "no-such-task");
        assertBadInput(cli("pretrain", "--task", "math", "--out", out, "--steps", "1"), "math", "dataset");
        assertBadInput(cli("pretrain", "--task", "kv-recall", "--context", "32", "--out", out, "--steps", "1"), "--context");
        assertBadInput(cli("pretrain", "--task", "kv-recall", "--out", out, "--steps", "0"), "--steps");
        assertBadInput(cli("pretrain", "--task", "kv-recall", "--out", out, "--steps", "1", "--target", "1.5"), "--target");
        assertBadInput(cli("pretrain", "--task", "kv-recall", "--preset", "huge", "--out", out, "--steps", "1"), "huge");
        assertTrue(Files.notExists(tmp.resolve("x")));
    }

    // ---------------------------------------------------------------- --checkpoint default

    static PretrainRecipe stub() {
        return PretrainRecipe.of("kv-recall", "tiny", 64, 2, 2, 1e-3, 0);
    }

    @Test
    void defaultIsTrainedOnceIntoTheCacheAndThenReused() throws Exception {
        Path root = tmp.resolve("cache");
        Path dir = Checkpoints.resolve(Path.of(Checkpoints.DEFAULT), root, stub());
        assertEquals(root.resolve("default-" + stub().hash()), dir);
        assertTrue(Files.isRegularFile(dir.resolve("manifest.json")));
        assertEquals(2, Manifest.read(dir).step());
        var written = Files.getLastModifiedTime(dir.resolve("model.safetensors"));
        Thread.sleep(20);
        assertEquals(dir, Checkpoints.resolve(Path.of("default"), root, stub()));
        assertEquals(written, Files.getLastModifiedTime(dir.resolve("model.safetensors")), "reused, not retrained");
        // A different recipe is a different default.
        assertNotEquals(stub().hash(), PretrainRecipe.of("kv-recall", "tiny", 64, 3, 2, 1e-3, 0).hash());
    }

    @Test
    void aPreSeededCacheIsUsedWithoutTraining() {
        Path root = tmp.resolve("seeded");
        Path dir = EmbeddedDefault.dir(root, PretrainRecipe.embeddedDefault());
        assertEquals(0, cli("init-model", "--preset", "tiny", "--out", dir.toString()).code());
        assertEquals(dir, Checkpoints.resolve(Path.of("default"), root, PretrainRecipe.embeddedDefault()));
    }

    @Test
    void otherPathsAreThemselves() {
        Path p = tmp.resolve("default");          // a path that is not the bare word
        assertEquals(p, Checkpoints.resolve(p, tmp.resolve("unused"), stub()));
        assertTrue(Files.notExists(tmp.resolve("unused")));
    }
}
