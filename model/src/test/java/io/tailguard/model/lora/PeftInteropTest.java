package io.tailguard.model.lora;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.tailguard.model.AttentionKernel;
import io.tailguard.model.KvCache;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.Projection;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.io.CheckpointDir;
import io.tailguard.model.io.CheckpointException;
import io.tailguard.model.io.DType;
import io.tailguard.model.io.HostTensor;
import io.tailguard.model.io.SafeTensors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.SplittableRandom;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * LoRA adapters against PEFT itself (src/test/python/peft_reference.py, with transformers'
 * Qwen3ForCausalLM), both ways, on checkpoints that transformers saved:
 * <ul>
 * <li>adapters Tailguard writes ({@link LoraAdapter#save}, and the folder lora of a checkpoint) load
 *     with {@code PeftModel.from_pretrained} and give PEFT the logits Tailguard computes, while
 *     transformers loads such a checkpoint as the model alone;
 * <li>adapters PEFT's {@code save_pretrained} writes (B drawn at random, as after training) load as
 *     {@code --lora} loads them and give Tailguard PEFT's logits, in the full forward and in the
 *     batched prefill and decode steps (the low-rank path), and, merged into the weights as the
 *     sparse actor samples, PEFT's logits after its merge_adapter;
 * <li>adapters PEFT writes with options that change the math are refused, naming the key.
 * </ul>
 * Logits within 1e-5 (float32). One Python process serves the whole class. Skipped without torch,
 * transformers and peft unless TAILGUARD_REQUIRE_TORCH=1.
 */
class PeftInteropTest {
    static final double TOLERANCE = 1e-5;
    /**
     * The reference Python, as for the model's other parity tests: TAILGUARD_PYTHON (.ci/run builds
     * a virtual environment with torch 2.13, transformers 5 and peft), else python3 on the PATH.
     */
    static final String PYTHON = System.getenv().getOrDefault("TAILGUARD_PYTHON", "python3");
    static final List<String> SEVEN = LoraConfig.ALL_LINEAR;

    @TempDir
    static Path tmp;
    static Server python;
    /** Untied, grouped-query attention (4 query heads on 2), two layers. */
    static Path untied;
    /** Tied embeddings, multi-head attention, three layers, head_dim unlike hidden / heads. */
    static Path tied;

    @BeforeAll
    static void start() throws IOException {
        python = new Server();
        // The server's own imports are the check (one import of torch instead of two): without
        // them the class is skipped, or fails where TAILGUARD_REQUIRE_TORCH=1.
        String why = PYTHON + " cannot import torch, transformers, peft and safetensors (set "
                + "TAILGUARD_PYTHON to a Python that can; .ci/run builds one): " + python.failure();
        if ("1".equals(System.getenv("TAILGUARD_REQUIRE_TORCH"))) {
            assertTrue(python.ready(), why);
        }
        org.junit.jupiter.api.Assumptions.assumeTrue(python.ready(), why);
        untied = tmp.resolve("untied");
        tied = tmp.resolve("tied");
        python.call(checkpoint(untied, 71, 32, 48, 2, 4, 2, 8, false, 1));
        python.call(checkpoint(tied, 53, 40, 56, 3, 4, 4, 12, true, 2));
    }

    @AfterAll
    static void stop() {
        if (python != null) {
            python.close();
        }
    }

    static JsonObject checkpoint(Path dir, int vocab, int hidden, int inter, int layers, int heads, int kvHeads, int headDim,
                                 boolean tiedEmbeddings, int seed) {
        JsonObject c = new JsonObject();
        c.addProperty("vocab_size", vocab);
        c.addProperty("hidden_size", hidden);
        c.addProperty("intermediate_size", inter);
        c.addProperty("num_hidden_layers", layers);
        c.addProperty("num_attention_heads", heads);
        c.addProperty("num_key_value_heads", kvHeads);
        c.addProperty("head_dim", headDim);
        c.addProperty("tie_word_embeddings", tiedEmbeddings);
        c.addProperty("max_position_embeddings", 256);
        // weights of the order of one, so that logits and the adapter's change to them are too
        c.addProperty("initializer_range", 0.1);
        JsonObject cmd = new JsonObject();
        cmd.addProperty("cmd", "checkpoint");
        cmd.addProperty("dir", dir.toString());
        cmd.add("config", c);
        cmd.addProperty("seed", seed);
        return cmd;
    }

    // ---- Tailguard → PEFT ----

    @Test
    void anAdapterTailguardSavesLoadsInPeftWithTheSameLogits() throws IOException {
        Path dir = tmp.resolve("tailguard-all");
        try (Qwen3Model model = ModelLoader.load(untied, Device.cpu());
             LoraAdapter lora = randomB(LoraAdapter.create(model, new LoraConfig(4, 8, SEVEN), 3), 4)) {
            lora.save(dir);
            assertTrue(Files.isRegularFile(dir.resolve("adapter_model.safetensors")), "PEFT's file name");
            model.attach(lora);
            JsonObject read = compareWithPeft(model, untied, dir, "tailguard adapter, all seven modules");
            assertEquals(4, read.get("r").getAsInt());
            assertEquals(8, read.get("lora_alpha").getAsDouble());
            assertEquals(new TreeSet<>(SEVEN), strings(read.getAsJsonArray("target_modules")));
            assertEquals(2 * 7 * 2, read.get("lora_tensors").getAsInt(), "every A and B in PEFT's model");
        }
    }

    @Test
    void anAdapterOnSomeModulesWithAFractionalScaleLoadsInPeft() throws IOException {
        Path dir = tmp.resolve("tailguard-some");
        try (Qwen3Model model = ModelLoader.load(tied, Device.cpu());
             LoraAdapter lora = randomB(LoraAdapter.create(model, new LoraConfig(3, 2.5, List.of("k_proj", "o_proj", "up_proj")), 5), 6)) {
            lora.save(dir);
            model.attach(lora);
            JsonObject read = compareWithPeft(model, tied, dir, "tailguard adapter, three modules");
            assertEquals(2.5, read.get("lora_alpha").getAsDouble());
            assertEquals(new TreeSet<>(List.of("k_proj", "o_proj", "up_proj")), strings(read.getAsJsonArray("target_modules")));
            assertEquals(3 * 3 * 2, read.get("lora_tensors").getAsInt());
        }
    }

    @Test
    void theAdapterOfACheckpointLoadsInPeftAndTransformersLoadsTheCheckpointWithoutIt() throws IOException {
        // As the learner and train-sync --distill write it: the model's files, and the adapter in
        // the folder lora. compareWithPeft loads the checkpoint with from_pretrained, which must
        // give the model alone (the adapter's effect and the switched-off logits are checked there).
        Path ckpt = tmp.resolve("tailguard-checkpoint");
        try (Qwen3Model model = ModelLoader.load(untied, Device.cpu());
             LoraAdapter lora = randomB(LoraAdapter.create(model, new LoraConfig(2, 16, SEVEN), 7), 8)) {
            Map<String, byte[]> files = lora.files();
            assertEquals(new TreeSet<>(List.of("lora/adapter_model.safetensors", "lora/adapter_config.json")),
                    new TreeSet<>(files.keySet()));
            CheckpointDir.write(ckpt, model.config(), ModelLoader.hostTensors(model.config(), model.hostWeights()), DType.F32,
                    null, files, 1, null, 1, 0);
            model.attach(lora);
            compareWithPeft(model, ckpt, ckpt.resolve("lora"), "checkpoint's adapter");
        }
        // and --lora reads it from the checkpoint directory (its manifest checked)
        try (Qwen3Model model = ModelLoader.load(ckpt, Device.cpu());
             LoraAdapter lora = LoraAdapter.load(ckpt, model)) {
            assertEquals(new LoraConfig(2, 16, SEVEN), lora.config());
            model.attach(lora);
            compareWithPeft(model, ckpt, ckpt.resolve("lora"), "checkpoint's adapter through --lora");
        }
    }

    // ---- PEFT → Tailguard ----

    @Test
    void anAdapterPeftSavesLoadsInTailguardWithTheSameLogits() throws IOException {
        Path dir = tmp.resolve("peft-all");
        python.call(peftAdapter(untied, dir, 4, 8, list(SEVEN), 11, Map.of()));
        try (Qwen3Model model = ModelLoader.load(untied, Device.cpu());
             LoraAdapter lora = LoraAdapter.load(dir, model)) {
            assertEquals(new LoraConfig(4, 8, SEVEN), lora.config());
            model.attach(lora);
            compareWithPeft(model, untied, dir, "peft adapter, all seven modules");
        }
    }

    @Test
    void allLinearLoadsAsPeftSavesIt() throws IOException {
        // PEFT resolves "all-linear" before saving: to the seven names, or to every module's full
        // name (model.layers.0.mlp.down_proj, ...), as it finds shorter or not.
        for (Path base : List.of(untied, tied)) {
            Path dir = tmp.resolve("peft-all-linear-" + base.getFileName());
            python.call(peftAdapter(base, dir, 3, 7, new com.google.gson.JsonPrimitive("all-linear"), 12, Map.of()));
            try (Qwen3Model model = ModelLoader.load(base, Device.cpu());
                 LoraAdapter lora = LoraAdapter.load(dir, model)) {
                assertEquals(new LoraConfig(3, 7, SEVEN), lora.config());
                model.attach(lora);
                compareWithPeft(model, base, dir, "peft adapter, all-linear on " + base.getFileName());
            }
        }
    }

    @Test
    void fullModuleNamesSelectModulesAsInPeft() throws IOException {
        Path dir = tmp.resolve("peft-full-names");
        JsonArray names = new JsonArray();
        for (int l = 0; l < 2; l++) {
            names.add("model.layers." + l + ".self_attn.o_proj");
            names.add("model.layers." + l + ".mlp.up_proj");
        }
        python.call(peftAdapter(untied, dir, 2, 5, names, 16, Map.of()));
        try (Qwen3Model model = ModelLoader.load(untied, Device.cpu());
             LoraAdapter lora = LoraAdapter.load(dir, model)) {
            assertEquals(new LoraConfig(2, 5, List.of("o_proj", "up_proj")), lora.config());
            model.attach(lora);
            compareWithPeft(model, untied, dir, "peft adapter, full module names");
        }
        // the same names for one layer only: per-layer targets are refused
        Path one = tmp.resolve("peft-one-layer");
        python.call(peftAdapter(untied, one, 2, 5, list(List.of("model.layers.1.mlp.up_proj")), 16, Map.of()));
        try (Qwen3Model model = ModelLoader.load(untied, Device.cpu())) {
            CheckpointException e = assertThrows(CheckpointException.class, () -> LoraAdapter.load(one, model).close());
            assertTrue(e.getMessage().contains("key target_modules") && e.getMessage().contains("up_proj"), e.getMessage());
        }
    }

    @Test
    void targetsGivenAsATailOrARegularExpressionLoad() throws IOException {
        Path tail = tmp.resolve("peft-tail");
        JsonArray names = list(List.of("self_attn.v_proj", "gate_proj"));
        python.call(peftAdapter(untied, tail, 2, 3, names, 13, Map.of()));
        Path regex = tmp.resolve("peft-regex");
        python.call(peftAdapter(untied, regex, 2, 3, new com.google.gson.JsonPrimitive(".*\\.(q_proj|down_proj)"), 14, Map.of()));
        try (Qwen3Model model = ModelLoader.load(untied, Device.cpu())) {
            try (LoraAdapter lora = LoraAdapter.load(tail, model)) {
                assertEquals(new LoraConfig(2, 3, List.of("v_proj", "gate_proj")), lora.config());
                model.attach(lora);
                compareWithPeft(model, untied, tail, "peft adapter, targets by tail");
            }
            try (LoraAdapter lora = LoraAdapter.load(regex, model)) {
                assertEquals(new LoraConfig(2, 3, List.of("q_proj", "down_proj")), lora.config());
                model.attach(lora);
                compareWithPeft(model, untied, regex, "peft adapter, targets by regular expression");
            }
        }
    }

    @Test
    void optionsThatChangeTheMathAreRefusedNamingTheKey() throws IOException {
        Map<String, JsonElement> cases = new java.util.LinkedHashMap<>();
        cases.put("use_rslora", new com.google.gson.JsonPrimitive(true));
        cases.put("use_dora", new com.google.gson.JsonPrimitive(true));
        cases.put("rank_pattern", JsonParser.parseString("{\"q_proj\": 4}"));
        cases.put("alpha_pattern", JsonParser.parseString("{\"v_proj\": 9}"));
        cases.put("modules_to_save", JsonParser.parseString("[\"lm_head\"]"));
        cases.put("layers_to_transform", JsonParser.parseString("[0]"));
        cases.put("bias", new com.google.gson.JsonPrimitive("lora_only"));
        cases.put("lora_bias", new com.google.gson.JsonPrimitive(true));
        try (Qwen3Model model = ModelLoader.load(untied, Device.cpu())) {
            for (Map.Entry<String, JsonElement> c : cases.entrySet()) {
                Path dir = tmp.resolve("peft-" + c.getKey());
                python.call(peftAdapter(untied, dir, 2, 4, list(List.of("q_proj", "v_proj")), 15, Map.of(c.getKey(), c.getValue())));
                CheckpointException e = assertThrows(CheckpointException.class, () -> LoraAdapter.load(dir, model).close(), c.getKey());
                assertTrue(e.getMessage().contains("adapter_config.json") && e.getMessage().contains("key " + c.getKey()),
                        c.getKey() + ": " + e.getMessage());
            }
        }
    }

    // ---- masks (V:N:M recovery) ----

    @Test
    void masksGiveTheMaskedEffectiveWeightAsPeftMergedAndMaskedComputesIt() throws IOException {
        // transformers' model with PEFT's adapter merged, each masked weight then multiplied by its
        // mask: W' = (W + (alpha/r) B A) * M. Adapted and masked (k_proj, up_proj), masked only
        // (gate_proj, down_proj), adapted only (o_proj); layers 0 and 2 of three.
        Path adapter = tmp.resolve("tailguard-masked");
        Path masks = tmp.resolve("masks.safetensors");
        int vocab;
        try (Qwen3Model model = ModelLoader.load(tied, Device.cpu());
             LoraAdapter lora = randomB(LoraAdapter.create(model, new LoraConfig(3, 6, List.of("k_proj", "o_proj", "up_proj")), 7), 8);
             NDManager m = NDManager.newBaseManager()) {
            vocab = model.config().vocabSize();
            lora.save(adapter);
            SplittableRandom r = new SplittableRandom(13);
            Map<String, HostTensor> file = new java.util.LinkedHashMap<>();
            for (int layer : new int[] {0, 2}) {
                for (String module : List.of("k_proj", "up_proj", "gate_proj", "down_proj")) {
                    long[] s = Projection.shape(model.config(), module);
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

            Random rs = new Random(17);
            int[] lengths = {7, 12, 19};
            List<long[]> seqs = new ArrayList<>();
            JsonArray ids = new JsonArray();
            for (int len : lengths) {
                long[] s = new long[len];
                JsonArray a = new JsonArray();
                for (int i = 0; i < len; i++) {
                    s[i] = rs.nextInt(vocab);
                    a.add(s[i]);
                }
                seqs.add(s);
                ids.add(a);
            }
            float[] ref = maskedLogits(adapter, masks, ids);
            float[] adaptedOnly = maskedLogits(adapter, null, ids);
            double moved = 0;
            for (int i = 0; i < ref.length; i++) {
                moved = Math.max(moved, Math.abs(ref[i] - adaptedOnly[i]));
            }
            assertTrue(moved > 0.05, "the masks must change PEFT's logits, moved " + moved);
            int[] starts = {0, lengths[0], lengths[0] + lengths[1]};
            for (int i = 0; i < seqs.size(); i++) {
                float[] got = model.forward(m.create(seqs.get(i), new Shape(1, lengths[i]))).toFloatArray();
                assertClose(ref, starts[i] * vocab, got, 0, lengths[i] * vocab, "masked adapter: forward of sequence " + i);
            }
            decode(model, seqs, lengths, starts, ref, vocab, m, "masked adapter: decode");
        }
    }

    /** PEFT's logits of the tied checkpoint with the adapter, merged and masked when masks is given. */
    static float[] maskedLogits(Path adapter, Path masks, JsonArray ids) throws IOException {
        Path out = tmp.resolve("masked-" + System.nanoTime() + ".bin");
        JsonObject cmd = new JsonObject();
        cmd.addProperty("cmd", "logits");
        cmd.addProperty("base", tied.toString());
        cmd.addProperty("adapter", adapter.toString());
        if (masks != null) {
            cmd.addProperty("masks", masks.toString());
        }
        cmd.add("ids", ids);
        cmd.addProperty("out", out.toString());
        python.call(cmd);
        return floats(out);
    }

    // ---- the comparison ----

    static JsonObject peftAdapter(Path base, Path out, int r, double alpha, JsonElement targets, int seed,
                                  Map<String, JsonElement> more) {
        JsonObject config = new JsonObject();
        config.addProperty("r", r);
        config.addProperty("lora_alpha", alpha);
        config.add("target_modules", targets);
        config.addProperty("lora_dropout", 0.0);
        more.forEach(config::add);
        JsonObject cmd = new JsonObject();
        cmd.addProperty("cmd", "adapter");
        cmd.addProperty("base", base.toString());
        cmd.addProperty("out", out.toString());
        cmd.add("config", config);
        cmd.addProperty("seed", seed);
        return cmd;
    }

    /**
     * PEFT's logits of a few sequences against the model's with its adapter: the full forward,
     * batched prefill and decode of unequal prompts, and the adapter merged into the weights.
     * Returns the adapter's config as PEFT read it.
     */
    static JsonObject compareWithPeft(Qwen3Model model, Path base, Path adapter, String what) throws IOException {
        int vocab = model.config().vocabSize();
        Random r = new Random(what.hashCode());
        int[] lengths = {7, 12, 19};
        List<long[]> seqs = new ArrayList<>();
        for (int len : lengths) {
            long[] s = new long[len];
            for (int i = 0; i < len; i++) {
                s[i] = r.nextInt(vocab);
            }
            seqs.add(s);
        }
        Path out = tmp.resolve("logits-" + System.nanoTime() + ".bin");
        JsonObject cmd = new JsonObject();
        cmd.addProperty("cmd", "logits");
        cmd.addProperty("base", base.toString());
        cmd.addProperty("adapter", adapter.toString());
        JsonArray ids = new JsonArray();
        for (long[] s : seqs) {
            JsonArray a = new JsonArray();
            for (long t : s) {
                a.add(t);
            }
            ids.add(a);
        }
        cmd.add("ids", ids);
        cmd.addProperty("out", out.toString());
        Path mergedOut = tmp.resolve("merged-" + System.nanoTime() + ".bin");
        cmd.addProperty("merged_out", mergedOut.toString());
        JsonObject answer = python.call(cmd);
        float[] ref = floats(out);
        float[] refMerged = floats(mergedOut);
        // the same without the adapter, so that the comparison is known to see it
        cmd.remove("adapter");
        cmd.remove("merged_out");
        Path plainOut = tmp.resolve("logits-" + System.nanoTime() + ".bin");
        cmd.addProperty("out", plainOut.toString());
        python.call(cmd);
        float[] plain = floats(plainOut);
        double moved = 0;
        for (int i = 0; i < ref.length; i++) {
            moved = Math.max(moved, Math.abs(ref[i] - plain[i]));
        }
        assertTrue(moved > 0.05, what + ": PEFT's adapter must change the logits, moved " + moved);

        LoraAdapter lora = (LoraAdapter) model.adapter();
        int[] starts = new int[seqs.size()];
        for (int i = 1; i < seqs.size(); i++) {
            starts[i] = starts[i - 1] + lengths[i - 1];
        }
        try (NDManager m = NDManager.newBaseManager()) {
            try (LoraAdapter.Switch off = lora.switchTo(false)) {
                for (int i = 0; i < seqs.size(); i++) {
                    float[] got = model.forward(m.create(seqs.get(i), new Shape(1, lengths[i]))).toFloatArray();
                    assertClose(plain, starts[i] * vocab, got, 0, lengths[i] * vocab, what + ": switched off, forward of sequence " + i);
                }
            }
            for (int i = 0; i < seqs.size(); i++) {
                float[] got = model.forward(m.create(seqs.get(i), new Shape(1, lengths[i]))).toFloatArray();
                assertClose(ref, starts[i] * vocab, got, 0, lengths[i] * vocab, what + ": forward of sequence " + i);
            }
            decode(model, seqs, lengths, starts, ref, vocab, m, what + ": decode");
            try (LoraAdapter.Switch merged = lora.mergedScope()) {
                for (int i = 0; i < seqs.size(); i++) {
                    float[] got = model.forward(m.create(seqs.get(i), new Shape(1, lengths[i]))).toFloatArray();
                    assertClose(refMerged, starts[i] * vocab, got, 0, lengths[i] * vocab, what + ": merged, forward of sequence " + i);
                }
            }
        }
        return answer.get("adapter").getAsJsonObject();
    }

    /** Prompts of unequal lengths prefilled together, then one token a step until each sequence ends. */
    static void decode(Qwen3Model model, List<long[]> seqs, int[] lengths, int[] starts, float[] ref, int vocab, NDManager m,
                       String what) {
        int b = seqs.size();
        int[] prompts = {3, 5, 9};
        int maxPrompt = 9;
        long[] padded = new long[b * maxPrompt];
        for (int i = 0; i < b; i++) {
            System.arraycopy(seqs.get(i), 0, padded, i * maxPrompt, prompts[i]);
        }
        try (KvCache cache = new KvCache(m, model.config(), b, lengths[b - 1])) {
            float[] logits = model.prefill(m.create(padded, new Shape(b, maxPrompt)), prompts, cache).toFloatArray();
            for (int i = 0; i < b; i++) {
                assertClose(ref, (starts[i] + prompts[i] - 1) * vocab, logits, i * vocab, vocab, what + " prefill of sequence " + i);
            }
            while (true) {
                int[] pos = cache.lengths();
                long[] next = new long[b];
                boolean any = false;
                for (int i = 0; i < b; i++) {
                    next[i] = seqs.get(i)[Math.min(pos[i], lengths[i] - 1)];
                    any |= pos[i] < lengths[i];
                }
                if (!any) {
                    return;
                }
                logits = model.decode(next, cache, AttentionKernel.DENSE, m).toFloatArray();
                for (int i = 0; i < b; i++) {
                    if (pos[i] < lengths[i]) {
                        assertClose(ref, (starts[i] + pos[i]) * vocab, logits, i * vocab, vocab,
                                what + " of sequence " + i + " at position " + pos[i]);
                    }
                }
            }
        }
    }

    static void assertClose(float[] ref, int refOffset, float[] got, int gotOffset, int n, String what) {
        double diff = 0;
        for (int i = 0; i < n; i++) {
            diff = Math.max(diff, Math.abs(ref[refOffset + i] - got[gotOffset + i]));
        }
        assertTrue(diff <= TOLERANCE, what + ": max |tailguard - peft| = " + diff);
    }

    /** B drawn at random (a fresh adapter's B is zero), as after training. */
    static LoraAdapter randomB(LoraAdapter lora, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        for (Map.Entry<String, NDArray> e : lora.parameters().entrySet()) {
            if (e.getKey().endsWith("lora_B.weight")) {
                float[] v = new float[(int) e.getValue().size()];
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) (r.nextGaussian() * 0.1);
                }
                e.getValue().set(v);
            }
        }
        return lora;
    }

    static JsonArray list(List<String> names) {
        JsonArray a = new JsonArray();
        names.forEach(a::add);
        return a;
    }

    static TreeSet<String> strings(JsonArray a) {
        TreeSet<String> out = new TreeSet<>();
        a.forEach(e -> out.add(e.getAsString()));
        return out;
    }

    static float[] floats(Path file) throws IOException {
        ByteBuffer bb = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        float[] f = new float[bb.remaining() / 4];
        bb.asFloatBuffer().get(f);
        return f;
    }

    /** peft_reference.py as a server: one JSON command a line in, one JSON answer a line out. */
    static final class Server implements AutoCloseable {
        private final Process process;
        private final Writer in;
        private final BufferedReader out;
        private final Path stderr;

        Server() throws IOException {
            ProcessBuilder pb = new ProcessBuilder(PYTHON, "src/test/python/peft_reference.py");
            // one thread: the machine's cores are shared with the JVM under test and other builds
            pb.environment().put("OMP_NUM_THREADS", "1");
            pb.environment().put("HF_HUB_OFFLINE", "1");
            pb.environment().put("TRANSFORMERS_VERBOSITY", "error");
            stderr = Files.createTempFile(tmp, "peft-reference-", ".err");
            pb.redirectError(stderr.toFile());
            Process p;
            try {
                p = pb.start();
            } catch (IOException e) {
                Files.writeString(stderr, e.toString()); // no such program
                p = null;
            }
            process = p;
            in = p == null ? null : new OutputStreamWriter(p.getOutputStream(), StandardCharsets.UTF_8);
            out = p == null ? null : new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
            String first = out == null ? null : out.readLine();
            ready = first != null && first.startsWith("{\"ready\"");
        }

        private final boolean ready;

        /** Whether the imports succeeded (the first line said so). */
        boolean ready() {
            return ready;
        }

        /** What the process wrote on stderr (why it could not start). */
        String failure() throws IOException {
            return ready ? "" : Files.readString(stderr).strip();
        }

        JsonObject call(JsonObject command) throws IOException {
            in.write(command + "\n");
            in.flush();
            String line = out.readLine();
            if (line == null) {
                fail("peft_reference.py ended without answering " + command.get("cmd") + ": " + Files.readString(stderr));
            }
            JsonObject answer = JsonParser.parseString(line).getAsJsonObject();
            if (answer.has("error")) {
                fail("peft_reference.py " + command.get("cmd") + ": " + answer.get("error").getAsString());
            }
            JsonElement ok = answer.get("ok");
            return ok.isJsonObject() ? ok.getAsJsonObject() : new JsonObject();
        }

        @Override
        public void close() {
            if (process == null) {
                return;
            }
            try {
                in.close();
                if (!process.waitFor(30, TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                }
            } catch (IOException e) {
                process.destroyForcibly();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                process.destroyForcibly();
            }
        }
    }
}
