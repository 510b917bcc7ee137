package io.tailguard.actors.cli;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.tailguard.model.PackedLinear;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * generate and eval take a compressed checkpoint directory as it is and decode on its packed weights:
 * the same greedy output as the plain float32 export of the same weights.
 */
class CompressedGenerationTest {
    private static JsonObject last(CliBadInputTest.Run r) {
        assertEquals(0, r.code(), r.err());
        String[] lines = r.out().strip().split("\n");
        return JsonParser.parseString(lines[lines.length - 1]).getAsJsonObject();
    }

    @Test
    void generateAndEvalDecodeACompressedDirectoryAsItsDequantizedExport(@TempDir Path tmp) {
        Assumptions.assumeTrue(PackedLinear.supported());
        Path init = tmp.resolve("init");
        Path q = tmp.resolve("q4");
        Path deq = tmp.resolve("deq");
        assertEquals(0, CliBadInputTest.cli("init-model", "--preset", "tiny", "--out", init.toString(), "--seed", "5").code());
        last(CliBadInputTest.cli("compress", "yaqa", "--checkpoint", init.toString(), "--bits", "4", "--baseline", "rtn",
                "--out", q.toString(), "--export-dequantized", deq.toString(), "--context", "64", "--calibration", "0",
                "--held-out", "2", "--eval-n", "0", "--json"));
        assertTrue(Files.isRegularFile(q.resolve("tokenizer.json")), "the source's tokenizer travels with the codes");
        JsonObject gq = last(CliBadInputTest.cli("generate", "--checkpoint", q.toString(), "--prompt", "key 7 is", "--max-new", "12", "--json"));
        JsonObject gd = last(CliBadInputTest.cli("generate", "--checkpoint", deq.toString(), "--prompt", "key 7 is", "--max-new", "12", "--json"));
        assertEquals(gd.get("output_ids").toString(), gq.get("output_ids").toString());
        assertEquals(gd.get("text").getAsString(), gq.get("text").getAsString());
        JsonObject eq = last(CliBadInputTest.cli("eval", "--checkpoint", q.toString(), "--task", "kv-recall", "--context", "96", "--n", "2", "--json"));
        JsonObject ed = last(CliBadInputTest.cli("eval", "--checkpoint", deq.toString(), "--task", "kv-recall", "--context", "96", "--n", "2", "--json"));
        assertEquals(ed.get("pass_at_1").getAsDouble(), eq.get("pass_at_1").getAsDouble());
        assertEquals(ed.get("mean_completion_tokens").getAsDouble(), eq.get("mean_completion_tokens").getAsDouble());
        CliBadInputTest.Run lora = CliBadInputTest.cli("eval", "--checkpoint", q.toString(), "--task", "kv-recall", "--context", "96",
                "--n", "2", "--budget", "64", "--lora", tmp.resolve("none").toString());
        assertEquals(2, lora.code(), lora.err());
        assertTrue(lora.err().contains("is a compressed checkpoint"), lora.err());
    }
}
