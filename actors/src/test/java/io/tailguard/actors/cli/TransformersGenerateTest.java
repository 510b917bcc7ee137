package io.tailguard.actors.cli;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.tailguard.actors.runtime.DeploymentFilesTest;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code tailguard generate} on checkpoints transformers saved (model/src/test/python/hf_reference.py:
 * a transformers 5 config.json with rope_parameters, and a BF16, tied, sharded one with transformers
 * 4's top-level rope_theta; RoPE base 1e6 in both): the greedy tokens of transformers' KV-cached
 * generate, and each token's log-prob within 1e-4. Skipped without a Python that imports torch and
 * transformers (TAILGUARD_PYTHON, else python3) unless TAILGUARD_REQUIRE_TORCH=1.
 */
class TransformersGenerateTest {
    static final String PYTHON = System.getenv().getOrDefault("TAILGUARD_PYTHON", "python3");
    static final int NEW = 12;
    static final int[] PROMPT = {5, 17, 3, 40, 22, 9, 31};

    @TempDir
    static Path tmp;

    static String config(int vocab, boolean tied) {
        return "{\"vocab_size\": " + vocab + ", \"hidden_size\": 32, \"intermediate_size\": 64, \"num_hidden_layers\": 2,"
                + " \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"head_dim\": 16, \"tie_word_embeddings\": " + tied
                + ", \"max_position_embeddings\": 40960, \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 1000000.0}}";
    }

    static String case_(String name, int seed, String dtype, String style, String shard, String config) {
        return "{\"name\": \"" + name + "\", \"seed\": " + seed + ", \"dtype\": \"" + dtype + "\", \"style\": \"" + style
                + "\", \"max_shard_size\": " + (shard == null ? "null" : "\"" + shard + "\"") + ", \"config\": " + config
                + ", \"sequences\": [], \"prompts\": [" + java.util.Arrays.toString(PROMPT) + "], \"greedy_new\": " + NEW + "}";
    }

    @BeforeAll
    static void runTransformers() throws Exception {
        boolean ok;
        try {
            Process p = new ProcessBuilder(PYTHON, "-c", "import torch, transformers").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            ok = p.waitFor() == 0;
        } catch (IOException e) {
            ok = false;
        }
        String why = PYTHON + " cannot import torch and transformers (set TAILGUARD_PYTHON; .ci/run builds one)";
        if ("1".equals(System.getenv("TAILGUARD_REQUIRE_TORCH"))) {
            assertTrue(ok, why);
        }
        Assumptions.assumeTrue(ok, why);
        Path spec = tmp.resolve("spec.json");
        Files.writeString(spec, "{\"cases\": [" + case_("t5-f32-untied", 31, "float32", "transformers5", null, config(71, false))
                + ", " + case_("t4-bf16-tied-sharded", 32, "bfloat16", "transformers4", "10KB", config(71, true)) + "]}");
        Path script = DeploymentFilesTest.repoRoot().resolve("model/src/test/python/hf_reference.py");
        ProcessBuilder pb = new ProcessBuilder(List.of(PYTHON, script.toString(), "--spec", spec.toString(), "--out", tmp.toString()))
                .redirectErrorStream(true);
        pb.environment().put("OMP_NUM_THREADS", "1");
        pb.environment().put("HF_HUB_OFFLINE", "1");
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), "hf_reference.py failed: " + out);
    }

    @ParameterizedTest
    @ValueSource(strings = {"t5-f32-untied", "t4-bf16-tied-sharded"})
    void greedyGenerateMatchesTransformers(String name) throws IOException {
        JsonObject ref = JsonParser.parseString(Files.readString(tmp.resolve(name).resolve("ref.json"))).getAsJsonObject();
        assertTrue(ref.get("greedy_margin").getAsDouble() >= 1e-3, "the reference's greedy steps nearly tie: pick another seed");
        String ids = java.util.Arrays.toString(PROMPT).replaceAll("[\\[\\] ]", "");
        CliBadInputTest.Run r = CliBadInputTest.cli("generate", "--checkpoint", tmp.resolve(name).resolve("checkpoint").toString(),
                "--prompt-ids", ids, "--max-new", String.valueOf(NEW), "--json");
        assertEquals(0, r.code(), r.err());
        JsonObject got = JsonParser.parseString(r.out().strip().lines().reduce((a, b) -> b).orElseThrow()).getAsJsonObject();
        JsonArray tokens = ref.getAsJsonArray("greedy_tokens").get(0).getAsJsonArray();
        JsonArray steps = ref.getAsJsonArray("greedy_logprobs").get(0).getAsJsonArray();
        assertEquals(tokens, got.getAsJsonArray("output_ids"), name + ": greedy tokens");
        JsonArray logprobs = got.getAsJsonArray("logprobs");
        for (int t = 0; t < NEW; t++) {
            double want = steps.get(t).getAsJsonArray().get(tokens.get(t).getAsInt()).getAsDouble();
            assertEquals(want, logprobs.get(t).getAsDouble(), 1e-4, name + ": log-prob of step " + t);
        }
    }
}
