package io.tailguard.rollout.generation;

import ai.djl.Device;
import io.tailguard.model.Devices;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import io.tailguard.rollout.sparse.BlockTopKAttention;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Tokens chosen on the model's device ({@link DeviceSampler}, what a GPU does) against the host's
 * choice in double ({@link TokenSampler}), on the CPU: the same tokens, stops and alternatives, and
 * log-probs within float32 rounding. On a GPU (skipped elsewhere, with a one-line reason) the GPU's
 * own choice against the CPU's host choice.
 */
class DeviceSamplingTest {
    static final ModelConfig CONFIG = new ModelConfig(97, 48, 80, 3, 6, 2, 16, 1e-6, 10_000.0, 4096, false, -1);
    /**
     * float32 log-softmax against double: logits of order 1-10 over 97 entries, each log-prob off by a
     * few ulps of its size (~1e-6); 1e-5 leaves room. A GPU's logits differ from the CPU's (cuBLAS's
     * order of summation), so there the bound is the F32 parity bound, 1e-3.
     */
    static final double TOLERANCE = 1e-5;
    static final double GPU_TOLERANCE = 1e-3;

    static List<int[]> prompts() {
        Random r = new Random(8);
        List<int[]> out = new ArrayList<>();
        for (int len : new int[] {12, 40, 5}) {
            int[] p = new int[len];
            for (int i = 0; i < len; i++) {
                p[i] = r.nextInt(CONFIG.vocabSize());
            }
            out.add(p);
        }
        out.add(out.get(1));   // a group's shared prompt: prefilled once, copied
        return out;
    }

    /** Greedy with alternatives and a stop token; T = 1 capturing the top 5; T = 0.7 with alternatives. */
    static List<GenerationRequest> requests() {
        return List.of(
                new GenerationRequest(prompts(), 20, SamplingParams.greedy(), Set.of(13), 3),
                new GenerationRequest(prompts(), 20, new SamplingParams(1.0, 1.0, 0, 11L), Set.of(), 0, 5),
                new GenerationRequest(prompts(), 20, new SamplingParams(0.7, 1.0, 0, 3L), Set.of(5, 6), 2));
    }

    static Map<String, float[]> weights() {
        return RandomInit.weights(CONFIG, 41, 0.25, 0.2);
    }

    static void assertSame(GenerationResult want, GenerationResult got, double tol, String what) {
        for (int i = 0; i < want.sequences().size(); i++) {
            Generated w = want.sequences().get(i);
            Generated g = got.sequences().get(i);
            String where = what + ", sequence " + i;
            assertArrayEquals(w.outputIds(), g.outputIds(), where + ": tokens");
            assertEquals(w.finishReason(), g.finishReason(), where + ": finish");
            for (int t = 0; t < w.logprobs().length; t++) {
                assertEquals(w.logprobs()[t], g.logprobs()[t], tol, where + ": log-prob at " + t);
                if (w.topIds() != null) {
                    assertArrayEquals(w.topIds()[t], g.topIds()[t], where + ": alternatives at " + t);
                    for (int k = 0; k < w.topIds()[t].length; k++) {
                        assertEquals(w.topLogprobs()[t][k], g.topLogprobs()[t][k], tol, where + ": alternative " + k + " at " + t);
                    }
                }
                if (w.distributions() != null) {
                    assertArrayEquals(w.distributions().ids()[t], g.distributions().ids()[t], where + ": captured ids at " + t);
                    for (int k = 0; k < w.distributions().ids()[t].length; k++) {
                        assertEquals(w.distributions().logprobs()[t][k], g.distributions().logprobs()[t][k], tol,
                                where + ": captured log-prob " + k + " at " + t);
                    }
                }
            }
        }
    }

