package io.tailguard.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.tailguard.model.io.CheckpointDir;
import io.tailguard.model.io.DType;
import io.tailguard.model.io.HostTensor;
import io.tailguard.model.io.SafeTensors;
import io.tailguard.model.lora.LoraAdapter;
import io.tailguard.model.lora.LoraConfig;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * LoRA logits against the PyTorch reference (src/test/python/qwen3_ref.py), which merges
 * W' = (W + (lora_alpha/r)·B·A) ⊙ M into the weights from the PEFT files before its forward. The
 * Java side computes the low-rank path (or the masked effective weight) inside its forward, prefill
 * and decode. Adapters go both ways: written by Java and read by Python, written by Python (its own
 * safetensors writer, PEFT names) and read by Java. Bound: 1e-4 of the logits' scale (max
 * |tailguard - pytorch| / max |pytorch| over each position's logits). The base model itself is
 * compared with transformers in {@link TransformersParityTest}. Skipped without PyTorch unless
 * TAILGUARD_REQUIRE_TORCH=1.
 */
class LoraParityTest {
    static final ModelConfig CONFIG = new ModelConfig(61, 40, 96, 3, 6, 2, 12, 1e-6, 500_000.0, 4096, false, -1);
    static final int[] LENGTHS = {9, 23, 40};
    static final int PREFILL = 5;

    @TempDir
    Path tmp;

    @BeforeAll
    static void needTorch() {
        ReferencePython.need("torch", "numpy");
    }

    static void assertClose(float[] ref, int refOffset, float[] got, int gotOffset, int n, String what) {
        double scale = 0;
        double diff = 0;
        for (int i = 0; i < n; i++) {
            scale = Math.max(scale, Math.abs(ref[refOffset + i]));
            diff = Math.max(diff, Math.abs(ref[refOffset + i] - got[gotOffset + i]));
        }
        assertTrue(scale > 0.1, what + ": reference logits are degenerate");
        assertTrue(diff / scale <= 1e-4, what + ": max relative difference " + diff / scale);
    }

    static void python(String... args) {
        ReferencePython.run("qwen3_ref.py", args);
    }

    Path checkpoint() {
        Path dir = tmp.resolve("ckpt");
        CheckpointDir.write(dir, CONFIG, ModelLoader.hostTensors(CONFIG, RandomInit.weights(CONFIG, 21, 0.25, 0.2)),
                DType.F32, null, Map.of(), 0, null, 0, 0);
        return dir;
    }

    List<long[]> sequences() {
        Random r = new Random(5);
        List<long[]> seqs = new ArrayList<>();
        for (int len : LENGTHS) {
            long[] s = new long[len];
            for (int i = 0; i < len; i++) {
                s[i] = r.nextInt(CONFIG.vocabSize());
            }
            seqs.add(s);
        }
        return seqs;
    }

    @Test
    void aJavaAdapterOnAllLinearModulesMatchesPytorchInForwardAndDecode() throws Exception {
        Path ckpt = checkpoint();
        Path adapter = tmp.resolve("java-lora");
        try (Qwen3Model model = ModelLoader.load(ckpt, Device.cpu());
             LoraAdapter lora = randomB(LoraAdapter.create(model, new LoraConfig(4, 8, LoraConfig.ALL_LINEAR), 3), 4)) {
            lora.save(adapter);
            model.attach(lora);
            compare(model, ckpt, List.of("--lora", adapter.toString()), "java adapter");
        }
    }

    @Test
    void aPythonWrittenPeftAdapterOnSomeModulesLoadsAndMatches() throws Exception {
        Path ckpt = checkpoint();
        Path adapter = tmp.resolve("python-lora");
        python("random-lora", "--checkpoint", ckpt.toString(), "--out", adapter.toString(),
                "--rank", "2", "--alpha", "5", "--targets", "v_proj,q_proj,down_proj", "--seed", "9");
        try (Qwen3Model model = ModelLoader.load(ckpt, Device.cpu()); LoraAdapter lora = LoraAdapter.load(adapter, model)) {
            assertEqualsConfig(new LoraConfig(2, 5, List.of("q_proj", "v_proj", "down_proj")), lora.config());
            model.attach(lora);
            compare(model, ckpt, List.of("--lora", adapter.toString()), "python adapter");
        }
    }

    @Test
    void masksGiveTheMaskedEffectiveWeightAsPytorchComputesIt() throws Exception {
        Path ckpt = checkpoint();
        Path adapter = tmp.resolve("masked-lora");
        Path masks = tmp.resolve("masks.safetensors");
        try (Qwen3Model model = ModelLoader.load(ckpt, Device.cpu());
             LoraAdapter lora = randomB(LoraAdapter.create(model, new LoraConfig(3, 6, List.of("k_proj", "o_proj", "up_proj")), 7), 8);
             NDManager m = NDManager.newBaseManager()) {
            lora.save(adapter);
            SplittableRandom r = new SplittableRandom(13);
            Map<String, HostTensor> file = new LinkedHashMap<>();
            // adapted and masked (k_proj, up_proj), masked only (gate_proj, down_proj), adapted only (o_proj)
            for (int layer : new int[] {0, 2}) {
                for (String module : List.of("k_proj", "up_proj", "gate_proj", "down_proj")) {
                    long[] s = Projection.shape(CONFIG, module);
                    float[] mask = new float[(int) (s[0] * s[1])];
                    for (int i = 0; i < mask.length; i++) {
                        mask[i] = r.nextDouble() < 0.5 ? 1 : 0;
                    }
                    lora.setMask(layer, module, m.create(mask, new Shape(s)));
                    file.put("model.layers." + layer + "." + Projection.of(module).block() + "." + module + ".mask",
                            HostTensor.ofFloats(s, mask, DType.F32));
                }
            }
            SafeTensors.write(masks, file, Map.of());
            model.attach(lora);
            compare(model, ckpt, List.of("--lora", adapter.toString(), "--masks", masks.toString()), "masked adapter");
        }
    }

