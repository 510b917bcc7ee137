package io.tailguard.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.tailguard.model.io.CheckpointDir;
import io.tailguard.model.io.DType;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Parity with transformers itself (src/test/python/hf_reference.py): checkpoints written by
 * transformers 5's Qwen3ForCausalLM.save_pretrained, in F32, BF16 and F16, tied and untied, one file
 * or sharded with an index, with the config.json of transformers 5 (rope_parameters) or rewritten as
 * transformers 4 wrote it (top-level rope_theta), all with a RoPE base of 1e6, two with YaRN; and checkpoints
 * Tailguard writes, which transformers must read as Tailguard does. Compared with what
 * transformers computes after loading the same directory back with from_pretrained (float32
 * compute; BF16 weights upcast exactly, as here):
 * <ul>
 * <li>the plain forward: log-probs of every position, |Δ| ≤ 1e-4;
 * <li>teacher-forced scoring through {@link Scorer} (two continuations of one prompt, as the
 *     learner scores a group, and one of another prompt): each token's log-prob, |Δ| ≤ 1e-4;
 * <li>incremental decode: a batched, chunked prefill of prompts of unequal lengths, then greedy
 *     decode steps, against transformers' KV-cached {@code generate}: the same tokens, and every
 *     step's log-probs within 1e-4.
 * </ul>
 * Python runs once for the whole class. Skipped without torch and transformers unless
 * TAILGUARD_REQUIRE_TORCH=1.
 *
 * <p>{@code -Dtailguard.test.device=gpu:N} runs both sides on that GPU (Tailguard on the CUDA build,
 * {@code mvn -Pcuda}; transformers on CUDA torch, cuda:N) with the bound for F32 parity on a GPU,
 * 1e-3 (cuBLAS reduces in other orders on each side); without a GPU that run skips, saying so.
 */
class TransformersParityTest {
    /** Where both sides run: cpu, or gpu:N (docs/gpu.md). */
    static final String DEVICE = System.getProperty("tailguard.test.device", "cpu");
    static final double TOLERANCE = DEVICE.equals("cpu") ? 1e-4 : 1e-3;
    static final int GREEDY_NEW = 10;
    static final int SHARED_PROMPT = 6;

    @TempDir
    static Path tmp;
    static final Map<String, Case> CASES = new LinkedHashMap<>();

    /**
     * One checkpoint: how transformers writes it (config), or, for style "given", the config and
     * dtype Tailguard writes it with (written), and the ids it is run on.
     */
    record Case(String name, int seed, String dtype, String style, String maxShardSize, JsonObject config,
                Written written, List<int[]> sequences, List<int[]> prompts, int[] continuationOf) {
    }

    record Written(ModelConfig config, DType dtype) {
    }

    static JsonObject qwen3(int vocab, int hidden, int inter, int layers, int heads, int kvHeads, int headDim,
                            double eps, boolean tied) {
        JsonObject c = new JsonObject();
        c.addProperty("vocab_size", vocab);
        c.addProperty("hidden_size", hidden);
        c.addProperty("intermediate_size", inter);
        c.addProperty("num_hidden_layers", layers);
        c.addProperty("num_attention_heads", heads);
        c.addProperty("num_key_value_heads", kvHeads);
        c.addProperty("head_dim", headDim);
        c.addProperty("rms_norm_eps", eps);
        c.addProperty("tie_word_embeddings", tied);
        c.addProperty("max_position_embeddings", 40960);
        JsonObject rope = new JsonObject();
        rope.addProperty("rope_type", "default");
        rope.addProperty("rope_theta", 1_000_000.0);
        c.add("rope_parameters", rope);
        return c;
    }

    /** YaRN of factor 4 over an original 4096 positions (attention factor derived, or as given). */
    static JsonObject yarn(JsonObject config, Double attentionFactor) {
        JsonObject rope = config.getAsJsonObject("rope_parameters");
        rope.addProperty("rope_type", "yarn");
        rope.addProperty("factor", 4.0);
        rope.addProperty("original_max_position_embeddings", 4096);
        if (attentionFactor != null) {
            rope.addProperty("attention_factor", attentionFactor);
        }
        config.addProperty("max_position_embeddings", 16384);
        return config;
    }

    static void add(String name, int seed, String dtype, String style, String shard, JsonObject config) {
        add(name, seed, dtype, style, shard, config, null, config.get("vocab_size").getAsInt());
    }

    static void add(String name, int seed, String dtype, String style, String shard, JsonObject config, Written written,
                    int vocab) {
        Random r = new Random(seed);
        int[] prompt = ids(r, vocab, SHARED_PROMPT);
        // s0 and s1 continue one prompt (a learner's group); s2 stands alone
        List<int[]> seqs = List.of(concat(prompt, ids(r, vocab, 11)), concat(prompt, ids(r, vocab, 17)), ids(r, vocab, 23));
        List<int[]> prompts = List.of(ids(r, vocab, 3), ids(r, vocab, 8), ids(r, vocab, 13));
        CASES.put(name, new Case(name, seed, dtype, style, shard, config, written, seqs, prompts, new int[] {SHARED_PROMPT, SHARED_PROMPT, 9}));
    }

