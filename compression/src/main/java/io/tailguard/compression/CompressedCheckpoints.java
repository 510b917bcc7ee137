package io.tailguard.compression;

import ai.djl.Device;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.Qwen3Model;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Loads whatever a compression wrote as a dense model a generator can run: a packed quantized
 * checkpoint ({@link QuantizedCheckpoint}, quant.json) or a packed V:N:M one ({@link VnmCheckpoint},
 * vnm.json), dequantized; any other directory as a plain checkpoint. Each reader verifies the
 * directory's manifest first. `mismatch --actor` and the rollout workers' compressed option share it,
 * so the offline and online tails of a compressed actor come from the same weights.
 */
public final class CompressedCheckpoints {
    private CompressedCheckpoints() {
    }

    /**
     * Loads a directory for generation: a packed quantized or V:N:M checkpoint keeps its linears
     * packed ({@link Qwen3Model#packed}) where the native decoder library is loaded and the device
     * is a CPU, and loads dequantized elsewhere; any other directory as a plain checkpoint.
     */
    public static Qwen3Model load(Path dir, Device device) {
        return load(dir, device, io.tailguard.model.PackedLinear.Activations.FLOAT32);
    }

    /**
     * {@link #load(Path, Device)} where a packed quantized checkpoint's linears multiply with
     * {@code activations} (INT8: int8 activations, which changes the results; the caller's explicit
     * choice). V:N:M and dequantized loads are float32 whatever it says.
     */
    public static Qwen3Model load(Path dir, Device device, io.tailguard.model.PackedLinear.Activations activations) {
        boolean packed = io.tailguard.model.PackedLinear.supported() && !device.isGpu();
        if (packed && Files.isRegularFile(dir.resolve(QuantizedCheckpoint.QUANT_JSON))) {
            return QuantizedCheckpoint.readPacked(dir, device, activations);
        }
        if (packed && Files.isRegularFile(dir.resolve(VnmCheckpoint.VNM_JSON))) {
            return VnmCheckpoint.readPacked(dir, device);
        }
        return loadDequantized(dir, device);
    }

    /** Whether a directory holds a packed quantized or V:N:M checkpoint. */
    public static boolean isCompressed(Path dir) {
        return Files.isRegularFile(dir.resolve(QuantizedCheckpoint.QUANT_JSON))
                || Files.isRegularFile(dir.resolve(VnmCheckpoint.VNM_JSON));
    }

    public static Qwen3Model loadDequantized(Path dir, Device device) {
        if (Files.isRegularFile(dir.resolve(QuantizedCheckpoint.QUANT_JSON))) {
            return QuantizedCheckpoint.read(dir).toModel(device);
        }
        if (Files.isRegularFile(dir.resolve(VnmCheckpoint.VNM_JSON))) {
            return VnmCheckpoint.read(dir).toModel(device);
        }
        return ModelLoader.load(dir, device);
    }
}
