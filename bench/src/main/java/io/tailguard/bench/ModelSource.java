package io.tailguard.bench;

import ai.djl.Device;
import io.tailguard.actors.cli.BadInput;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import io.tailguard.model.io.CheckpointDir;
import io.tailguard.model.io.DType;
import io.tailguard.model.tokenizer.CharTokenizer;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Map;

/** A benchmark's model: a checkpoint directory, or a preset with random weights from a seed. */
final class ModelSource {
    @Option(names = "--checkpoint", description = "Checkpoint directory; \"default\" is the embedded default, trained once and cached.")
    Path checkpoint;

    @Option(names = "--preset", description = "A preset with random weights: tiny, small (the built-in character "
            + "tokenizer's vocabulary), or qwen3-0.6b (Qwen3-0.6B's shapes).")
    String preset;

    /** Qwen3-0.6B's published config.json shapes, the benchmarks' real-model size. */
    static final String QWEN3_06B = "qwen3-0.6b";

    /**
     * A preset's config: the model presets with the built-in character tokenizer's vocabulary, or
     * Qwen3-0.6B's shapes (28 layers, hidden 1024, 16 query and 8 key/value heads of 128,
     * intermediate 3072, vocabulary 151,936, tied embeddings, RoPE base 1e6, eos 151645), which
     * only a benchmark needs and so live here rather than among the model presets.
     */
    static ModelConfig presetConfig(String name) {
        if (QWEN3_06B.equals(name)) {
            return new ModelConfig(151_936, 1024, 3072, 28, 16, 8, 128, 1e-6, 1_000_000.0, 40_960, true, 151_645);
        }
        CharTokenizer tok = CharTokenizer.standard();
        try {
            return ModelConfig.preset(name, tok.vocabSize(), tok.eosId());
        } catch (IllegalArgumentException e) {
            throw new BadInput("--preset: unknown preset '" + name + "' (known: "
                    + String.join(", ", ModelConfig.presetNames()) + ", " + QWEN3_06B + ")");
        }
    }

    /** The built-in tokenizer for the character-vocabulary presets; none for Qwen3's shapes (random ids only). */
    private static String tokenizerJson(String name) {
        return QWEN3_06B.equals(name) ? null : CharTokenizer.standard().toJson();
    }

    Qwen3Model open(Device device, long seed) {
        if (checkpoint != null) {
            return ModelLoader.load(io.tailguard.actors.cli.Checkpoints.resolve(checkpoint), device);
        }
        ModelConfig c = presetConfig(preset);
        return Qwen3Model.create(c, RandomInit.weights(c, seed, 0.02, 0.0), device);
    }

    /**
     * As {@link #open} for a benchmark that only decodes: a compressed checkpoint directory
     * (quant.json or vnm.json) loads as it is, its linears packed where the native library serves it.
     */
    Qwen3Model openForDecode(Device device, long seed) {
        if (checkpoint != null) {
            return io.tailguard.actors.cli.GenerationModels.open(io.tailguard.actors.cli.Checkpoints.resolve(checkpoint), device);
        }
        return open(device, seed);
    }

    /** A checkpoint directory for peers that read files: the given one, or the preset written under tmp. */
    Path directory(long seed, Path tmp) {
        if (checkpoint != null) {
            return io.tailguard.actors.cli.Checkpoints.resolve(checkpoint);
        }
        ModelConfig c = presetConfig(preset);
        Path dir = tmp.resolve("model");
        CheckpointDir.write(dir, c, ModelLoader.hostTensors(c, RandomInit.weights(c, seed, 0.02, 0.0)),
                DType.F32, tokenizerJson(preset), Map.of(), 0, null, 0, 0);
        return dir;
    }
}
