package io.tailguard.actors.cli;

import com.google.gson.Gson;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.tailguard.rollout.tasks.Prompt;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.Tasks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.tailguard.actors.cli.CliBadInputTest.cli;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** verify: given completions scored by the task's verifier, one JSON line each in input order, then the summary. */
class VerifyCommandTest {
    @TempDir
    Path tmp;

    private static final Gson GSON = new Gson();

    private Path lines(String name, List<Map<String, String>> objects) throws IOException {
        List<String> out = new ArrayList<>();
        objects.forEach(o -> out.add(GSON.toJson(o)));
        return Files.write(tmp.resolve(name), out);
    }

    private static List<JsonObject> jsonLines(CliBadInputTest.Run r) {
        assertEquals(0, r.code(), r.err());
        return r.out().strip().lines().map(l -> JsonParser.parseString(l).getAsJsonObject()).toList();
    }

    @Test
    void codeCompletionsAreScoredAndHacksGetZero() throws IOException {
        Path dataset = Files.writeString(tmp.resolve("code.jsonl"),
                "{\"id\":\"add\",\"problem\":\"Write add(a, b).\",\"tests\":\"assert add(1, 2) == 3\\nassert add(2, 2) == 4\"}\n");
        Path completions = lines("c.jsonl", List.of(
                Map.of("id", "add", "completion", "```python\ndef add(a, b):\n    return a + b\n```"),
                Map.of("id", "add", "completion", "```python\nimport sys\ndef add(a, b):\n    return 3\nsys.exit(0)\n```"),
                Map.of("id", "add", "completion", "```python\nclass E:\n    def __eq__(s, o):\n        return True\n"
                        + "def add(a, b):\n    return E()\n```"),
                Map.of("id", "add", "completion", "no code here")));
        List<JsonObject> out = jsonLines(cli("verify", "--task", "code", "--dataset", dataset.toString(),
                "--completions", completions.toString(), "--json"));
        assertEquals(5, out.size());
        double[] rewards = {1, 0, 0, 0};
        for (int i = 0; i < 4; i++) {
            assertEquals("add", out.get(i).get("id").getAsString());
            assertEquals(rewards[i], out.get(i).get("reward").getAsDouble(), out.get(i).toString());
        }
        assertEquals("correct", out.get(0).get("reason").getAsString());
        assertEquals("no code block found", out.get(3).get("reason").getAsString());
        JsonObject summary = out.get(4);
        assertEquals(4, summary.get("n").getAsInt());
        assertEquals(1, summary.get("correct").getAsInt());
        assertEquals(0.25, summary.get("mean_reward").getAsDouble());
        assertEquals(3, summary.getAsJsonObject("failures").entrySet().stream().mapToInt(e -> e.getValue().getAsInt()).sum());
    }

    @Test
    void builtInPromptsAreRegeneratedFromTheirIds() throws IOException {
        Task task = Tasks.builtin("kv-recall", 128);
        Prompt p = task.prompt(42, 3);
        String right = task.solution(p).orElseThrow();
        Path completions = lines("k.jsonl", List.of(Map.of("id", p.id(), "completion", right),
                Map.of("id", p.id(), "completion", "x")));
        List<JsonObject> out = jsonLines(cli("verify", "--task", "kv-recall", "--completions", completions.toString(), "--json"));
        assertEquals(1.0, out.get(0).get("reward").getAsDouble(), out.get(0).toString());
        assertEquals(0.0, out.get(1).get("reward").getAsDouble());
        assertEquals(p.id(), out.get(1).get("id").getAsString());
    }

    @Test
    void badLinesExitTwoNamingTheFileAndLineBeforeAnythingIsScored() throws IOException {
        Path dataset = Files.writeString(tmp.resolve("code.jsonl"),
                "{\"id\":\"add\",\"problem\":\"p\",\"tests\":\"assert add(1, 2) == 3\"}\n");
        Map<String, String> bad = Map.of(
                "{\"id\":\"add\",\"completion\":\"x\"}\n{\"id\":\"add\"}\n", ":2: field \"completion\" must be a string",
                "{\"id\":\"sub\",\"completion\":\"x\"}\n", ":1: id \"sub\" is not a record of",
                "{\"id\":\"add\",\"completion\":\"x\"} trailing\n", ":1: ",
                "[1, 2]\n", ":1: not a JSON object",
                "\n\n", "no completions");
        int n = 0;
        for (Map.Entry<String, String> e : bad.entrySet()) {
            Path f = Files.writeString(tmp.resolve("bad" + n++ + ".jsonl"), e.getKey());
            CliBadInputTest.Run r = cli("verify", "--task", "code", "--dataset", dataset.toString(), "--completions", f.toString(), "--json");
            assertEquals(2, r.code(), e.getKey() + " -> " + r.err());
            assertEquals("", r.out(), "nothing scored");
            assertEquals(1, r.err().strip().lines().count(), r.err());
            assertTrue(r.err().contains(f.toString()) && r.err().contains(e.getValue()), r.err());
        }
        Path builtin = Files.writeString(tmp.resolve("b.jsonl"), "{\"id\":\"copy/c128/s1/i0\",\"completion\":\"x\"}\n");
        CliBadInputTest.Run r = cli("verify", "--task", "kv-recall", "--completions", builtin.toString());
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().contains("b.jsonl:1: id \"copy/c128/s1/i0\" is not a prompt id of kv-recall"), r.err());
        // verify renders no prompt: the chat template's options are refused, not ignored
        r = cli("verify", "--task", "kv-recall", "--completions", builtin.toString(), "--enable-thinking", "false");
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().contains("--enable-thinking: verify renders no prompt"), r.err());
    }
}
