package io.tailguard.bench;

import ai.djl.Device;
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

    @Option(names = "--preset", description = "A preset with random weights (tiny, small).")
    String preset;

    /** The preset's config with the built-in character tokenizer's vocabulary. */
    private static ModelConfig presetConfig(String name) {
        CharTokenizer tok = CharTokenizer.standard();
        return ModelConfig.preset(name, tok.vocabSize(), tok.eosId());
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
                DType.F32, CharTokenizer.standard().toJson(), Map.of(), 0, null, 0, 0);
        return dir;
    }
}
