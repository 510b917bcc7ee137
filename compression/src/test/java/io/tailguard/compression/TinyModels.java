package io.tailguard.compression;

import ai.djl.Device;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/** The tiny random model and token data the compression tests share. */
final class TinyModels {
    /** vocab 61, hidden 64, intermediate 128, 2 layers, 4 heads over 2 KV heads of 16 dims, untied head. */
    static final ModelConfig CONFIG = new ModelConfig(61, 64, 128, 2, 4, 2, 16, 1e-6, 10_000.0, 256, false, -1);

    private TinyModels() {}

    static Qwen3Model model(long seed) {
        return Qwen3Model.create(CONFIG, RandomInit.weights(CONFIG, seed, 0.1, 0.1), Device.cpu());
    }

    static List<int[]> sequences(int count, int length, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        List<int[]> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            int[] s = new int[length];
            for (int t = 0; t < length; t++) {
                s[t] = rng.nextInt(CONFIG.vocabSize());
            }
            out.add(s);
        }
        return out;
    }
}
