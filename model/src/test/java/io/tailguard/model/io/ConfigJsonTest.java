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

    /** What transformers 5.18's Qwen3ForCausalLM.save_pretrained writes (rope_parameters, dtype, layer_types). */
    private static final String TRANSFORMERS_5 = """
            {
              "architectures": ["Qwen3ForCausalLM"],
              "attention_bias": false,
              "attention_dropout": 0.0,
              "bos_token_id": null,
              "dtype": "float32",
              "eos_token_id": null,
              "head_dim": 8,
              "hidden_act": "silu",
              "hidden_size": 32,
              "initializer_range": 0.02,
              "intermediate_size": 48,
              "layer_types": ["full_attention", "full_attention"],
              "max_position_embeddings": 67108864,
              "max_window_layers": 28,
              "model_type": "qwen3",
              "num_attention_heads": 4,
              "num_hidden_layers": 2,
              "num_key_value_heads": 2,
              "pad_token_id": null,
              "rms_norm_eps": 1e-06,
              "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"},
              "sliding_window": null,
              "tie_word_embeddings": false,
              "transformers_version": "5.18.0",
              "use_cache": true,
              "use_sliding_window": false,
              "vocab_size": 61
            }
            """;

    @Test
    void readsTheRopeBaseOfATransformers5Config() throws IOException {
        ModelConfig c = ConfigJson.read(write(TRANSFORMERS_5));
        assertEquals(new ModelConfig(61, 32, 48, 2, 4, 2, 8, 1e-6, 1e6, 1 << 26, false, -1), c);
        // nested by layer type, as transformers allows
        c = ConfigJson.read(write(TRANSFORMERS_5.replace("\"rope_parameters\": {\"rope_theta\": 1000000.0, \"rope_type\": \"default\"}",
                "\"rope_parameters\": {\"full_attention\": {\"rope_theta\": 500000.0, \"rope_type\": \"default\"}}")));
        assertEquals(5e5, c.ropeTheta());
        // rope_parameters without its own rope_theta takes the top-level one
        c = ConfigJson.read(write(TRANSFORMERS_5.replace("\"rope_theta\": 1000000.0, ", "")
                .replace("\"rms_norm_eps\"", "\"rope_theta\": 250000, \"rms_norm_eps\"")));
        assertEquals(2.5e5, c.ropeTheta());
        // both, agreeing
        c = ConfigJson.read(write(TRANSFORMERS_5.replace("\"rms_norm_eps\"", "\"rope_theta\": 1e6, \"rms_norm_eps\"")));
        assertEquals(1e6, c.ropeTheta());
        // a transformers 4 rope_scaling of the default type
        c = ConfigJson.read(write(QWEN3_06B.replace("\"rope_scaling\": null", "\"rope_scaling\": {\"rope_type\": \"default\"}")));
        assertEquals(1e6, c.ropeTheta());
    }

    @Test
    void refusesRopeScalingAndDisagreeingBases() throws IOException {
        assertRejected(write(QWEN3_06B.replace("\"rope_scaling\": null",
                "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 4.0, \"original_max_position_embeddings\": 32768}")),
                "rope_scaling.rope_type", "llama3");
        assertRejected(write(QWEN3_06B.replace("\"rope_scaling\": null", "\"rope_scaling\": {\"type\": \"dynamic\", \"factor\": 2.0}")),
                "rope_scaling.type", "dynamic");
        assertRejected(write(TRANSFORMERS_5.replace("\"rope_type\": \"default\"", "\"rope_type\": \"linear\", \"factor\": 2.0")),
                "rope_parameters.rope_type", "linear");
        assertRejected(write(TRANSFORMERS_5.replace("\"rms_norm_eps\"", "\"rope_theta\": 10000, \"rms_norm_eps\"")),
                "key rope_theta", "rope_parameters.rope_theta");
        assertRejected(write(TRANSFORMERS_5.replace("1000000.0, \"rope_type\"", "\"big\", \"rope_type\"")),
                "rope_parameters.rope_theta");
        assertRejected(write(TRANSFORMERS_5.replace("\"rope_parameters\": {", "\"rope_parameters\": 3, \"x\": {")),
                "rope_parameters", "expected an object");
    }

    @Test
    void readsYarnAsQwen3DocumentsIt() throws IOException {
        // Qwen3's model card: rope_scaling yarn, factor 4, original 32768, with max_position_embeddings 131072
        ModelConfig c = ConfigJson.read(write(QWEN3_06B.replace("\"rope_scaling\": null",
                "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0, \"original_max_position_embeddings\": 32768}")
                .replace("\"max_position_embeddings\": 40960", "\"max_position_embeddings\": 131072")));
        assertEquals(new ModelConfig.Yarn(4.0, 32768, 0.1 * Math.log(4) + 1, 32, 1, true), c.yarn());
        assertEquals(1e6, c.ropeTheta());
        assertEquals(c, ConfigJson.read(write(ConfigJson.toJson(c, DType.BF16))), "written with its rope_scaling");
        // transformers 5's layout; the factor from the lengths when null; attention from mscale and mscale_all_dim
        c = ConfigJson.read(write(TRANSFORMERS_5.replace("\"rope_type\": \"default\"",
                "\"rope_type\": \"yarn\", \"factor\": null, \"original_max_position_embeddings\": 16, \"mscale\": 2, \"mscale_all_dim\": 1")
                .replace("67108864", "64")));
        double a = (0.2 * Math.log(4) + 1) / (0.1 * Math.log(4) + 1);
        assertEquals(new ModelConfig.Yarn(4.0, 16, a, 32, 1, true), c.yarn());
        // by hand: head_dim 8, base 1e6, original 16: the correction range is dimensions [0, 1], so the
        // first frequency is kept and the other three are divided by the factor
        double[] f = c.ropeInverseFrequencies();
        assertEquals(1.0, f[0], 1e-15);
        for (int i = 1; i < 4; i++) {
            assertEquals(Math.pow(1e6, -2.0 * i / 8) / 4, f[i], 1e-15);
        }
        assertEquals(a, c.ropeAttentionScaling());

        assertRejected(write(TRANSFORMERS_5.replace("\"rope_type\": \"default\"", "\"rope_type\": \"yarn\"")),
                "rope_parameters.factor", "missing");
        assertRejected(write(TRANSFORMERS_5.replace("\"rope_type\": \"default\"", "\"rope_type\": \"yarn\", \"factor\": 0.5")),
                "rope_parameters.factor");
        assertRejected(write(TRANSFORMERS_5.replace("\"rope_type\": \"default\"",
                "\"rope_type\": \"yarn\", \"factor\": 2, \"partial_rotary_factor\": 0.5")), "rope_parameters.partial_rotary_factor");
    }

    @Test
    void slidingWindowKeysLoadWhileEveryLayerAttendsFully() throws IOException {
        // hub configs: use_sliding_window false, sliding_window null or a number
        assertEquals(1e6, ConfigJson.read(write(QWEN3_06B.replace("\"sliding_window\": null", "\"sliding_window\": 4096"))).ropeTheta());
        // switched on, but no layer reaches max_window_layers (28 of 28 layers), or no window: still full attention
        ConfigJson.read(write(QWEN3_06B.replace("\"use_sliding_window\": false", "\"use_sliding_window\": true")
                .replace("\"sliding_window\": null", "\"sliding_window\": 4096")));
        ConfigJson.read(write(QWEN3_06B.replace("\"use_sliding_window\": false", "\"use_sliding_window\": true")));
    }

    @Test
    void refusesSlidingWindowAttention() throws IOException {
        assertRejected(write(QWEN3_06B.replace("\"use_sliding_window\": false", "\"use_sliding_window\": true")
                        .replace("\"sliding_window\": null", "\"sliding_window\": 4096")
                        .replace("\"max_window_layers\": 28", "\"max_window_layers\": 20")),
                "key use_sliding_window", "layers 20..27");
        assertRejected(write(TRANSFORMERS_5.replace("[\"full_attention\", \"full_attention\"]", "[\"full_attention\", \"sliding_attention\"]")),
                "key layer_types", "layer 1", "sliding_attention");
        assertRejected(write(TRANSFORMERS_5.replace("[\"full_attention\", \"full_attention\"]", "[\"full_attention\"]")),
                "key layer_types", "1 entries for num_hidden_layers 2");
        assertRejected(write(TRANSFORMERS_5.replace("[\"full_attention\", \"full_attention\"]", "\"full_attention\"")),
                "key layer_types");
    }

    @Test
    void refusesKeysThatSwitchOnWhatIsNotImplemented() throws IOException {
        assertRejected(write(QWEN3_06B.replace("\"attention_bias\": false", "\"attention_bias\": true")), "key attention_bias");
        assertRejected(write(QWEN3_06B.replace("\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"")), "key hidden_act", "gelu");
        assertRejected(write(QWEN3_06B.replace("\"model_type\": \"qwen3\"", "\"model_type\": \"qwen3_moe\"")), "key model_type");
        assertRejected(write(QWEN3_06B.replace("\"attention_dropout\": 0.0", "\"attention_dropout\": 0.1")), "key attention_dropout");
        assertRejected(write(QWEN3_06B.replace("\"use_cache\": true", "\"quantization_config\": {\"quant_method\": \"fp8\"}")),
                "key quantization_config");
        assertRejected(write(QWEN3_06B.replace("\"torch_dtype\": \"bfloat16\"", "\"torch_dtype\": \"float8_e4m3fn\"")),
                "key torch_dtype", "float8_e4m3fn");
        assertRejected(write(TRANSFORMERS_5.replace("\"dtype\": \"float32\"", "\"dtype\": 32")), "key dtype");
        ConfigJson.read(write(TRANSFORMERS_5.replace("\"dtype\": \"float32\"", "\"dtype\": \"float16\"")));
    }

    @Test
    void optionalKeysTakeQwen3Defaults() throws IOException {
        ModelConfig c = ConfigJson.read(write("""
                {"vocab_size": 100, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                 "num_attention_heads": 4, "num_key_value_heads": 2}"""));
        assertEquals(128, c.headDim());  // Qwen3Config's default, not hidden_size / num_attention_heads
        assertEquals(1e-6, c.rmsNormEps());
        assertEquals(10000.0, c.ropeTheta());
        assertEquals(32768, c.maxPositionEmbeddings());
        assertFalse(c.tieWordEmbeddings());
        assertEquals(-1, c.eosTokenId());
        assertRejected(write("""
                {"vocab_size": 100, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                 "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": null}"""), "key head_dim", "null");
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
