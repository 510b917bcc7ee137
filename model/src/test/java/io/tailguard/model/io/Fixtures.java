package io.tailguard.model.io;

import io.tailguard.model.ModelConfig;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.stream.Stream;

/** A tiny Qwen3 config and matching random weights, small enough to write in milliseconds. */
final class Fixtures {
    private Fixtures() {
    }

    static ModelConfig tiny(boolean tied) {
        return new ModelConfig(16, 8, 12, 2, 2, 1, 4, 1e-6, 1_000_000.0, 64, tied, 2);
    }

    static Map<String, HostTensor> weights(ModelConfig c, long seed) {
        Random r = new Random(seed);
        Map<String, HostTensor> out = new TreeMap<>();
        for (String name : CheckpointDir.requiredTensorNames(c)) {
            long[] shape = CheckpointDir.expectedShape(c, name);
            float[] v = new float[(int) HostTensor.numel(shape)];
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) r.nextGaussian();
            }
            out.put(name, HostTensor.ofFloats(shape, v, DType.F32));
        }
        return out;
    }

    /** Every file under root with its bytes, to compare trees byte for byte. */
    static Map<String, byte[]> snapshot(Path root) throws IOException {
        Map<String, byte[]> out = new TreeMap<>();
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                if (Files.isRegularFile(p)) {
                    out.put(root.relativize(p).toString(), Files.readAllBytes(p));
                }
            }
        }
        return out;
    }
}
