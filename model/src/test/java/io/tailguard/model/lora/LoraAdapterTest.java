package io.tailguard.model.lora;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import io.tailguard.model.io.CheckpointException;
import io.tailguard.model.io.DType;
import io.tailguard.model.io.HostTensor;
import io.tailguard.model.io.SafeTensors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The adapter's switch, merge, masks and files. The effective weights are checked against
 * W + (alpha/r)·B·A computed here with plain loops; logits against PEFT and transformers in
 * {@code PeftInteropTest}.
 */
class LoraAdapterTest {
    // GQA ratio 2, head_dim 8 unlike 32 / 4, untied, two layers.
    static final ModelConfig CONFIG = new ModelConfig(29, 32, 40, 2, 4, 2, 8, 1e-6, 10_000.0, 256, false, -1);
    static final long[] IDS = {3, 7, 1, 28, 4, 4, 9, 0, 12, 5, 17, 2, 6};

    @TempDir
    Path tmp;

    Qwen3Model model;
    NDManager m;

    @BeforeEach
    void build() {
        model = Qwen3Model.create(CONFIG, RandomInit.weights(CONFIG, 4, 0.3, 0.1), Device.cpu());
        m = NDManager.newBaseManager();
    }

    @AfterEach
    void close() {
        m.close();
        model.close();
    }

    float[] logits() {
        return model.forward(m.create(IDS, new Shape(1, IDS.length))).toFloatArray();
    }

