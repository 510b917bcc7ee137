package io.tailguard.actors.cli;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.tailguard.rollout.sparse.Schedule;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

import static io.tailguard.actors.cli.CliBadInputTest.assertBadInput;
import static io.tailguard.actors.cli.CliBadInputTest.cli;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** eval, mismatch and calibrate end to end on a tiny random checkpoint, and their bad input. */
class TaskCommandsTest {
    @TempDir
    static Path tmp;
    static String ckpt;

    @BeforeAll
    static void makeCheckpoint() {
        ckpt = tmp.resolve("tiny").toString();
        CliBadInputTest.Run r = cli("init-model", "--preset", "tiny", "--out", ckpt);
        assertEquals(0, r.code(), r.err());
    }

    static JsonObject lastJson(CliBadInputTest.Run r) {
        assertEquals(0, r.code(), r.err());
        List<String> lines = r.out().strip().lines().toList();
        JsonElement e = JsonParser.parseString(lines.get(lines.size() - 1));
        assertTrue(e.isJsonObject(), r.out());
        return e.getAsJsonObject();
    }

    static void assertKeys(JsonObject o, String... keys) {
        for (String k : keys) {
            assertTrue(o.has(k), "missing key " + k + " in " + o);
        }
    }

    static Path write(String name, String text) throws IOException {
        Path f = tmp.resolve(name);
        Files.writeString(f, text);
        return f;
    }

    static int failureCount(JsonObject o) {
        return o.getAsJsonObject("failures").entrySet().stream().mapToInt(e -> e.getValue().getAsInt()).sum();
    }

    // ---------------------------------------------------------------- eval

    @Test
    void evalPrintsPassRatesAndFailureReasons() {
        JsonObject o = lastJson(cli("eval", "--checkpoint", ckpt, "--task", "kv-recall", "--context", "128", "--n", "3",
                "--batch", "4", "--json"));
        assertKeys(o, "pass_at_1", "pass_at_k", "k", "n", "mean_completion_tokens", "failures");
        assertEquals(3, o.get("n").getAsInt());
        assertEquals(1, o.get("k").getAsInt());
        double pass1 = o.get("pass_at_1").getAsDouble();
        assertEquals(3, failureCount(o) + Math.round(pass1 * 3));
    }

    @Test
    void evalTakesTheTaskKnobs() {
        JsonObject o = lastJson(cli("eval", "--checkpoint", ckpt, "--task", "kv-trace", "--task-steps", "2", "--reward", "graded",
                "--context", "128", "--n", "3", "--batch", "4", "--json"));
        assertEquals(3, o.get("n").getAsInt());
        assertEquals(3, failureCount(o) + Math.round(o.get("pass_at_1").getAsDouble() * 3));
        // 2 steps of "ab123\n" (keys of 2 letters at context 128): 12 tokens + eos = 13, so at most 13 + 4 + 8 = 25
        // new tokens; the default 128 / 16 = 8 steps would allow 49 + 13 + 8 = 70
        assertTrue(o.get("mean_completion_tokens").getAsDouble() <= 25, o.toString());
    }

    @Test
    void theTaskKnobsAreBadInputForTasksWithoutSteps() throws IOException {
        assertBadInput(cli("eval", "--checkpoint", ckpt, "--task", "kv-recall", "--task-steps", "2", "--n", "1"),
                "--task-steps", "kv-recall has a fixed completion");
        assertBadInput(cli("eval", "--checkpoint", ckpt, "--task", "kv-recall", "--reward", "graded", "--n", "1"), "--reward");
        assertBadInput(cli("eval", "--checkpoint", ckpt, "--task", "kv-trace", "--reward", "partial", "--n", "1"),
                "--reward: must be exact or graded");
        assertBadInput(cli("eval", "--checkpoint", ckpt, "--task", "kv-trace", "--task-steps", "-1", "--n", "1"), "--task-steps");
        Path f = write("knobs.jsonl", "{\"id\":\"a\",\"problem\":\"1+1?\",\"answer\":\"2\"}\n");
        assertBadInput(cli("eval", "--checkpoint", ckpt, "--task", "math", "--dataset", f.toString(), "--task-steps", "2", "--n", "1"),
                "--task-steps", "dataset task");
        assertBadInput(cli("calibrate", "--checkpoint", ckpt, "--task", "pointer-chase", "--task-steps", "3", "--tau", "0.9",
                "--out", tmp.resolve("k.conf").toString()), "--task-steps");
        assertBadInput(cli("pretrain", "--task", "kv-recall", "--reward", "graded", "--out", tmp.resolve("p").toString(),
                "--steps", "1"), "--reward");
        assertBadInput(cli("train-sync", "--checkpoint", ckpt, "--task", "marked-sum", "--task-steps", "3", "--dense",
                "--steps", "1"), "--task-steps");
    }

