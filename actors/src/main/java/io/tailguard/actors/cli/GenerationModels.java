package io.tailguard.actors.cli;

import ai.djl.Device;
import io.tailguard.compression.CompressedCheckpoints;
import io.tailguard.model.Qwen3Model;

import java.nio.file.Path;

/**
 * The model a generating command (generate, eval, bench decode) runs: a plain checkpoint, or a
 * packed quantized (quant.json) or V:N:M (vnm.json) checkpoint directory as it is, whose linears stay
 * packed and decode on the packed weights where the native decoder library is loaded on a CPU
 * (dequantized to float32 elsewhere).
 */
public final class GenerationModels {
    private GenerationModels() {
    }

    public static Qwen3Model open(Path dir, Device device) {
        return CompressedCheckpoints.load(dir, device);
    }

    /** Whether {@code dir} is a packed quantized or V:N:M checkpoint. */
    public static boolean isCompressed(Path dir) {
        return CompressedCheckpoints.isCompressed(dir);
    }
}