    /** A trained-looking adapter: PEFT's A and a random nonzero B. */
    static LoraAdapter trained(Qwen3Model model, LoraConfig c, long seed) {
        LoraAdapter lora = LoraAdapter.create(model, c, seed);
        SplittableRandom r = new SplittableRandom(seed + 1);
        for (Map.Entry<String, NDArray> e : lora.parameters().entrySet()) {
            if (e.getKey().endsWith("lora_B.weight")) {
                float[] v = new float[(int) e.getValue().size()];
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) (r.nextGaussian() * 0.3);
                }
                e.getValue().set(v);
            }
        }
        return lora;
    }

    static float[] host(NDArray a) {
        return a.toFloatArray();
    }

    /** (W + s B A) ⊙ M by loops: W [out, in], A [r, in], B [out, r], mask may be null. */
    static float[] effective(float[] w, float[] a, float[] b, float[] mask, int out, int in, int r, double s) {
        float[] e = new float[out * in];
        for (int i = 0; i < out; i++) {
            for (int j = 0; j < in; j++) {
                double d = 0;
                for (int k = 0; k < r; k++) {
                    d += (double) b[i * r + k] * a[k * in + j];
                }
                double v = w[i * in + j] + s * d;
                e[i * in + j] = (float) (mask == null ? v : (mask[i * in + j] != 0 ? v : 0));
            }
        }
        return e;
    }

    static void assertClose(float[] want, float[] got, double tol, String what) {
        assertEquals(want.length, got.length, what);
        double scale = 0;
        double diff = 0;
        for (int i = 0; i < want.length; i++) {
            scale = Math.max(scale, Math.abs(want[i]));
            diff = Math.max(diff, Math.abs(want[i] - got[i]));
        }
        assertTrue(diff <= tol * Math.max(1, scale), what + ": max difference " + diff + " (scale " + scale + ")");
    }

    @Test
    void switchedOffOrFreshTheLogitsAreTheBaseLogitsBitForBit() {
        float[] base = logits();
        try (LoraAdapter lora = LoraAdapter.create(model, LoraConfig.defaults(), 1)) {
            model.attach(lora);
            assertArrayEquals(base, logits(), "a fresh adapter (B = 0) changes nothing");
        }
        try (LoraAdapter lora = trained(model, LoraConfig.defaults(), 2)) {
            model.attach(lora);
            float[] on = logits();
            assertFalse(java.util.Arrays.equals(base, on), "a trained adapter changes the logits");
            lora.setEnabled(false);
            assertArrayEquals(base, logits(), "switched off, the model computes its base logits");
            try (var s = lora.switchTo(true)) {
                assertArrayEquals(on, logits());
            }
            assertFalse(lora.isEnabled(), "switchTo restores the previous state");
        }
        assertEquals(null, model.adapter(), "closing the adapter detaches it");
    }

    @Test
    void mergeWritesTheEffectiveWeightIntoTheModelAndUnmergeRestoresTheBaseExactly() {
        LoraConfig c = new LoraConfig(3, 7, List.of("q_proj", "v_proj", "up_proj", "down_proj", "o_proj"));
        Map<String, float[]> base = model.hostWeights();
        float[] baseLogits = logits();
        // Merging happens while a learner tracks the base weights' gradients (outside its backward).
        model.parameters().values().forEach(p -> p.setRequiresGradient(true));
        try (LoraAdapter lora = trained(model, c, 5)) {
            model.attach(lora);
            float[] adapted = logits();
            lora.merge();
            assertFalse(lora.active(), "merged: the weights carry the adapter");
            assertThrows(IllegalStateException.class, () -> lora.setEnabled(false));
            Map<String, float[]> merged = model.hostWeights();
            for (int l = 0; l < CONFIG.numLayers(); l++) {
                for (String module : LoraConfig.ALL_LINEAR) {
                    String w = "model.layers." + l + "." + (module.equals("gate_proj") || module.equals("up_proj")
                            || module.equals("down_proj") ? "mlp." : "self_attn.") + module + ".weight";
                    if (!c.targets(module)) {
                        assertArrayEquals(base.get(w), merged.get(w), w + " is not a target");
                        continue;
                    }
                    NDArray a = lora.parameters().get(LoraFiles.tensorName(l, module, 'A'));
                    NDArray b = lora.parameters().get(LoraFiles.tensorName(l, module, 'B'));
                    int out = (int) b.getShape().get(0);
                    int in = (int) a.getShape().get(1);
                    assertClose(effective(base.get(w), host(a), host(b), null, out, in, 3, 7.0 / 3), merged.get(w), 1e-6, w);
                }
            }
            assertClose(adapted, logits(), 1e-5, "merged forward == adapter forward");
            lora.unmerge();
            Map<String, float[]> restored = model.hostWeights();
            for (String w : base.keySet()) {
                assertArrayEquals(base.get(w), restored.get(w), w + " after unmerge, bit for bit");
            }
            lora.setEnabled(false);
            assertArrayEquals(baseLogits, logits(), "unmerged and off == base, bit for bit");
            try (var m = lora.mergedScope()) {
                assertClose(adapted, logits(), 1e-5, "merged in a scope");
            }
            assertArrayEquals(baseLogits, logits(), "and restored after it");
        }
    }

    @Test
    void aMaskGivesTheMaskedEffectiveWeightEvenOnModulesTheLoraDoesNotAdapt() {
        LoraConfig c = new LoraConfig(2, 4, List.of("k_proj", "gate_proj"));
        Map<String, float[]> base = model.hostWeights();
        SplittableRandom r = new SplittableRandom(11);
        Map<String, float[]> masks = new HashMap<>();
        try (LoraAdapter lora = trained(model, c, 8)) {
            model.attach(lora);
            // k_proj adapted and masked, up_proj masked only, gate_proj adapted only
            for (String module : List.of("k_proj", "up_proj")) {
                long[] s = io.tailguard.model.Projection.shape(CONFIG, module);
                float[] mask = new float[(int) (s[0] * s[1])];
                for (int i = 0; i < mask.length; i++) {
                    mask[i] = r.nextDouble() < 0.6 ? 1 : 0;
                }
                masks.put(module, mask);
                lora.setMask(1, module, m.create(mask, new Shape(s)));
            }
            float[] maskedForward = logits();
            lora.merge();
            Map<String, float[]> merged = model.hostWeights();
            String k = "model.layers.1.self_attn.k_proj.weight";
            assertClose(effective(base.get(k), host(lora.parameters().get(LoraFiles.tensorName(1, "k_proj", 'A'))),
                    host(lora.parameters().get(LoraFiles.tensorName(1, "k_proj", 'B'))), masks.get("k_proj"),
                    16, 32, 2, 2.0), merged.get(k), 1e-6, k);
            String up = "model.layers.1.mlp.up_proj.weight";
            float[] want = base.get(up).clone();
            for (int i = 0; i < want.length; i++) {
                want[i] = want[i] * masks.get("up_proj")[i];
            }
            assertArrayEquals(want, merged.get(up), up + " = W ⊙ M");
            assertClose(maskedForward, logits(), 1e-5, "masked forward == masked merge");
            lora.unmerge();
            Map<String, float[]> restored = model.hostWeights();
            for (String w : base.keySet()) {
                assertArrayEquals(base.get(w), restored.get(w), w + ": a masked merge is undone exactly too");
            }
        }
    }

    @Test
    void savedAndLoadedTheAdapterIsTheSameWithPeftNames() throws Exception {
        LoraConfig c = new LoraConfig(4, 16, List.of("down_proj", "q_proj", "gate_proj"));
        Path dir = tmp.resolve("adapter");
        float[] on;
        Map<String, float[]> saved = new HashMap<>();
        try (LoraAdapter lora = trained(model, c, 3)) {
            lora.parameters().forEach((n, a) -> saved.put(n, a.toFloatArray()));
            model.attach(lora);
            on = logits();
            lora.save(dir);
        }
        Map<String, HostTensor> file = SafeTensors.read(dir.resolve("adapter_model.safetensors"));
        Set<String> want = new TreeSet<>();
        for (int l = 0; l < 2; l++) {
            for (String s : List.of("self_attn.q_proj", "mlp.gate_proj", "mlp.down_proj")) {
                want.add("base_model.model.model.layers." + l + "." + s + ".lora_A.weight");
                want.add("base_model.model.model.layers." + l + "." + s + ".lora_B.weight");
            }
        }
        assertEquals(want, new TreeSet<>(file.keySet()));
        assertArrayEquals(new long[] {4, 32}, file.get("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight").shape());
        assertArrayEquals(new long[] {32, 4}, file.get("base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight").shape());
        assertArrayEquals(new long[] {4, 40}, file.get("base_model.model.model.layers.0.mlp.down_proj.lora_A.weight").shape());
        JsonObject cfg = JsonParser.parseString(Files.readString(dir.resolve("adapter_config.json"))).getAsJsonObject();
        assertEquals("LORA", cfg.get("peft_type").getAsString());
        assertEquals(4, cfg.get("r").getAsInt());
        assertEquals(16, cfg.get("lora_alpha").getAsInt());
        assertEquals(Set.of("q_proj", "gate_proj", "down_proj"),
                Set.copyOf(cfg.get("target_modules").getAsJsonArray().asList().stream().map(e -> e.getAsString()).toList()));
        assertTrue(Files.exists(dir.resolve("manifest.json")), "written through the atomic directory writer");

        for (Path from : List.of(dir, dir.resolve("adapter_model.safetensors"))) {
            try (LoraAdapter back = LoraAdapter.load(from, model)) {
                assertEquals(c, back.config());
                for (Map.Entry<String, NDArray> e : back.parameters().entrySet()) {
                    assertArrayEquals(saved.get(e.getKey()), e.getValue().toFloatArray(), e.getKey());
                }
                model.attach(back);
                assertArrayEquals(on, logits(), "the loaded adapter computes the same logits");
            }
        }
    }

    @Test
    void theDefaultAdaptsAllSevenLinearModulesWithRankEightAndAlphaSixteen() {
        LoraConfig d = LoraConfig.defaults();
        assertEquals(8, d.rank());
        assertEquals(2.0, d.scale());
        assertEquals(List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"), d.targetModules());
        try (LoraAdapter lora = LoraAdapter.create(model, d, 0)) {
            assertEquals(2 * 7 * 2, lora.parameters().size());
            // PEFT's init: A within ±1/sqrt(in), B zero.
            float[] a = lora.parameters().get(LoraFiles.tensorName(0, "down_proj", 'A')).toFloatArray();
            double bound = 1 / Math.sqrt(40);
            double max = 0;
            for (float v : a) {
                max = Math.max(max, Math.abs(v));
            }
            assertTrue(max <= bound && max > 0.8 * bound, "A uniform in ±1/sqrt(in): max " + max);
            for (float v : lora.parameters().get(LoraFiles.tensorName(1, "q_proj", 'B')).toFloatArray()) {
                assertEquals(0f, v);
            }
        }
        assertThrows(IllegalArgumentException.class, () -> new LoraConfig(0, 16, LoraConfig.ALL_LINEAR));
        assertThrows(IllegalArgumentException.class, () -> new LoraConfig(8, 16, List.of("lm_head")));
    }

    /** target_modules, exclude_modules and the weights' file name as PEFT and Tailguard checkpoints write them. */
    @Test
    void peftsWaysOfNamingTargetsAndFilesLoad() throws Exception {
        Path good = savedAdapter(); // q_proj and o_proj
        String config = Files.readString(good.resolve("adapter_config.json"));
        String targets = config.substring(config.indexOf("\"target_modules\""), config.indexOf("]", config.indexOf("\"target_modules\"")) + 1);
        Map<String, String> same = Map.of(
                "full names", "\"target_modules\": [\"model.layers.0.self_attn.q_proj\", \"model.layers.1.self_attn.q_proj\", "
                        + "\"model.layers.1.self_attn.o_proj\", \"model.layers.0.self_attn.o_proj\"]",
                "tails", "\"target_modules\": [\"self_attn.o_proj\", \"q_proj\"]",
                "regular expression", "\"target_modules\": \"model\\\\.layers\\\\.\\\\d+\\\\.self_attn\\\\.(q|o)_proj\"",
                "excluded", "\"target_modules\": \"all-linear\", \"exclude_modules\": [\"k_proj\", \"v_proj\", \"mlp.gate_proj\", \"up_proj\", \"down_proj\"]",
                "descriptive keys", targets + ", \"base_model_name_or_path\": \"Qwen/Qwen3-0.6B\", \"peft_version\": \"0.21.0\", "
                        + "\"init_lora_weights\": \"gaussian\", \"loftq_config\": {}, \"layers_pattern\": null, \"use_future_variant\": false");
        for (Map.Entry<String, String> e : same.entrySet()) {
            Path dir = copyWithout(good, "adapter_config.json");
            Files.writeString(dir.resolve("adapter_config.json"), config.replace(targets, e.getValue()));
            try (LoraAdapter back = LoraAdapter.load(dir, model)) {
                assertEquals(new LoraConfig(2, 4, List.of("q_proj", "o_proj")), back.config(), e.getKey());
            }
        }
        Map<String, String> refused = Map.of(
                "one layer only", "\"target_modules\": [\"model.layers.1.self_attn.q_proj\", \"o_proj\"]",
                "lm_head by expression", "\"target_modules\": \".*(q_proj|o_proj|lm_head)\"",
                "bad expression", "\"target_modules\": \"(q_proj\"");
        for (Map.Entry<String, String> e : refused.entrySet()) {
            Path dir = copyWithout(good, "adapter_config.json");
            Files.writeString(dir.resolve("adapter_config.json"), config.replace(targets, e.getValue()));
            String msg = loadFails(dir);
            assertTrue(msg.contains("adapter_config.json") && msg.contains("key target_modules"), e.getKey() + ": " + msg);
        }

        // checkpoints written before the folder lora: lora.safetensors beside the model's files
        Path inCheckpoint = copyWithout(good, "adapter_model.safetensors");
        Files.copy(good.resolve("adapter_model.safetensors"), inCheckpoint.resolve("lora.safetensors"));
        LoraAdapter.load(inCheckpoint, model).close();
        Files.copy(good.resolve("adapter_model.safetensors"), inCheckpoint.resolve("adapter_model.safetensors"));
        String msg = loadFails(inCheckpoint);
        assertTrue(msg.contains("both") && msg.contains(inCheckpoint.toString()), msg);
        Path pickle = copyWithout(good, "adapter_model.safetensors");
        Files.writeString(pickle.resolve("adapter_model.bin"), "pickle");
        msg = loadFails(pickle);
        assertTrue(msg.contains("adapter_model.bin") && msg.contains("safe_serialization"), msg);
    }

    // ---- bad files ----

    Path savedAdapter() {
        Path dir = tmp.resolve("good");
        try (LoraAdapter lora = trained(model, new LoraConfig(2, 4, List.of("q_proj", "o_proj")), 1)) {
            lora.save(dir);
        }
        return dir;
    }

    Path copyWithout(Path dir, String name) throws Exception {
        Path bad = tmp.resolve("bad-" + System.nanoTime());
        Files.createDirectories(bad);
        for (String f : List.of("adapter_model.safetensors", "adapter_config.json")) {
            if (!f.equals(name)) {
                Files.copy(dir.resolve(f), bad.resolve(f));
            }
        }
        return bad;
    }

    String loadFails(Path p) {
        CheckpointException e = assertThrows(CheckpointException.class, () -> LoraAdapter.load(p, model).close());
        assertFalse(e.getMessage().contains("\n"), "one line");
        return e.getMessage();
    }

    void writeTensors(Path dir, Map<String, HostTensor> t) {
        SafeTensors.write(dir.resolve("adapter_model.safetensors"), t, Map.of());
    }

    @Test
    void badFilesFailNamingTheFileAndTheKeyOrTensor() throws Exception {
        Path good = savedAdapter();
        Map<String, HostTensor> tensors = new HashMap<>(SafeTensors.read(good.resolve("adapter_model.safetensors")));
        String a0 = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";

        Path noConfig = copyWithout(good, "adapter_config.json");
        assertTrue(loadFails(noConfig).contains("adapter_config.json"));

        Path missing = copyWithout(good, "x");
        Map<String, HostTensor> t = new HashMap<>(tensors);
        t.remove(a0);
        writeTensors(missing, t);
        String msg = loadFails(missing);
        assertTrue(msg.contains("adapter_model.safetensors") && msg.contains(a0) && msg.contains("missing"), msg);

        Path shape = copyWithout(good, "x");
        t = new HashMap<>(tensors);
        t.put(a0, HostTensor.ofFloats(new long[] {3, 32}, new float[96], DType.F32));
        writeTensors(shape, t);
        msg = loadFails(shape);
        assertTrue(msg.contains(a0) && msg.contains("[3, 32]") && msg.contains("[2, 32]"), msg);

        Path extra = copyWithout(good, "x");
        t = new HashMap<>(tensors);
        String stray = "base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight";
        t.put(stray, HostTensor.ofFloats(new long[] {2, 32}, new float[64], DType.F32));
        writeTensors(extra, t);
        assertTrue(loadFails(extra).contains(stray));

        Path nan = copyWithout(good, "x");
        t = new HashMap<>(tensors);
        float[] v = new float[64];
        v[5] = Float.NaN;
        t.put(a0, HostTensor.ofFloats(new long[] {2, 32}, v, DType.F32));
        writeTensors(nan, t);
        msg = loadFails(nan);
        assertTrue(msg.contains(a0) && msg.contains("not finite"), msg);

        Path notSafetensors = copyWithout(good, "adapter_model.safetensors");
        Files.writeString(notSafetensors.resolve("adapter_model.safetensors"), "hello");
        assertTrue(loadFails(notSafetensors).contains("adapter_model.safetensors"));

        String config = Files.readString(good.resolve("adapter_config.json"));
        Map<String, String> badConfigs = new HashMap<>(Map.of(
                "\"r\"", config.replaceFirst("\"r\": 2", "\"r\": 0"),
                "peft_type", config.replaceFirst("\"LORA\"", "\"IA3\""),
                "use_rslora", config.replaceFirst("\"use_rslora\": false", "\"use_rslora\": true"),
                "target_modules", config.replaceFirst("\"q_proj\"", "\"lm_head\""),
                "lora_alpha", config.replaceFirst("\"lora_alpha\": 4", "\"lora_alpha\": \"four\""),
                "not valid JSON", config.substring(0, config.length() / 2)));
        // a key this reader does not know, set: refused, since it may change the math
        badConfigs.put("use_future_variant", config.replaceFirst("\\{", "{\"use_future_variant\": true,"));
        // initialisations that change the base weights
        badConfigs.put("init_lora_weights", config.replaceFirst("\\{", "{\"init_lora_weights\": \"pissa_niter_4\","));
        badConfigs.put("modules_to_save", config.replaceFirst("\\{", "{\"modules_to_save\": [\"lm_head\"],"));
        badConfigs.put("layers_to_transform", config.replaceFirst("\\{", "{\"layers_to_transform\": 1,"));
        for (Map.Entry<String, String> e : badConfigs.entrySet()) {
            Path bad = copyWithout(good, "adapter_config.json");
            Files.writeString(bad.resolve("adapter_config.json"), e.getValue());
            msg = loadFails(bad);
            assertTrue(msg.contains("adapter_config.json") && msg.contains(e.getKey().replace("\"r\"", "key r")), msg);
        }

        Files.writeString(good.resolve("adapter_config.json"), config.replace("2", "3"));
        assertTrue(loadFails(good).contains("sha256"), "the manifest catches a changed file");
        assertTrue(loadFails(tmp.resolve("nowhere")).contains("nowhere"));
    }
}