    @Test
    void evalWithSamplesUnderASparseBudget() {
        JsonObject o = lastJson(cli("eval", "--checkpoint", ckpt, "--task", "kv-recall", "--context", "128", "--n", "2",
                "--samples", "2", "--budget", "64", "--json"));
        assertEquals(2, o.get("k").getAsInt());
        assertEquals(4, failureCount(o) + Math.round(o.get("pass_at_1").getAsDouble() * 4));
        assertTrue(o.get("pass_at_k").getAsDouble() >= o.get("pass_at_1").getAsDouble());
    }

    @Test
    void evalOnADatasetWarnsAboutSkippedLines() throws IOException {
        Path f = write("math.jsonl", "{\"id\":\"a\",\"problem\":\"1+1?\",\"answer\":\"2\"}\nnot json\n"
                + "{\"id\":\"b\",\"problem\":\"2+3?\",\"answer\":\"5\"}\n");
        CliBadInputTest.Run r = cli("eval", "--checkpoint", ckpt, "--task", "math", "--dataset", f.toString(), "--n", "10",
                "--max-new", "6", "--json");
        JsonObject o = lastJson(r);
        assertEquals(2, o.get("n").getAsInt());
        assertTrue(r.err().contains("1 line skipped"), r.err());
        assertTrue(r.err().contains(f + ":2"), r.err());
    }

    @Test
    void evalWithAMissingOrEmptyDatasetIsBadInput() throws IOException {
        assertBadInput(cli("eval", "--checkpoint", ckpt, "--task", "math", "--dataset", tmp.resolve("nope.jsonl").toString(),
                "--n", "2"), "nope.jsonl");
        Path empty = write("empty.jsonl", "\n");
        assertBadInput(cli("eval", "--checkpoint", ckpt, "--task", "math", "--dataset", empty.toString(), "--n", "2"),
                "empty.jsonl");
        assertBadInput(cli("eval", "--checkpoint", ckpt, "--task", "math", "--n", "2"), "--dataset");
        assertBadInput(cli("eval", "--checkpoint", ckpt, "--task", "sudoku", "--n", "2"), "sudoku");
    }

