package io.tailguard.model;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Deterministic random weights for a config: matrices ~ N(0, std²) (std 0.02 as Qwen3's
 * initializer_range), norm gains 1. Each tensor draws from its own stream, split from the seed in
 * the stable order of {@link ParameterShapes}, so the same seed always gives the same checkpoint.
 */
public final class RandomInit {
    private RandomInit() {}

    public static Map<String, float[]> weights(ModelConfig config, long seed, double std, double normJitter) {
        SplittableRandom root = new SplittableRandom(seed);
        Map<String, float[]> out = new LinkedHashMap<>();
        for (Map.Entry<String, long[]> e : ParameterShapes.of(config).entrySet()) {
            SplittableRandom r = root.split();
            long n = 1;
            for (long d : e.getValue()) {
                n *= d;
            }
            float[] v = new float[Math.toIntExact(n)];
            boolean norm = ParameterShapes.isNorm(e.getKey());
            for (int i = 0; i < v.length; i++) {
                v[i] = norm ? (float) (1.0 + normJitter * gaussian(r)) : (float) (std * gaussian(r));
            }
            out.put(e.getKey(), v);
        }
        return out;
    }

    /** Box–Muller, so the stream does not depend on java.util.Random's caching of a second value. */
    private static double gaussian(SplittableRandom r) {
        double u1 = 1.0 - r.nextDouble();
        double u2 = r.nextDouble();
        return Math.sqrt(-2.0 * Math.log(u1)) * Math.cos(2.0 * Math.PI * u2);
    }
}
