package io.tailguard.recipes;

import io.tailguard.model.ModelConfig;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.RandomInit;
import io.tailguard.model.io.CheckpointDir;
import io.tailguard.model.io.DType;
import io.tailguard.model.tokenizer.CharTokenizer;

import java.nio.file.Path;
import java.util.Map;

/**
 * A preset trained from nothing: its config with the built-in tasks' character tokenizer, and its
 * random initialisation (normal, standard deviation {@link #INIT_STD}; norms at 1), the same for
 * {@code init-model} and for pretraining.
 */
public final class InitialModel {
    /** Standard deviation of the initial linear and embedding weights. */
    public static final double INIT_STD = 0.02;

    private InitialModel() {
    }

    /** The preset (tiny, small) with the character tokenizer's vocabulary and end-of-sequence id. */
    public static ModelConfig config(String preset) {
        CharTokenizer tok = CharTokenizer.standard();
        return ModelConfig.preset(preset, tok.vocabSize(), tok.eosId());
    }

    /** The initial weights of {@code config} from {@code seed}, by Hugging Face name. */
    static Map<String, float[]> weights(ModelConfig config, long seed) {
        return RandomInit.weights(config, seed, INIT_STD, 0.0);
    }

    /** Writes the initial checkpoint of a preset to {@code out} (atomically), stored as {@code storeAs}; returns its config. */
    public static ModelConfig write(Path out, String preset, long seed, DType storeAs) {
        ModelConfig config = config(preset);
        CheckpointDir.write(out, config, ModelLoader.hostTensors(config, weights(config, seed)), storeAs,
                CharTokenizer.standard().toJson(), Map.of(), 0, null, 0, 0);
        return config;
    }
}
