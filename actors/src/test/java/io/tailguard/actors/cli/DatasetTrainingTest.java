package io.tailguard.actors.cli;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.tailguard.rollout.tasks.DatasetTask;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** train-sync and train on a math dataset (a tiny model, a few steps), and their bad input. */
class DatasetTrainingTest {
    @TempDir
    static Path tmp;
    static Path init;
    static Path train;
    static Path heldOut;

    @BeforeAll
    static void files() throws IOException {
        init = tmp.resolve("init");
        assertEquals(0, CliBadInputTest.cli("init-model", "--preset", "tiny", "--out", init.toString()).code());
        train = math(tmp.resolve("train.jsonl"), 0, 6);
        heldOut = math(tmp.resolve("held-out.jsonl"), 10, 3);
    }

    /** n records "a+b=" with their sums, ids from {@code from}. */
    static Path math(Path file, int from, int n) throws IOException {
        List<String> lines = new ArrayList<>();
        for (int i = from; i < from + n; i++) {
            lines.add("{\"id\":\"m" + i + "\",\"problem\":\"" + i + "+" + (i + 1) + "=\",\"answer\":\"" + (2 * i + 1) + "\"}");
        }
        Files.write(file, lines);
        return file;
    }

    private static String[] args(String... more) {
        return Stream.concat(Stream.of("train-sync", "--checkpoint", init.toString(), "--task", "math", "--dense",
                "--steps", "2", "--prompts", "2", "--group", "2", "--eval-n", "2", "--json"), Stream.of(more)).toArray(String[]::new);
    }

    @Test
    void trainSyncTrainsOnTheRecordsAndEvaluatesOnTheHeldOutFile() throws IOException {
        Path out = tmp.resolve("sync");
        CliBadInputTest.Run r = CliBadInputTest.cli(args("--dataset", train.toString(), "--max-new-tokens", "6",
                "--held-out", heldOut.toString(), "--out", out.toString()));
        assertEquals(0, r.code(), r.err());
        String[] lines = r.out().strip().split("\n");
        assertEquals(3, lines.length, r.out());
        for (int i = 0; i < 2; i++) {
            JsonObject step = JsonParser.parseString(lines[i]).getAsJsonObject();
            assertEquals(i + 1, step.get("step").getAsInt());
            double reward = step.get("reward").getAsDouble();
            assertTrue(reward >= 0 && reward <= 1, lines[i]);
        }
        JsonObject end = JsonParser.parseString(lines[2]).getAsJsonObject();
        assertTrue(end.get("pass_at_1_start").isJsonPrimitive() && end.get("pass_at_1_end").isJsonPrimitive(), end.toString());
        assertEquals(heldOut.toString(), end.get("held_out").getAsString());
        // the checkpoint records the file's contents, so a resume must read the same records
        String state = Files.readString(out.resolve("trainer-state.json"));
        assertTrue(state.contains("sha256:" + DatasetTask.sha256(train)) && state.contains("\"--max-new-tokens\": \"6\""), state);
    }

    @Test
    void trainSyncRendersTheRecordsThroughTheCheckpointsChatTemplate() throws IOException {
        Path chat = tmp.resolve("chat");
        Files.createDirectories(chat);
        try (Stream<Path> files = Files.list(init)) {
            for (Path f : files.toList()) {
                Files.copy(f, chat.resolve(f.getFileName()));
            }
        }
        Files.writeString(chat.resolve("chat_template.jinja"),
                "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}");
        Path out = tmp.resolve("sync-chat");
        CliBadInputTest.Run r = CliBadInputTest.cli("train-sync", "--checkpoint", chat.toString(), "--task", "math", "--dense",
                "--steps", "1", "--prompts", "2", "--group", "2", "--eval-n", "2", "--dataset", train.toString(),
                "--max-new-tokens", "4", "--held-out", heldOut.toString(), "--system-prompt", "Add.", "--out", out.toString(), "--json");
        assertEquals(0, r.code(), r.err());
        String state = Files.readString(out.resolve("trainer-state.json"));
        assertTrue(state.contains("\"--chat-template\": \"on, system prompt Add.\""), state);
    }