    static {
        // GQA 2, head_dim = hidden / heads, untied
        add("t5-f32-untied", 11, "float32", "transformers5", null, qwen3(61, 32, 48, 2, 4, 2, 8, 1e-6, false));
        // GQA 3, head_dim 12 unlike 48 / 6, three layers, transformers 4's config.json
        add("t4-f32-untied", 12, "float32", "transformers4", null, qwen3(101, 48, 80, 3, 6, 2, 12, 1e-5, false));
        // multi-head (GQA 1), head_dim 16 unlike 32 / 4, tied, sharded with an index
        add("t5-f32-tied-sharded", 13, "float32", "transformers5", "20KB", qwen3(53, 32, 64, 2, 4, 4, 16, 1e-6, true));
        add("t5-bf16-tied", 14, "bfloat16", "transformers5", null, qwen3(61, 40, 72, 2, 6, 2, 12, 1e-6, true));
        add("t4-bf16-untied-sharded", 15, "bfloat16", "transformers4", "10KB", qwen3(67, 32, 48, 2, 4, 2, 8, 1e-6, false));
        add("t5-f16-tied", 16, "float16", "transformers5", null, qwen3(53, 48, 80, 2, 4, 2, 16, 1e-6, true));
        // YaRN, as Qwen3 documents it for long contexts; head_dim 16, base 1e6 and an original length of
        // 4096 put the ramp over dimensions 1..4, so kept, blended and divided frequencies all occur
        add("t5-f32-yarn", 19, "float32", "transformers5", null, yarn(qwen3(59, 32, 48, 2, 4, 2, 16, 1e-6, false), null));
        add("t4-bf16-yarn-tied", 20, "bfloat16", "transformers4", null, yarn(qwen3(59, 32, 48, 2, 4, 2, 16, 1e-6, true), 1.25));
        // written by Tailguard (CheckpointDir.write, as init-model and training do) and read by transformers
        for (Written w : List.of(
                new Written(new ModelConfig(37, 32, 72, 2, 4, 4, 8, 1e-6, 10_000.0, 4096, false, -1), DType.F32),
                new Written(new ModelConfig(61, 40, 96, 3, 6, 2, 12, 1e-5, 500_000.0, 4096, true, -1), DType.BF16))) {
            String name = "tailguard-" + w.dtype().name().toLowerCase(java.util.Locale.ROOT) + (w.config().tieWordEmbeddings() ? "-tied" : "-untied");
            add(name, 17 + CASES.size(), w.dtype().torchName(), "given", null, null, w, w.config().vocabSize());
        }
    }

