package io.tailguard.model;

import ai.djl.Device;
import ai.djl.engine.Engine;

/**
 * Parses the device names a user writes: {@code cpu} or {@code gpu:N}.
 *
 * <p>On a GPU the model's weights, its KV caches (created from the model's manager) and every tensor
 * of a forward, prefill, decode step and scoring pass live on that device; the project's native C
 * kernels (the fused Block-Top-k kernel, the native decoder layer, packed linears) serve only
 * float32 tensors on the CPU, so a GPU runs their libtorch twins.
 */
public final class Devices {
    private Devices() {}

    /**
     * The device of a name. {@code gpu:N} needs a CUDA build of libtorch (the Maven profile
     * {@code cuda}, docs/gpu.md) that sees more than N GPUs; otherwise the one-line error says so.
     */
    public static Device parse(String name) {
        if (name == null || name.equals("cpu")) {
            return Device.cpu();
        }
        if (name.matches("gpu:\\d{1,4}")) {
            int id = Integer.parseInt(name.substring(4));
            int gpus = gpuCount();
            if (id >= gpus) {
                throw new IllegalArgumentException("device " + name + ": libtorch sees " + gpus + " GPU"
                        + (gpus == 1 ? "" : "s") + (gpus == 0 ? " (a CPU build of libtorch, or no CUDA driver; the CUDA build is mvn -Pcuda, docs/gpu.md)" : ""));
            }
            return Device.gpu(id);
        }
        throw new IllegalArgumentException("device must be 'cpu' or 'gpu:N', got '" + name + "'");
    }

    /** GPUs the loaded libtorch can use: 0 with the CPU build or without a CUDA driver. */
    public static int gpuCount() {
        return Engine.getEngine("PyTorch").getGpuCount();
    }
}
