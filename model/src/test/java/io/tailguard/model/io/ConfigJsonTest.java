package io.tailguard.model.io;

import io.tailguard.model.ModelConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ConfigJsonTest {

    @TempDir
    Path tmp;

    /** The config.json of Qwen/Qwen3-0.6B as published on the Hugging Face hub. */
    private static final String QWEN3_06B = """
            {
              "architectures": ["Qwen3ForCausalLM"],
              "attention_bias": false,
              "attention_dropout": 0.0,
              "bos_token_id": 151643,
              "eos_token_id": 151645,
              "head_dim": 128,
              "hidden_act": "silu",
              "hidden_size": 1024,
              "initializer_range": 0.02,
              "intermediate_size": 3072,
              "max_position_embeddings": 40960,
              "max_window_layers": 28,
              "model_type": "qwen3",
              "num_attention_heads": 16,
              "num_hidden_layers": 28,
              "num_key_value_heads": 8,
              "rms_norm_eps": 1e-06,
              "rope_scaling": null,
              "rope_theta": 1000000,
              "sliding_window": null,
              "tie_word_embeddings": true,
              "torch_dtype": "bfloat16",
              "transformers_version": "4.51.0",
              "use_cache": true,
              "use_sliding_window": false,
              "vocab_size": 151936
            }
            """;

    private Path write(String json) throws IOException {
        Path f = tmp.resolve("config.json");
        Files.writeString(f, json);
        return f;
    }

    private void assertRejected(Path f, String... mustContain) {
        CheckpointException e = assertThrows(CheckpointException.class, () -> ConfigJson.read(f));
        assertTrue(e.getMessage().contains(f.toString()), e.getMessage());
        for (String s : mustContain) {
            assertTrue(e.getMessage().contains(s), "'" + s + "' not in: " + e.getMessage());
        }
    }

    @Test
    void readsTheRealQwen3Config() throws IOException {
        ModelConfig c = ConfigJson.read(write(QWEN3_06B));
        assertEquals(new ModelConfig(151936, 1024, 3072, 28, 16, 8, 128, 1e-6, 1e6, 40960, true, 151645), c);
    }

    @Test
    void optionalKeysTakeQwen3Defaults() throws IOException {
        ModelConfig c = ConfigJson.read(write("""
                {"vocab_size": 100, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                 "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": null}"""));
        assertEquals(16, c.headDim());
        assertEquals(1e-6, c.rmsNormEps());
        assertEquals(10000.0, c.ropeTheta());
        assertEquals(32768, c.maxPositionEmbeddings());
        assertFalse(c.tieWordEmbeddings());
        assertEquals(-1, c.eosTokenId());
    }

    @Test
    void eosTokenListTakesTheFirst() throws IOException {
        ModelConfig c = ConfigJson.read(write(QWEN3_06B.replace("\"eos_token_id\": 151645", "\"eos_token_id\": [151645, 151643]")));
        assertEquals(151645, c.eosTokenId());
    }

    @Test
    void toJsonRoundTripsAndNamesTheArchitecture() throws IOException {
        ModelConfig c = ModelConfig.preset("tiny", 99, 2);
        String json = ConfigJson.toJson(c, DType.BF16);
        assertTrue(json.contains("\"Qwen3ForCausalLM\""), json);
        assertTrue(json.contains("\"model_type\": \"qwen3\""), json);
        assertTrue(json.contains("\"torch_dtype\": \"bfloat16\""), json);
        assertEquals(c, ConfigJson.read(write(json)));
        ModelConfig noEos = new ModelConfig(99, 64, 128, 1, 2, 1, 32, 1e-5, 5e5, 128, false, -1);
        assertEquals(noEos, ConfigJson.read(write(ConfigJson.toJson(noEos, DType.F32))));
    }

    @Test
    void missingFile() {
        assertRejected(tmp.resolve("config.json"), "does not exist");
    }

    @Test
    void notJson() throws IOException {
        assertRejected(write("{\"vocab_size\": 1,"), "not valid JSON");
        assertRejected(write("[1]"), "not a JSON object");
    }

    @Test
    void missingRequiredKey() throws IOException {
        assertRejected(write(QWEN3_06B.replace("\"num_key_value_heads\": 8,", "")), "num_key_value_heads", "missing");
    }

    @Test
    void wrongType() throws IOException {
        assertRejected(write(QWEN3_06B.replace("\"hidden_size\": 1024", "\"hidden_size\": \"1024\"")), "hidden_size");
        assertRejected(write(QWEN3_06B.replace("\"hidden_size\": 1024", "\"hidden_size\": 1024.5")), "hidden_size");
        assertRejected(write(QWEN3_06B.replace("\"tie_word_embeddings\": true", "\"tie_word_embeddings\": 1")), "tie_word_embeddings");
        assertRejected(write(QWEN3_06B.replace("\"rope_theta\": 1000000", "\"rope_theta\": \"big\"")), "rope_theta");
    }

    @Test
    void modelConfigValidationBecomesCheckpointExceptionNamingTheKey() throws IOException {
        assertRejected(write(QWEN3_06B.replace("\"num_key_value_heads\": 8", "\"num_key_value_heads\": 5")),
                "num_key_value_heads");
        assertRejected(write(QWEN3_06B.replace("\"vocab_size\": 151936", "\"vocab_size\": 0")), "vocab_size");
        assertRejected(write(QWEN3_06B.replace("\"eos_token_id\": 151645", "\"eos_token_id\": 999999")), "eos_token_id");
    }
}