    static void assertEqualsConfig(LoraConfig want, LoraConfig got) {
        org.junit.jupiter.api.Assertions.assertEquals(want, got);
    }

    static LoraAdapter randomB(LoraAdapter lora, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        for (Map.Entry<String, NDArray> e : lora.parameters().entrySet()) {
            if (e.getKey().endsWith("lora_B.weight")) {
                float[] v = new float[(int) e.getValue().size()];
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) (r.nextGaussian() * 0.2);
                }
                e.getValue().set(v);
            }
        }
        return lora;
    }

    /** Full forward of each sequence, then batched prefill of unequal prompts and decode, against the reference. */
    void compare(Qwen3Model model, Path ckpt, List<String> loraArgs, String name) throws Exception {
        List<long[]> seqs = sequences();
        Path input = tmp.resolve(name.replace(' ', '-') + ".json");
        StringBuilder json = new StringBuilder("{\"sequences\": [");
        for (int i = 0; i < seqs.size(); i++) {
            json.append(i == 0 ? "" : ",").append(java.util.Arrays.toString(seqs.get(i)));
        }
        Files.writeString(input, json.append("]}").toString());
        float[] refFull = reference("logits", ckpt, input, loraArgs, null);
        float[] refDecode = reference("decode", ckpt, input, loraArgs, PREFILL);
        int v = CONFIG.vocabSize();
        try (NDManager m = NDManager.newBaseManager()) {
            // The base model matches transformers (TransformersParityTest); the adapter must move it.
            WeightAdapter adapter = model.adapter();
            model.attach(null);
            float[] plain = model.forward(m.create(seqs.get(2), new Shape(1, LENGTHS[2]))).toFloatArray();
            model.attach(adapter);
            double moved = 0;
            int last = LENGTHS[0] + LENGTHS[1];
            for (int i = 0; i < plain.length; i++) {
                moved = Math.max(moved, Math.abs(plain[i] - refFull[last * v + i]));
            }
            org.junit.jupiter.api.Assertions.assertTrue(moved > 0.05, name + ": the adapter must change the logits");
            int offset = 0;
            for (long[] s : seqs) {
                float[] got = model.forward(m.create(s, new Shape(1, s.length))).toFloatArray();
                for (int t = 0; t < s.length; t++) {
                    assertClose(refFull, (offset + t) * v, got, t * v, v, name + " forward position " + t);
                }
                offset += s.length;
            }
            int b = seqs.size();
            int[] promptLengths = {PREFILL, PREFILL + 6, PREFILL + 13};
            int maxPrompt = promptLengths[2];
            long[] padded = new long[b * maxPrompt];
            for (int i = 0; i < b; i++) {
                System.arraycopy(seqs.get(i), 0, padded, i * maxPrompt, promptLengths[i]);
            }
            int[] starts = {0, LENGTHS[0], LENGTHS[0] + LENGTHS[1]};
            try (KvCache cache = new KvCache(m, CONFIG, b, LENGTHS[2])) {
                float[] logits = model.prefill(m.create(padded, new Shape(b, maxPrompt)), promptLengths, cache).toFloatArray();
                for (int i = 0; i < b; i++) {
                    assertClose(refDecode, (starts[i] + promptLengths[i] - 1) * v, logits, i * v, v,
                            name + " prefill of sequence " + i);
                }
                while (true) {
                    int[] pos = cache.lengths();
                    long[] next = new long[b];
                    boolean any = false;
                    for (int i = 0; i < b; i++) {
                        next[i] = seqs.get(i)[Math.min(pos[i], LENGTHS[i] - 1)];
                        any |= pos[i] < LENGTHS[i];
                    }
                    if (!any) {
                        break;
                    }
                    logits = model.decode(next, cache, AttentionKernel.DENSE, m).toFloatArray();
                    for (int i = 0; i < b; i++) {
                        if (pos[i] < LENGTHS[i]) {
                            assertClose(refDecode, (starts[i] + pos[i]) * v, logits, i * v, v,
                                    name + " decode of sequence " + i + " at position " + pos[i]);
                        }
                    }
                }
            }
        }
    }

    float[] reference(String mode, Path ckpt, Path input, List<String> loraArgs, Integer prefill) throws Exception {
        Path out = tmp.resolve(mode + "-" + System.nanoTime() + ".bin");
        List<String> args = new ArrayList<>(List.of(mode, "--checkpoint", ckpt.toString(), "--input", input.toString(),
                "--out", out.toString()));
        args.addAll(loraArgs);
        if (prefill != null) {
            args.add("--prefill");
            args.add(prefill.toString());
        }
        python(args.toArray(String[]::new));
        ByteBuffer bb = ByteBuffer.wrap(Files.readAllBytes(out)).order(ByteOrder.LITTLE_ENDIAN);
        float[] f = new float[bb.remaining() / 4];
        bb.asFloatBuffer().get(f);
        return f;
    }
}