    static int[] ids(Random r, int vocab, int n) {
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            out[i] = r.nextInt(vocab);
        }
        return out;
    }

    static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    static JsonArray json(List<int[]> rows) {
        JsonArray a = new JsonArray();
        for (int[] row : rows) {
            JsonArray r = new JsonArray();
            for (int v : row) {
                r.add(v);
            }
            a.add(r);
        }
        return a;
    }

    @BeforeAll
    static void runTransformers() throws IOException {
        if (!DEVICE.equals("cpu")) {
            Assumptions.assumeTrue(Devices.gpuCount() > 0, "no GPU for -Dtailguard.test.device=" + DEVICE + ": libtorch sees none");
        }
        ReferencePython.need("torch", "transformers", "safetensors");
        JsonArray cases = new JsonArray();
        for (Case c : CASES.values()) {
            JsonObject o = new JsonObject();
            if (c.written() != null) {
                ModelConfig mc = c.written().config();
                Path dir = tmp.resolve(c.name()).resolve("checkpoint");
                CheckpointDir.write(dir, mc, ModelLoader.hostTensors(mc, RandomInit.weights(mc, c.seed(), 0.25, 0.2)),
                        c.written().dtype(), null, Map.of(), 0, null, 0, 0);
                o.addProperty("checkpoint", dir.toString());
            }
            o.addProperty("name", c.name());
            o.addProperty("seed", c.seed());
            o.addProperty("dtype", c.dtype());
            o.addProperty("style", c.style());
            o.addProperty("max_shard_size", c.maxShardSize());
            o.add("config", c.config());
            o.add("sequences", json(c.sequences()));
            o.add("prompts", json(c.prompts()));
            o.addProperty("greedy_new", GREEDY_NEW);
            cases.add(o);
        }
        JsonObject spec = new JsonObject();
        spec.add("cases", cases);
        Path specFile = tmp.resolve("spec.json");
        Files.writeString(specFile, spec.toString());
        ReferencePython.run("hf_reference.py", "--spec", specFile.toString(), "--out", tmp.toString(),
                "--device", DEVICE.equals("cpu") ? "cpu" : "cuda:" + DEVICE.substring(4));
    }

    static double[][] matrix(JsonArray a) {
        double[][] out = new double[a.size()][];
        for (int i = 0; i < a.size(); i++) {
            JsonArray row = a.get(i).getAsJsonArray();
            out[i] = new double[row.size()];
            for (int j = 0; j < row.size(); j++) {
                out[i][j] = row.get(j).getAsDouble();
            }
        }
        return out;
    }

    /** log_softmax in double of one row of float logits. */
    static double[] logSoftmax(float[] logits, int offset, int v) {
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < v; j++) {
            max = Math.max(max, logits[offset + j]);
        }
        double sum = 0;
        for (int j = 0; j < v; j++) {
            sum += Math.exp(logits[offset + j] - max);
        }
        double lse = max + Math.log(sum);
        double[] out = new double[v];
        for (int j = 0; j < v; j++) {
            out[j] = logits[offset + j] - lse;
        }
        return out;
    }

    static void assertClose(double[] expected, double[] actual, String what) {
        assertEquals(expected.length, actual.length, what);
        double diff = 0;
        for (int j = 0; j < expected.length; j++) {
            diff = Math.max(diff, Math.abs(expected[j] - actual[j]));
        }
        assertTrue(diff <= TOLERANCE, what + ": max |Δ log-prob| " + diff);
    }

    static int argmax(double[] row) {
        int best = 0;
        for (int j = 1; j < row.length; j++) {
            if (row[j] > row[best]) {
                best = j;
            }
        }
        return best;
    }

    @ParameterizedTest
    @ValueSource(strings = {"t5-f32-untied", "t4-f32-untied", "t5-f32-tied-sharded", "t5-bf16-tied", "t4-bf16-untied-sharded",
            "t5-f16-tied", "t5-f32-yarn", "t4-bf16-yarn-tied", "tailguard-f32-untied", "tailguard-bf16-tied"})
    void logProbsAndGreedyTokensMatchTransformers(String name) throws IOException {
        Case c = CASES.get(name);
        Path dir = tmp.resolve(name);
        JsonObject ref = JsonParser.parseString(Files.readString(dir.resolve("ref.json"))).getAsJsonObject();
        Path ckpt = dir.resolve("checkpoint");
        assertEquals(c.maxShardSize() != null, Files.exists(ckpt.resolve(CheckpointDir.WEIGHTS_INDEX)), "sharded as asked");
        assertTrue(ref.get("greedy_margin").getAsDouble() >= 1e-3,
                "the reference's greedy steps nearly tie (margin " + ref.get("greedy_margin") + "): pick another seed");
        try (Qwen3Model model = ModelLoader.load(ckpt, Devices.parse(DEVICE)); NDManager m = model.manager().newSubManager()) {
            int v = model.config().vocabSize();
            assertEquals(ref.get("rope_theta").getAsDouble(), model.config().ropeTheta(), name + ": RoPE base as transformers reads it");
            assertEquals(name.contains("yarn"), model.config().yarn() != null, name + ": YaRN read");

            // the plain forward
            JsonArray forward = ref.getAsJsonArray("forward_logprobs");
            List<double[][]> refForward = new ArrayList<>();
            for (int s = 0; s < c.sequences().size(); s++) {
                int[] seq = c.sequences().get(s);
                double[][] want = matrix(forward.get(s).getAsJsonArray());
                refForward.add(want);
                long[] ids = Arrays.stream(seq).asLongStream().toArray();
                float[] logits = model.forward(m.create(ids, new Shape(1, ids.length))).toFloatArray();
                for (int t = 0; t < seq.length; t++) {
                    assertClose(want[t], logSoftmax(logits, t * v, v), name + " forward, sequence " + s + " position " + t);
                }
            }

            // teacher-forced scoring, as the learner and eval score
            List<int[]> prompts = new ArrayList<>();
            List<int[]> continuations = new ArrayList<>();
            for (int s = 0; s < c.sequences().size(); s++) {
                int[] seq = c.sequences().get(s);
                int p = c.continuationOf()[s];
                prompts.add(Arrays.copyOf(seq, p));
                continuations.add(Arrays.copyOfRange(seq, p, seq.length));
            }
            // all three: the shared-prompt path (the prompt runs once, as GrpoLearner's forwardShared);
            // the last alone: one padded batch forward
            List<Scorer.Scores> scores = Scorer.score(model, prompts, continuations, Scorer.Options.LOGPROBS_ONLY);
            int last = continuations.size() - 1;
            List<Scorer.Scores> alone = Scorer.score(model, prompts.subList(last, last + 1),
                    continuations.subList(last, last + 1), Scorer.Options.LOGPROBS_ONLY);
            for (int s = 0; s <= last + 1; s++) {
                int k = Math.min(s, last);
                Scorer.Scores got = s <= last ? scores.get(s) : alone.get(0);
                int[] cont = continuations.get(k);
                int p = prompts.get(k).length;
                double diff = 0;
                for (int t = 0; t < cont.length; t++) {
                    diff = Math.max(diff, Math.abs(refForward.get(k)[p - 1 + t][cont[t]] - got.logprobs()[t]));
                }
                assertTrue(diff <= TOLERANCE, name + " scoring of continuation " + k + (s > last ? " alone" : "")
                        + ": max |Δ log-prob| " + diff);
            }

            // the learner's training forward (GrpoLearner: a group's prompt runs once, its samples
            // attend to its keys and values), each prompt with the continuations that share it, cut
            // to the shortest (causal: later tokens change no earlier log-prob)
            java.util.Set<Integer> done = new java.util.HashSet<>();
            for (int s0 = 0; s0 < prompts.size(); s0++) {
                if (!done.add(s0)) {
                    continue;
                }
                List<Integer> group = new ArrayList<>(List.of(s0));
                for (int s = s0 + 1; s < prompts.size(); s++) {
                    if (Arrays.equals(prompts.get(s), prompts.get(s0))) {
                        group.add(s);
                        done.add(s);
                    }
                }
                int pl = prompts.get(s0).length;
                int cl = group.stream().mapToInt(s -> continuations.get(s).length).min().orElseThrow();
                long[] promptIds = Arrays.stream(prompts.get(s0)).asLongStream().toArray();
                long[] contIds = group.stream().flatMapToLong(s -> Arrays.stream(continuations.get(s), 0, cl).asLongStream()).toArray();
                NDArray[] shared = model.forwardShared(m.create(promptIds, new Shape(1, pl)), m.create(contIds, new Shape(group.size(), cl)));
                float[] first = shared[0].toFloatArray();
                float[] rest = shared[1].toFloatArray();
                for (int g = 0; g < group.size(); g++) {
                    int k = group.get(g);
                    int[] cont = continuations.get(k);
                    double diff = Math.abs(refForward.get(k)[pl - 1][cont[0]] - logSoftmax(first, 0, v)[cont[0]]);
                    for (int t = 1; t < cl; t++) {
                        double[] lp = logSoftmax(rest, (g * cl + t - 1) * v, v);
                        diff = Math.max(diff, Math.abs(refForward.get(k)[pl - 1 + t][cont[t]] - lp[cont[t]]));
                    }
                    assertTrue(diff <= TOLERANCE, name + " learner forward (prompt shared by " + group.size()
                            + ") of continuation " + k + ": max |Δ log-prob| " + diff);
                }
            }

            // incremental decode: batched prefill of unequal prompts, then greedy steps
            JsonArray greedyTokens = ref.getAsJsonArray("greedy_tokens");
            JsonArray greedyLogprobs = ref.getAsJsonArray("greedy_logprobs");
            int b = c.prompts().size();
            int[] lengths = new int[b];
            int longest = 0;
            for (int i = 0; i < b; i++) {
                lengths[i] = c.prompts().get(i).length;
                longest = Math.max(longest, lengths[i]);
            }
            long[] padded = new long[b * longest];
            for (int i = 0; i < b; i++) {
                for (int t = 0; t < lengths[i]; t++) {
                    padded[i * longest + t] = c.prompts().get(i)[t];
                }
            }
            int[][] got = new int[b][GREEDY_NEW];
            try (KvCache cache = new KvCache(m, model.config(), b, longest + GREEDY_NEW)) {
                float[] logits = model.prefill(m.create(padded, new Shape(b, longest)), lengths, cache).toFloatArray();
                for (int step = 0; step < GREEDY_NEW; step++) {
                    long[] next = new long[b];
                    for (int i = 0; i < b; i++) {
                        double[] lp = logSoftmax(logits, i * v, v);
                        double[] want = matrix(greedyLogprobs.get(i).getAsJsonArray())[step];
                        assertClose(want, lp, name + " decode, prompt " + i + " step " + step);
                        got[i][step] = argmax(lp);
                        next[i] = got[i][step];
                    }
                    if (step + 1 < GREEDY_NEW) {
                        logits = model.decode(next, cache, AttentionKernel.DENSE, m).toFloatArray();
                    }
                }
            }
            for (int i = 0; i < b; i++) {
                JsonArray want = greedyTokens.get(i).getAsJsonArray();
                int[] w = new int[want.size()];
                for (int t = 0; t < w.length; t++) {
                    w[t] = want.get(t).getAsInt();
                }
                assertArrayEquals(w, got[i], name + " greedy tokens of prompt " + i);
            }
        }
    }
}
