package io.tailguard.model;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.tailguard.model.io.CheckpointDir;
import io.tailguard.model.io.DType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Logits parity with an independent PyTorch implementation (src/test/python/qwen3_ref.py, run by
 * {@link ReferencePython}): full forwards, and chunked prefill followed by batched decode of
 * sequences of unequal lengths, on random checkpoints of several shapes. The error measure is
 * max |tailguard - pytorch| / max |pytorch| over each position's logits; the bound is 1e-4.
 *
 * <p>Without PyTorch the test is skipped, unless TAILGUARD_REQUIRE_TORCH=1 (CI sets it), where a
 * missing PyTorch fails it. {@link TransformersParityTest} compares against transformers itself.
 */
class PytorchParityTest {
    static final double TOLERANCE = 1e-4;

    @TempDir
    Path tmp;

    @BeforeAll
    static void needTorch() {
        ReferencePython.need("torch", "numpy");
    }

    /** name, config, storage dtype, written by (java | python). */
    static Stream<Arguments> shapes() {
        return Stream.of(
                // multi-head (GQA ratio 1), head_dim = hidden / heads, untied, odd vocabulary
                Arguments.of("mha-untied", new ModelConfig(37, 32, 72, 2, 4, 4, 8, 1e-6, 10_000.0, 4096, false, -1), DType.F32, "java"),
                // GQA ratio 2, head_dim 16 unlike 48 / 4, tied
                Arguments.of("gqa2-tied", new ModelConfig(101, 48, 80, 2, 4, 2, 16, 1e-6, 1_000_000.0, 4096, true, -1), DType.F32, "java"),
                // GQA ratio 3, head_dim 12 unlike 40 / 6, untied, three layers
                Arguments.of("gqa3-untied", new ModelConfig(61, 40, 96, 3, 6, 2, 12, 1e-5, 500_000.0, 4096, false, -1), DType.F32, "java"),
                // the same shape written by the Python side's own safetensors writer, in BF16 and F16
                Arguments.of("gqa3-python-bf16", new ModelConfig(61, 40, 96, 3, 6, 2, 12, 1e-6, 1_000_000.0, 40960, false, -1), DType.BF16, "python"),
                Arguments.of("gqa2-python-f16", new ModelConfig(53, 48, 80, 2, 4, 2, 16, 1e-6, 1_000_000.0, 40960, true, -1), DType.F16, "python"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("shapes")
    void logitsMatchPytorchForFullForwardAndForPrefillThenDecode(String name, ModelConfig config, DType dtype, String writer)
            throws Exception {
        Path dir = tmp.resolve(name);
        if (writer.equals("java")) {
            Map<String, float[]> w = RandomInit.weights(config, name.hashCode(), 0.25, 0.2);
            CheckpointDir.write(dir, config, ModelLoader.hostTensors(config, w), dtype, null, Map.of(), 0, null, 0, 0);
        } else {
            python("random", "--out", dir.toString(), "--shape", "tiny", "--seed", "3", "--dtype", dtype.name(),
                    "--set", "vocab_size=" + config.vocabSize(), "--set", "hidden_size=" + config.hiddenSize(),
                    "--set", "intermediate_size=" + config.intermediateSize(), "--set", "num_hidden_layers=" + config.numLayers(),
                    "--set", "num_attention_heads=" + config.numHeads(), "--set", "num_key_value_heads=" + config.numKvHeads(),
                    "--set", "head_dim=" + config.headDim(), "--set", "tie_word_embeddings=" + config.tieWordEmbeddings());
        }
        Random r = new Random(name.hashCode());
        int[] lengths = {9, 23, 40};
        List<long[]> seqs = new ArrayList<>();
        for (int len : lengths) {
            long[] s = new long[len];
            for (int i = 0; i < len; i++) {
                s[i] = r.nextInt(config.vocabSize());
            }
            seqs.add(s);
        }
        Path input = tmp.resolve(name + ".json");
        StringBuilder json = new StringBuilder("{\"sequences\": [");
        for (int i = 0; i < seqs.size(); i++) {
            json.append(i == 0 ? "" : ",").append(java.util.Arrays.toString(seqs.get(i)));
        }
        Files.writeString(input, json.append("]}").toString());
        int prefill = 5;
        float[] refFull = runReference("logits", dir, input, null);
        float[] refDecode = runReference("decode", dir, input, prefill);

        int v = config.vocabSize();
        try (Qwen3Model model = ModelLoader.load(dir, Device.cpu()); NDManager m = NDManager.newBaseManager()) {
            assertEquals(config.numKvHeads(), model.config().numKvHeads());
            int offset = 0;
            for (long[] s : seqs) {
                float[] got = model.forward(m.create(s, new Shape(1, s.length))).toFloatArray();
                for (int t = 0; t < s.length; t++) {
                    assertClose(refFull, (offset + t) * v, got, t * v, v, name + " full forward position " + t);
                }
                offset += s.length;
            }
            // Batched: prompts of unequal length (prefill + index), then step by step decode.
            int b = seqs.size();
            int[] promptLengths = {prefill, prefill + 6, prefill + 13};
            int maxPrompt = promptLengths[2];
            long[] padded = new long[b * maxPrompt];
            for (int i = 0; i < b; i++) {
                System.arraycopy(seqs.get(i), 0, padded, i * maxPrompt, promptLengths[i]);
            }
            int[] starts = {0, lengths[0], lengths[0] + lengths[1]};
            try (KvCache cache = new KvCache(m, config, b, lengths[2])) {
                float[] logits = model.prefill(m.create(padded, new Shape(b, maxPrompt)), promptLengths, cache).toFloatArray();
                for (int i = 0; i < b; i++) {
                    assertClose(refDecode, (starts[i] + promptLengths[i] - 1) * v, logits, i * v, v, name + " prefill of sequence " + i);
                }
                for (int step = 0; step < lengths[2] - promptLengths[0]; step++) {
                    int[] pos = cache.lengths();
                    long[] next = new long[b];
                    boolean any = false;
                    for (int i = 0; i < b; i++) {
                        next[i] = seqs.get(i)[Math.min(pos[i], lengths[i] - 1)];
                        any |= pos[i] < lengths[i];
                    }
                    if (!any) {
                        break;
                    }
                    logits = model.decode(next, cache, AttentionKernel.DENSE, m).toFloatArray();
                    for (int i = 0; i < b; i++) {
                        if (pos[i] < lengths[i]) {
                            assertClose(refDecode, (starts[i] + pos[i]) * v, logits, i * v, v,
                                    name + " decode of sequence " + i + " at position " + pos[i]);
                        }
                    }
                }
            }
        }
    }

    static void assertClose(float[] ref, int refOffset, float[] got, int gotOffset, int n, String what) {
        double scale = 0;
        double diff = 0;
        for (int i = 0; i < n; i++) {
            scale = Math.max(scale, Math.abs(ref[refOffset + i]));
            diff = Math.max(diff, Math.abs(ref[refOffset + i] - got[gotOffset + i]));
        }
        assertTrue(scale > 0.1, what + ": reference logits are degenerate");
        assertTrue(diff / scale <= TOLERANCE, what + ": max relative difference " + diff / scale);
    }

    private float[] runReference(String mode, Path ckpt, Path input, Integer prefill) throws Exception {
        Path out = tmp.resolve(ckpt.getFileName() + "-" + mode + ".bin");
        List<String> args = new ArrayList<>(List.of(mode, "--checkpoint", ckpt.toString(), "--input", input.toString(), "--out", out.toString()));
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

    static void python(String... args) {
        ReferencePython.run("qwen3_ref.py", args);
    }
}
