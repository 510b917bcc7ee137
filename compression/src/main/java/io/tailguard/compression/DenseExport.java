package io.tailguard.compression;

import io.tailguard.model.ModelConfig;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.io.CheckpointDir;
import io.tailguard.model.io.DType;

import java.nio.file.Path;
import java.util.Map;

/**
 * {@code --export-dequantized}: a compressed model's weights as a plain float32 Hugging Face
 * checkpoint (written atomically), which any Qwen3 reader loads without knowing the compression.
 */
public final class DenseExport {
    private DenseExport() {}

    public static void write(Path dir, ModelConfig config, Map<String, float[]> weights, String tokenizerJsonOrNull) {
        CheckpointDir.write(dir, config, ModelLoader.hostTensors(config, weights), DType.F32, tokenizerJsonOrNull,
                Map.of(), 0, null, 0, 0);
    }

    public static void write(Path dir, QuantizedModel q, String tokenizerJsonOrNull) {
        write(dir, q.config(), q.dequantizedWeights(), tokenizerJsonOrNull);
    }

    public static void write(Path dir, VnmModel s, String tokenizerJsonOrNull) {
        write(dir, s.config(), s.denseWeights(), tokenizerJsonOrNull);
    }
}