    @Test
    void withoutAHeldOutFileTrainSyncSaysSoAndMeasuresNothing() {
        CliBadInputTest.Run r = CliBadInputTest.cli(args("--dataset", train.toString(), "--max-new-tokens", "4"));
        assertEquals(0, r.code(), r.err());
        String[] lines = r.out().strip().split("\n");
        JsonObject end = JsonParser.parseString(lines[lines.length - 1]).getAsJsonObject();
        assertTrue(end.get("pass_at_1_start").isJsonNull() && end.get("pass_at_1_end").isJsonNull(), end.toString());
        assertTrue(end.get("held_out").getAsString().startsWith("none: no --held-out file"), end.toString());
    }

    @Test
    void trainSyncBadInputNamesTheFlag() throws IOException {
        CliBadInputTest.Run missing = CliBadInputTest.cli(args("--dataset", tmp.resolve("none.jsonl").toString(),
                "--max-new-tokens", "4"));
        assertEquals(2, missing.code(), missing.err());
        assertTrue(missing.err().contains("--dataset: math dataset " + tmp.resolve("none.jsonl") + ": file not found"), missing.err());
        CliBadInputTest.Run builtin = CliBadInputTest.cli("train-sync", "--checkpoint", init.toString(), "--task", "kv-recall",
                "--dataset", train.toString(), "--dense", "--steps", "1");
        assertEquals(2, builtin.code(), builtin.err());
        assertTrue(builtin.err().contains("--dataset: kv-recall is a built-in task"), builtin.err());
        CliBadInputTest.Run budget = CliBadInputTest.cli(args("--dataset", train.toString()));
        assertEquals(2, budget.code(), budget.err());
        assertTrue(budget.err().contains("--max-new-tokens: dataset task math needs a completion budget"), budget.err());
        CliBadInputTest.Run same = CliBadInputTest.cli(args("--dataset", train.toString(), "--max-new-tokens", "4",
                "--held-out", train.toString()));
        assertEquals(2, same.code(), same.err());
        assertTrue(same.err().contains("--held-out: ") && same.err().contains("training records"), same.err());
        CliBadInputTest.Run chat = CliBadInputTest.cli(args("--dataset", train.toString(), "--max-new-tokens", "4",
                "--chat-template", "on"));
        assertEquals(2, chat.code(), chat.err());
        assertTrue(chat.err().contains("--chat-template: on, but checkpoint " + init + " has no chat template"), chat.err());
    }

    /** train with {@code more} first (of two --set of a key, the first wins). */
    private static String[] trainArgs(Path out, String... more) {
        return Stream.concat(Stream.concat(Stream.of("train"), Stream.of(more)), Stream.of("--set", "tailguard.train.checkpoint=" + init, "--set", "tailguard.train.out=" + out,
                "--set", "tailguard.train.task=math", "--set", "tailguard.train.steps=2", "--set", "tailguard.train.eval-n=2",
                "--set", "tailguard.rollout.group-size=2", "--set", "tailguard.learner.groups-per-step=2",
                "--set", "tailguard.controller.window=1s", "--set", "tailguard.metrics.port=0", "--set", "tailguard.admin.port=0",
                "--json")).toArray(String[]::new);
    }