    @Test
    void evalRendersDatasetPromptsWithTheCheckpointsChatTemplate() throws IOException {
        Path f = write("chat-math.jsonl", "{\"id\":\"a\",\"problem\":\"1+1?\",\"answer\":\"2\"}\n"
                + "{\"id\":\"b\",\"problem\":\"2+3?\",\"answer\":\"5\"}\n");
        // without a template: on is refused, and so are the options that need one
        assertBadInput(cli("eval", "--checkpoint", ckpt, "--task", "math", "--dataset", f.toString(), "--n", "2",
                "--chat-template", "on"), "--chat-template: on, but checkpoint", "has no chat template");
        assertBadInput(cli("eval", "--checkpoint", ckpt, "--task", "math", "--dataset", f.toString(), "--n", "2",
                "--system-prompt", "Be brief."), "--system-prompt: no chat template applies");
        assertBadInput(cli("eval", "--checkpoint", ckpt, "--task", "math", "--dataset", f.toString(), "--n", "2",
                "--chat-template", "sometimes"), "--chat-template: must be auto, on or off");

        Path chat = tmp.resolve("tiny-chat");
        Files.createDirectories(chat);
        try (var files = Files.list(Path.of(ckpt))) {
            for (Path p : files.toList()) {
                Files.copy(p, chat.resolve(p.getFileName()));
            }
        }
        Files.writeString(chat.resolve("chat_template.jinja"),
                "{% for m in messages %}[{{ m.role }}]{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}");
        JsonObject o = lastJson(cli("eval", "--checkpoint", chat.toString(), "--task", "math", "--dataset", f.toString(),
                "--n", "2", "--max-new", "4", "--system-prompt", "Be brief.", "--json"));
        assertEquals(2, o.get("n").getAsInt());
        // a built-in task keeps its raw format under auto, so a system prompt has nowhere to go
        assertBadInput(cli("eval", "--checkpoint", chat.toString(), "--task", "kv-recall", "--n", "1", "--context", "64",
                "--system-prompt", "Be brief."), "--system-prompt", "auto applies it to dataset tasks only");

        // generate renders a --prompt text with on, and takes the template's stop token besides eos
        JsonObject g = lastJson(cli("generate", "--checkpoint", chat.toString(), "--prompt", "hi", "--chat-template", "on",
                "--system-prompt", "S", "--max-new", "2", "--json"));
        int[] expected = io.tailguard.model.tokenizer.CharTokenizer.standard().encode("[system]S\n[user]hi\n[assistant]");
        JsonArray got = g.getAsJsonArray("prompt_ids");
        assertEquals(expected.length, got.size());
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], got.get(i).getAsInt());
        }
        assertBadInput(cli("generate", "--checkpoint", chat.toString(), "--prompt-ids", "5,6", "--chat-template", "on",
                "--max-new", "2"), "--chat-template");

        Files.writeString(chat.resolve("chat_template.jinja"), "{{ messages[0].content | shout }}");
        assertBadInput(cli("eval", "--checkpoint", chat.toString(), "--task", "math", "--dataset", f.toString(), "--n", "2"),
                chat.resolve("chat_template.jinja").toString(), "unknown filter: shout");
        Files.writeString(chat.resolve("chat_template.jinja"), "{% for m in messages %}{{ m.content }}");
        assertBadInput(cli("eval", "--checkpoint", chat.toString(), "--task", "math", "--dataset", f.toString(), "--n", "2"),
                chat.resolve("chat_template.jinja").toString(), "Missing end tag");
    }

    // ---------------------------------------------------------------- mismatch

    @Test
    void theDenseScheduleHasAlphaOneInEveryBin() throws IOException {
        Path dense = write("dense.conf", Schedule.dense().toHocon());
        JsonObject o = lastJson(cli("mismatch", "--checkpoint", ckpt, "--task", "kv-recall", "--schedule", dense.toString(),
                "--context", "120", "--n", "2", "--bin-width", "64", "--json"));
        assertKeys(o, "bins", "trajectories", "probed", "schedule_version");
        JsonArray bins = o.getAsJsonArray("bins");
        assertFalse(bins.isEmpty());
        for (JsonElement b : bins) {
            JsonObject bin = b.getAsJsonObject();
            assertKeys(bin, "start", "end", "tokens", "alpha_p5", "alpha_mean");
            assertEquals(1.0, bin.get("alpha_p5").getAsDouble(), 1e-5, bin.toString());
            assertEquals(1.0, bin.get("alpha_mean").getAsDouble(), 1e-5, bin.toString());
        }
        assertEquals(2, o.get("trajectories").getAsInt());
        assertEquals(2, o.get("probed").getAsInt());
    }

    @Test
    void aSmallBudgetGivesAlphasInTheUnitInterval() {
        JsonObject o = lastJson(cli("mismatch", "--checkpoint", ckpt, "--task", "kv-recall", "--budget", "48",
                "--context", "200", "--n", "2", "--bin-width", "128", "--json"));
        assertEquals(1, o.get("schedule_version").getAsInt());
        long tokens = 0;
        for (JsonElement b : o.getAsJsonArray("bins")) {
            JsonObject bin = b.getAsJsonObject();
            double p5 = bin.get("alpha_p5").getAsDouble();
            assertTrue(p5 >= 0 && p5 <= 1 && p5 <= bin.get("alpha_mean").getAsDouble() + 1e-9, bin.toString());
            assertEquals(128, bin.get("end").getAsInt() - bin.get("start").getAsInt());
            tokens += bin.get("tokens").getAsLong();
        }
        assertTrue(tokens > 0);
    }

    @Test
    void aCompressedActorIsProbedAgainstTheDensePolicy() throws IOException {
        Path dense = write("dense-actor.conf", Schedule.dense().toHocon());
        // The policy itself as the actor: identical models give α = 1 everywhere (docs/algorithms.md, "The α mismatch and its tail").
        JsonObject same = lastJson(cli("mismatch", "--checkpoint", ckpt, "--actor", ckpt, "--task", "kv-recall",
                "--schedule", dense.toString(), "--context", "120", "--n", "2", "--bin-width", "64", "--json"));
        for (JsonElement b : same.getAsJsonArray("bins")) {
            assertEquals(1.0, b.getAsJsonObject().get("alpha_mean").getAsDouble(), 1e-5, b.toString());
        }
        // A 2-bit round-to-nearest copy, loaded from its packed codes: some tokens now disagree.
        Path q = tmp.resolve("rtn2");
        assertEquals(0, cli("compress", "yaqa", "--checkpoint", ckpt, "--bits", "2", "--baseline", "rtn", "--out", q.toString(),
                "--eval-n", "0", "--calibration", "0").code());
        JsonObject o = lastJson(cli("mismatch", "--checkpoint", ckpt, "--actor", q.toString(), "--task", "kv-recall",
                "--schedule", dense.toString(), "--context", "120", "--n", "2", "--bin-width", "64", "--json"));
        assertEquals(q.toString(), o.get("actor").getAsString());
        double min = 1;
        for (JsonElement b : o.getAsJsonArray("bins")) {
            double mean = b.getAsJsonObject().get("alpha_mean").getAsDouble();
            assertTrue(mean > 0 && mean <= 1 + 1e-9, b.toString());
            min = Math.min(min, mean);
        }
        assertTrue(min < 0.999, "a 2-bit actor should not match the policy: " + o);
        assertBadInput(cli("mismatch", "--checkpoint", ckpt, "--actor", tmp.resolve("nope").toString(), "--task", "kv-recall",
                "--budget", "48"), "--actor", "not a directory");
    }

    @Test
    void badScheduleFilesAreRefusedNamingTheKey() throws IOException {
        String head = "tailguard.schedule {\n version = 1\n kind = bins\n bin-width = 64\n bins = [\n";
        Path decreasing = write("decreasing.conf", head + "{ start = 0, end = 64, budget = 96 }\n{ start = 64, budget = 48 }\n]\n}\n");
        Path notPage = write("notpage.conf", head + "{ start = 0, end = 64, budget = 100 }\n]\n}\n");
        Path gap = write("gap.conf", head + "{ start = 0, end = 64, budget = 48 }\n{ start = 128, budget = 48 }\n]\n}\n");
        Path unknown = write("unknown.conf", "tailguard.schedule {\n version = 1\n kind = fixed\n budget = 64\n budgte = 9\n}\n");
        String[][] cases = {
                {decreasing.toString(), "tailguard.schedule.bins[1].budget", "decrease"},
                {notPage.toString(), "tailguard.schedule.bins[0].budget", "multiple"},
                {gap.toString(), "tailguard.schedule.bins[1].start", "gap"},
                {unknown.toString(), "tailguard.schedule.budgte", "unknown key"}};
        for (String[] c : cases) {
            assertBadInput(cli("mismatch", "--checkpoint", ckpt, "--task", "kv-recall", "--schedule", c[0], "--context", "128"),
                    c[0], c[1], c[2]);
        }
        assertBadInput(cli("mismatch", "--checkpoint", ckpt, "--task", "kv-recall", "--budget", "100"), "--budget", "multiple");
        assertBadInput(cli("eval", "--checkpoint", ckpt, "--task", "kv-recall", "--n", "1", "--schedule", cases[0][0]),
                "tailguard.schedule.bins[1].budget");
        assertEquals(2, cli("mismatch", "--checkpoint", ckpt, "--task", "kv-recall").code(), "a schedule or budget is required");
    }

    // ---------------------------------------------------------------- calibrate

    @Test
    void calibrateWritesANonDecreasingScheduleThatParsesBack() throws IOException {
        Path out = tmp.resolve("sched").resolve("calibrated.conf");
        JsonObject o = lastJson(cli("calibrate", "--checkpoint", ckpt, "--task", "kv-recall", "--tau", "0.86",
                "--budgets", "96,48", "--contexts", "100,200", "--n", "2", "--bin-width", "64", "--out", out.toString(), "--json"));
        assertKeys(o, "schedule", "budgets", "predicted_speedup", "table");
        assertEquals(out.toString(), o.get("schedule").getAsString());
        Schedule s = Schedule.parse(out);
        int[] budgets = s.budgets();
        for (int i = 1; i < budgets.length; i++) {
            assertTrue(budgets[i] >= budgets[i - 1], java.util.Arrays.toString(budgets));
        }
        JsonArray printed = o.getAsJsonArray("budgets");
        assertEquals(budgets.length, printed.size());
        for (int i = 0; i < budgets.length; i++) {
            assertEquals(budgets[i], printed.get(i).getAsInt());
        }
        assertEquals(64, s.binWidth());
        JsonArray table = o.getAsJsonArray("table");
        assertEquals(2, table.size());
        assertEquals(48, table.get(0).getAsJsonObject().get("budget").getAsInt(), "candidates ascending");
        JsonObject firstBin = table.get(0).getAsJsonObject().getAsJsonArray("bins").get(0).getAsJsonObject();
        assertKeys(firstBin, "start", "alpha_p5", "tokens");
        assertTrue(o.get("predicted_speedup").getAsDouble() > 0);
        try (var siblings = Files.list(out.getParent())) {
            assertEquals(Set.of(out), Set.copyOf(siblings.toList()), "no temporary file left beside the schedule");
        }
    }

    @Test
    void calibrateWritesTheDenseLayersItMeasuredWith() throws IOException {
        Path out = tmp.resolve("dense-layers.conf");
        lastJson(cli("calibrate", "--checkpoint", ckpt, "--task", "kv-recall", "--tau", "0.86", "--budgets", "48",
                "--contexts", "100", "--n", "1", "--bin-width", "64", "--dense-layers", "2,0", "--out", out.toString(), "--json"));
        assertTrue(Files.readString(out).contains("dense-layers = [0, 2]"), Files.readString(out));
        assertEquals(Set.of(0, 2), Schedule.parse(out).denseLayers());
        assertBadInput(cli("calibrate", "--checkpoint", ckpt, "--task", "kv-recall", "--tau", "0.86", "--dense-layers", "0,-1",
                "--out", tmp.resolve("x.conf").toString()), "--dense-layers");
    }

    @Test
    void calibrateRefusesATauOutsideTheUnitInterval() {
        for (String tau : new String[] {"0", "1.5", "-0.2"}) {
            assertBadInput(cli("calibrate", "--checkpoint", ckpt, "--task", "kv-recall", "--tau", tau,
                    "--out", tmp.resolve("x.conf").toString()), "--tau");
        }
        assertBadInput(cli("calibrate", "--checkpoint", ckpt, "--task", "kv-recall", "--tau", "0.86", "--budgets", "40",
                "--out", tmp.resolve("x.conf").toString()), "--budgets");
        assertFalse(Files.exists(tmp.resolve("x.conf")));
    }

    @Test
    void everyNewCommandHasHelp() {
        for (String c : new String[] {"eval", "mismatch", "calibrate"}) {
            CliBadInputTest.Run r = cli(c, "--help");
            assertEquals(0, r.code(), c);
            assertTrue(r.out().contains("Usage:"), c);
            assertFalse(r.err().contains("WARN"), "help text formats cleanly: " + r.err());
        }
    }
}
