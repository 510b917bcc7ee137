package io.tailguard.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Where a model's tensors live: {@code --device} names, the rule that keeps GPU tensors away from
 * the native C layer, and (on a GPU only; skipped with a one-line reason elsewhere) that weights, KV
 * cache and a decode step's output stay on the GPU and compute what the CPU computes.
 */
class DevicePlacementTest {
    static final ModelConfig CONFIG = new ModelConfig(61, 32, 48, 3, 4, 2, 16, 1e-6, 10_000.0, 4096, false, -1);

    @Test
    void deviceNames() {
        assertEquals(Device.cpu(), Devices.parse("cpu"));
        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class, () -> Devices.parse("cuda:0"));
        assertTrue(bad.getMessage().contains("'cpu' or 'gpu:N'"), bad.getMessage());
        int gpus = Devices.gpuCount();
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class, () -> Devices.parse("gpu:" + gpus));
        assertTrue(missing.getMessage().startsWith("device gpu:" + gpus + ": libtorch sees " + gpus + " GPU"), missing.getMessage());
        if (gpus == 0) {
            assertTrue(missing.getMessage().contains("-Pcuda"), "names the CUDA build: " + missing.getMessage());
        } else {
            assertEquals(Device.gpu(0), Devices.parse("gpu:0"));
        }
    }

    @Test
    void theNativeLayerServesOnlyFloat32HostTensors() {
        assertTrue(NativeDecode.servable(Device.cpu(), DataType.FLOAT32));
        assertFalse(NativeDecode.servable(Device.gpu(0), DataType.FLOAT32), "a GPU tensor never reaches the C layer");
        assertFalse(NativeDecode.servable(Device.cpu(), DataType.FLOAT16));
        assertFalse(NativeDecode.servable(Device.cpu(), DataType.BFLOAT16));
    }

    /** GPU: a prefill and decode steps on gpu:0 against the CPU (both on libtorch ops, float32). */
    @Test
    void gpuModelCacheAndStepsStayOnTheGpu() {
        Assumptions.assumeTrue(Devices.gpuCount() > 0, "no GPU: libtorch sees none (the CPU build, or no CUDA driver)");
        var w = RandomInit.weights(CONFIG, 3, 0.25, 0.2);
        long[] prompt = new long[2 * 40];
        for (int i = 0; i < prompt.length; i++) {
            prompt[i] = (i * 7 + 3) % CONFIG.vocabSize();
        }
        float[][] cpu = steps(Qwen3Model.create(CONFIG, w, Device.cpu()), prompt, false);
        float[][] gpu = steps(Qwen3Model.create(CONFIG, w, Device.gpu(0)), prompt, true);
        for (int s = 0; s < cpu.length; s++) {
            double diff = 0;
            for (int i = 0; i < cpu[s].length; i++) {
                diff = Math.max(diff, Math.abs(cpu[s][i] - gpu[s][i]));
            }
            // logits of order 1-10 in float32; cuBLAS and MKL sum in other orders (TF32 off)
            assertTrue(diff <= 1e-3, "step " + s + ": max |Δ logit| " + diff);
        }
    }

    /** Prefill of two prompts of unequal length, then four dense decode steps: each step's logits. */
    private static float[][] steps(Qwen3Model model, long[] ids, boolean gpu) {
        try (model; NDManager m = model.manager().newSubManager();
             KvCache cache = new KvCache(m, CONFIG, 2, 48)) {
            assertEquals(gpu, cache.keys(0).getDevice().isGpu(), "the KV cache lives with the model");
            float[][] out = new float[5][];
            NDArray logits = model.prefill(m.create(ids, new ai.djl.ndarray.types.Shape(2, 40)), new int[] {40, 29}, cache);
            for (int s = 0; s < 5; s++) {
                assertEquals(gpu, logits.getDevice().isGpu(), "step " + s + "'s logits stay on the device");
                out[s] = logits.toFloatArray();
                if (s < 4) {
                    long[] next = {(s * 5 + 1) % CONFIG.vocabSize(), (s * 11 + 2) % CONFIG.vocabSize()};
                    logits = model.decode(next, cache, AttentionKernel.DENSE, m);
                }
            }
            return out;
        }
    }
}