    @Test
    void trainRunsOnTheDatasetAndRecordsItsSha256() throws IOException {
        Path out = tmp.resolve("run");
        CliBadInputTest.Run r = CliBadInputTest.cli(trainArgs(out, "--set", "tailguard.train.dataset=" + train,
                "--set", "tailguard.train.max-new-tokens=6", "--set", "tailguard.train.held-out=" + heldOut));
        assertEquals(0, r.code(), r.err());
        String[] lines = r.out().strip().split("\n");
        JsonObject j = JsonParser.parseString(lines[lines.length - 1]).getAsJsonObject();
        assertEquals(2, j.get("steps").getAsInt());
        assertEquals(heldOut.toString(), j.get("held_out").getAsString());
        assertTrue(j.get("pass_at_1_start").isJsonPrimitive() && j.get("pass_at_1_end").isJsonPrimitive(), j.toString());
        String sha = DatasetTask.sha256(train);
        assertTrue(Files.readString(out.resolve("dataset.sha256")).startsWith(sha));
        assertTrue(Files.readString(Path.of(j.get("record").getAsString())).contains(sha));
        // the groups trained are records of the file
        assertTrue(Files.isRegularFile(out.resolve("store/v000002/manifest.json")));

        // another file under the same run directory, trained further (its 2 steps are done): every
        // node must read the same records
        Path other = math(tmp.resolve("other.jsonl"), 100, 6);
        CliBadInputTest.Run changed = CliBadInputTest.cli(trainArgs(out, "--set", "tailguard.train.dataset=" + other,
                "--set", "tailguard.train.max-new-tokens=6", "--set", "tailguard.train.steps=3"));
        assertEquals(2, changed.code(), changed.err());
        assertTrue(changed.err().contains("tailguard.train.dataset: " + other + " has sha256 " + DatasetTask.sha256(other)
                + ", but the run in " + out + " trains on a file with sha256 " + sha), changed.err());
    }

    @Test
    void theRunsCalibrationCalibratesOnTheRecords() throws IOException {
        Path out = tmp.resolve("cal");
        CliBadInputTest.Run r = CliBadInputTest.cli(trainArgs(out, "--calibrate-only", "--set", "tailguard.controller.schedule=calibrate",
                "--set", "tailguard.controller.max-budget=64", "--set", "tailguard.controller.bin-width=64",
                "--set", "tailguard.train.dataset=" + train, "--set", "tailguard.train.max-new-tokens=6"));
        assertEquals(0, r.code(), r.err());
        assertTrue(Files.isRegularFile(out.resolve("calibrated.conf")), r.err());
    }

    @Test
    void trainBadInputNamesTheKey() {
        Path out = tmp.resolve("bad");
        CliBadInputTest.Run missing = CliBadInputTest.cli(trainArgs(out, "--set", "tailguard.train.dataset=" + tmp.resolve("none.jsonl"),
                "--set", "tailguard.train.max-new-tokens=6"));
        assertEquals(2, missing.code(), missing.err());
        assertTrue(missing.err().contains("tailguard.train.dataset: math dataset " + tmp.resolve("none.jsonl") + ": file not found"),
                missing.err());
        CliBadInputTest.Run none = CliBadInputTest.cli(trainArgs(out, "--set", "tailguard.train.max-new-tokens=6"));
        assertEquals(2, none.code(), none.err());
        assertTrue(none.err().contains("tailguard.train.dataset: task math needs its JSON-lines file"), none.err());
        CliBadInputTest.Run builtin = CliBadInputTest.cli(trainArgs(out, "--set", "tailguard.train.task=kv-recall",
                "--set", "tailguard.train.dataset=" + train));
        assertEquals(2, builtin.code(), builtin.err());
        assertTrue(builtin.err().contains("tailguard.train.dataset: kv-recall is a built-in task"), builtin.err());
        CliBadInputTest.Run budget = CliBadInputTest.cli(trainArgs(out, "--set", "tailguard.train.dataset=" + train));
        assertEquals(2, budget.code(), budget.err());
        assertTrue(budget.err().contains("tailguard.train.max-new-tokens: dataset task math needs a completion budget"), budget.err());
        CliBadInputTest.Run chat = CliBadInputTest.cli(trainArgs(out, "--set", "tailguard.train.dataset=" + train,
                "--set", "tailguard.train.max-new-tokens=6", "--set", "tailguard.train.chat-template=on"));
        assertEquals(2, chat.code(), chat.err());
        assertTrue(chat.err().contains("tailguard.train.chat-template: on, but checkpoint " + init + " has no chat template"),
                chat.err());
        assertTrue(!Files.exists(out.resolve("store")), "nothing run");
    }
}