    @Test
    void theDevicesChoiceIsTheHostsChoice() {
        try (Qwen3Model model = Qwen3Model.create(CONFIG, weights(), Device.cpu())) {
            for (GenerationRequest req : requests()) {
                assertTrue(DeviceSampler.supports(req, CONFIG.vocabSize()));
                GenerationResult host = new Generator(model).chooseOnDevice(false).generate(req);
                GenerationResult device = new Generator(model).chooseOnDevice(true).generate(req);
                String what = "T=" + req.sampling().temperature();
                assertSame(host, device, TOLERANCE, what);
                assertEquals(host.decodeSteps(), device.decodeSteps(), what + ": steps");
            }
            // the greedy request's stop token ends a sequence early, so the stop rule is exercised
            GenerationResult greedy = new Generator(model).chooseOnDevice(true).generate(requests().get(0));
            assertTrue(greedy.sequences().stream().anyMatch(g -> "stop".equals(g.finishReason()))
                    || greedy.sequences().stream().allMatch(g -> g.outputIds().length == 20), "finish reasons");
        }
    }

    @Test
    void sparseDecodeChoosesOnTheDeviceAsOnTheHost() {
        Random r = new Random(2);
        List<int[]> longPrompts = new ArrayList<>();
        for (int len : new int[] {150, 97}) {
            longPrompts.add(r.ints(len, 0, CONFIG.vocabSize()).toArray());
        }
        GenerationRequest req = new GenerationRequest(longPrompts, 16, new SamplingParams(1.0, 1.0, 0, 5L), Set.of(), 0);
        try (Qwen3Model model = Qwen3Model.create(CONFIG, weights(), Device.cpu())) {
            GenerationResult host = new Generator(model, BlockTopKAttention.fixedBudget(64)).chooseOnDevice(false).generate(req);
            GenerationResult device = new Generator(model, BlockTopKAttention.fixedBudget(64)).chooseOnDevice(true).generate(req);
            assertSame(host, device, TOLERANCE, "Block-Top-k at 64");
        }
    }

    @Test
    void truncatedSamplingAndFullCapturesStayOnTheHost() {
        assertFalse(DeviceSampler.supports(new GenerationRequest(prompts(), 4, new SamplingParams(1.0, 1.0, 5, 1L), Set.of(), 0), 97));
        assertFalse(DeviceSampler.supports(new GenerationRequest(prompts(), 4, new SamplingParams(1.0, 0.9, 0, 1L), Set.of(), 0), 97));
        assertFalse(DeviceSampler.supports(new GenerationRequest(prompts(), 4, new SamplingParams(1.0, 1.0, 0, 1L), Set.of(), 0, 0), 97));
        assertFalse(DeviceSampler.supports(new GenerationRequest(prompts(), 4, new SamplingParams(1.0, 1.0, 0, 1L), Set.of(), 0, 97), 97));
        // such a request on "the device" is the host's, bit for bit
        GenerationRequest topK = new GenerationRequest(prompts(), 8, new SamplingParams(1.0, 1.0, 5, 1L), Set.of(), 0);
        try (Qwen3Model model = Qwen3Model.create(CONFIG, weights(), Device.cpu())) {
            assertSame(new Generator(model).chooseOnDevice(false).generate(topK),
                    new Generator(model).chooseOnDevice(true).generate(topK), 0, "top-k 5");
        }
    }

    /** GPU: a model on gpu:0 chooses there by itself; against the CPU's host choice. */
    @Test
    void gpuChoosesOnTheGpuAsTheCpuHostDoes() {
        Assumptions.assumeTrue(Devices.gpuCount() > 0, "no GPU: libtorch sees none (the CPU build, or no CUDA driver)");
        try (Qwen3Model cpu = Qwen3Model.create(CONFIG, weights(), Device.cpu());
             Qwen3Model gpu = Qwen3Model.create(CONFIG, weights(), Device.gpu(0))) {
            for (GenerationRequest req : requests()) {
                assertSame(new Generator(cpu).chooseOnDevice(false).generate(req), new Generator(gpu).generate(req), GPU_TOLERANCE,
                        "gpu:0, T=" + req.sampling().temperature());
            }
        }
    }
}
