package io.tailguard.model.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Projection;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.Scalars;
import io.tailguard.model.WeightAdapter;
import io.tailguard.model.io.CheckpointDir;

import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A LoRA adapter on a {@link Qwen3Model}: for every layer and target module, the effective weight is
 *
 * <pre>
 *   W' = (W + s · B · A) ⊙ M,    s = alpha / r,   A [r, in], B [out, r]
 * </pre>
 *
 * with M an optional elementwise mask per layer and module (absent: all ones; a module may be masked
 * without being adapted). A starts uniform in ±1/sqrt(in) and B at zero, as PEFT initialises them,
 * so a fresh adapter changes nothing.
 *
 * <p>Attached to the model ({@link Qwen3Model#attach}) and enabled, it changes every forward,
 * prefill and decode. Without masks it adds the low-rank path {@code s · (x Aᵀ) Bᵀ} to each product
 * (cheap, and exact in the math); with a mask it computes the effective weight of the masked
 * product once per call. Disabled, the model computes exactly its base logits: the products are
 * the model's own. {@link #merge} writes W' into the model's weights instead (then it is always on,
 * until {@link #unmerge} puts the base back exactly); the sparse actor samples that way.
 *
 * <p>Files: {@value LoraFiles#PEFT_WEIGHTS} (in a checkpoint, in its folder {@value LoraFiles#DIR}) with PEFT tensor names
 * ({@code base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight}, ...) and
 * {@value LoraFiles#CONFIG} with PEFT's keys; see {@link LoraFiles}. Masks are not saved: they belong
 * to whoever prunes.
 */
public final class LoraAdapter implements WeightAdapter, AutoCloseable {
    private static final List<String> MODULES = LoraConfig.ALL_LINEAR;

    private final Qwen3Model model;
    private final ModelConfig modelConfig;
    private final LoraConfig config;
    private final float scale;
    private final NDManager manager;
    private final Map<String, NDArray> parameters = new LinkedHashMap<>();
    private final NDArray[][] a;      // [layer][module]: [r, in], or null when the module is not adapted
    private final NDArray[][] b;      // [layer][module]: [out, r]
    private final NDArray[][] masks;  // [layer][module]: [out, in] float 0/1, or null
    private final NDArray[][] saved;  // [layer][module]: the base weight while merged, or null
    private boolean enabled = true;
    private boolean merged;

    private LoraAdapter(Qwen3Model model, LoraConfig config, Map<String, float[]> values) {
        if (model.isPacked()) {
            // merging writes into the base weights, which a packed model does not hold as float32
            throw new IllegalArgumentException("a LoRA needs a float32 model; this one's linears are packed");
        }
        this.model = model;
        this.modelConfig = model.config();
        this.config = config;
        this.scale = (float) config.scale();
        this.manager = model.manager().newSubManager();
        int layers = modelConfig.numLayers();
        this.a = new NDArray[layers][MODULES.size()];
        this.b = new NDArray[layers][MODULES.size()];
        this.masks = new NDArray[layers][MODULES.size()];
        this.saved = new NDArray[layers][MODULES.size()];
        for (int l = 0; l < layers; l++) {
            for (int j = 0; j < MODULES.size(); j++) {
                String module = MODULES.get(j);
                if (!config.targets(module)) {
                    continue;
                }
                String an = LoraFiles.tensorName(l, module, 'A');
                String bn = LoraFiles.tensorName(l, module, 'B');
                a[l][j] = manager.create(values.get(an), new Shape(LoraFiles.shapeA(modelConfig, config, module)));
                b[l][j] = manager.create(values.get(bn), new Shape(LoraFiles.shapeB(modelConfig, config, module)));
                parameters.put(an, a[l][j]);
                parameters.put(bn, b[l][j]);
            }
        }
    }

    /**
     * A fresh adapter for {@code model} (not yet attached): A uniform in ±1/sqrt(in) (PEFT's
     * Kaiming-uniform with a = √5), B zero; deterministic in {@code seed}.
     */
    public static LoraAdapter create(Qwen3Model model, LoraConfig config, long seed) {
        ModelConfig mc = model.config();
        SplittableRandom rng = new SplittableRandom(seed);
        Map<String, float[]> values = new LinkedHashMap<>();
        for (int l = 0; l < mc.numLayers(); l++) {
            for (String module : config.targetModules()) {
                long[] sa = LoraFiles.shapeA(mc, config, module);
                float[] av = new float[Math.toIntExact(sa[0] * sa[1])];
                double bound = 1.0 / Math.sqrt(sa[1]);
                for (int i = 0; i < av.length; i++) {
                    av[i] = (float) ((rng.nextDouble() * 2 - 1) * bound);
                }
                long[] sb = LoraFiles.shapeB(mc, config, module);
                values.put(LoraFiles.tensorName(l, module, 'A'), av);
                values.put(LoraFiles.tensorName(l, module, 'B'), new float[Math.toIntExact(sb[0] * sb[1])]);
            }
        }
        return new LoraAdapter(model, config, values);
    }

    /**
     * Reads an adapter for {@code model} (not yet attached) from a directory holding
     * {@value LoraFiles#WEIGHTS} and {@value LoraFiles#CONFIG}, or from the safetensors file itself
     * (the config beside it). A malformed file fails with a {@link io.tailguard.model.io.CheckpointException}
     * naming the file and the key or tensor.
     */
    public static LoraAdapter load(Path dirOrFile, Qwen3Model model) {
        LoraFiles.Read r = LoraFiles.read(dirOrFile, model.config());
        return new LoraAdapter(model, r.config(), r.values());
    }

    /**
     * Overwrites this adapter's A and B in place with those of a saved adapter (a directory or the
     * safetensors file, as {@link #load}), keeping the live tensors an optimizer holds; how a learner
     * resumes. The saved adapter must have this one's rank, alpha and targets, else a
     * {@link io.tailguard.model.io.CheckpointException} names its {@value LoraFiles#CONFIG}.
     */
    public void restore(Path dirOrFile) {
        if (merged) {
            throw new IllegalStateException("the LoRA is merged; unmerge it before restoring it");
        }
        LoraFiles.Read r = LoraFiles.read(dirOrFile, modelConfig);
        if (!r.config().equals(config)) {
            throw io.tailguard.model.io.CheckpointException.of(r.configFile(), "rank " + r.config().rank()
                    + ", alpha " + r.config().alpha() + ", targets " + r.config().targetModules() + " differ from this adapter's rank "
                    + config.rank() + ", alpha " + config.alpha() + ", targets " + config.targetModules());
        }
        // In place and outside autograd: the tensors may already be tracked for gradients.
        try (io.tailguard.model.GradMode.Scope off = io.tailguard.model.GradMode.off()) {
            for (Map.Entry<String, NDArray> e : parameters.entrySet()) {
                e.getValue().set(r.values().get(e.getKey()));
            }
        }
    }

    /**
     * Writes the adapter as a directory of its own, as PEFT's {@code save_pretrained} does
     * ({@value LoraFiles#PEFT_WEIGHTS} and {@value LoraFiles#CONFIG}, plus a manifest), so that
     * {@code PeftModel.from_pretrained} loads it; atomically: an existing directory is replaced only
     * once the new one is complete.
     */
    public void save(Path dir) {
        Map<String, byte[]> files = files(LoraFiles.PEFT_WEIGHTS);
        CheckpointDir.writeAtomically(dir, tmp -> {
            for (Map.Entry<String, byte[]> e : files.entrySet()) {
                java.nio.file.Files.write(tmp.resolve(e.getKey()), e.getValue());
            }
        }, 0, null, 0, 0);
    }

    /**
     * The two files by their path in a checkpoint directory, to be written there (atomically, by
     * its writer): the adapter directory {@link #save} writes, as the checkpoint's folder
     * {@value LoraFiles#DIR}.
     */
    public Map<String, byte[]> files() {
        Map<String, byte[]> out = new LinkedHashMap<>();
        files(LoraFiles.PEFT_WEIGHTS).forEach((name, bytes) -> out.put(LoraFiles.DIR + "/" + name, bytes));
        return out;
    }

    private Map<String, byte[]> files(String weightsName) {
        Map<String, float[]> host = new LinkedHashMap<>();
        for (Map.Entry<String, NDArray> e : parameters.entrySet()) {
            host.put(e.getKey(), e.getValue().toFloatArray());
        }
        return LoraFiles.encode(modelConfig, config, host, weightsName);
    }

    public LoraConfig config() {
        return config;
    }

    /**
     * The trainable tensors by PEFT name (A and B of every layer and target module), live: an
     * optimizer updates them in place, gradients attach to them.
     */
    public Map<String, NDArray> parameters() {
        return Collections.unmodifiableMap(parameters);
    }

    // ---- on, off, merged ----

    @Override
    public boolean active() {
        return enabled && !merged;
    }

    public boolean isEnabled() {
        return enabled;
    }

    public boolean isMerged() {
        return merged;
    }

    /**
     * Switches the adapter on or off for every later computation of the model it is attached to.
     *
     * @throws IllegalStateException when switching off a merged adapter (unmerge it first)
     */
    public void setEnabled(boolean on) {
        if (!on && merged) {
            throw new IllegalStateException("the LoRA is merged into the base weights; unmerge it before switching it off");
        }
        enabled = on;
    }

    /** Restores the previous on/off state when closed. */
    public interface Switch extends AutoCloseable {
        @Override
        void close();
    }

    /** {@code try (var s = lora.switchTo(true)) { ... }}: on (or off) inside the block, as before after it. */
    public Switch switchTo(boolean on) {
        boolean before = enabled;
        setEnabled(on);
        return () -> setEnabled(before);
    }

    // ---- masks ----

    /**
     * Sets the elementwise mask of one module of one layer (copied; any nonzero entry keeps the
     * weight), [out, in]; null removes it. Only the copy is kept, so the caller may close its array.
     */
    public void setMask(int layer, String module, NDArray mask) {
        int j = moduleIndex(module);
        if (merged) {
            throw new IllegalStateException("the LoRA is merged; unmerge it before changing masks");
        }
        if (masks[layer][j] != null) {
            masks[layer][j].close();
            masks[layer][j] = null;
        }
        if (mask == null) {
            return;
        }
        long[] want = Projection.shape(modelConfig, module);
        if (!mask.getShape().equals(new Shape(want))) {
            throw new IllegalArgumentException("mask of layer " + layer + " " + module + " has shape " + mask.getShape()
                    + ", expected " + new Shape(want));
        }
        NDArray keep = mask.neq(0);
        NDArray copy = keep.toType(DataType.FLOAT32, true);
        keep.close();
        copy.attach(manager);
        masks[layer][j] = copy;
    }

    /** The mask of one module of one layer (float 0/1), or null. */
    public NDArray mask(int layer, String module) {
        return masks[layer][moduleIndex(module)];
    }

    // ---- the products ----

    @Override
    public NDArray project(int layer, Projection p, NDArray x, NDArray weight) {
        NDManager m = x.getManager();
        boolean masked = false;
        boolean adapted = false;
        for (String module : p.modules()) {
            int j = MODULES.indexOf(module);
            masked |= masks[layer][j] != null;
            adapted |= a[layer][j] != null;
        }
        if (masked) {
            return linear(x, effectiveWeight(layer, p, weight, m));
        }
        NDArray y = linear(x, weight);
        if (!adapted) {
            return y;
        }
        NDList deltas = new NDList();
        for (String module : p.modules()) {
            int j = MODULES.indexOf(module);
            if (a[layer][j] != null) {
                deltas.add(Scalars.times(linear(linear(x, a[layer][j]), b[layer][j]), scale));
            } else {
                long[] shape = y.getShape().getShape();
                shape[shape.length - 1] = Projection.shape(modelConfig, module)[0];
                deltas.add(m.zeros(new Shape(shape), y.getDataType()));
            }
        }
        NDArray delta = deltas.size() == 1 ? deltas.get(0) : NDArrays.concat(deltas, -1);
        return y.add(delta);
    }

    /** (W + s·B·A) ⊙ M for each module of the product, stacked in row order: [out, in], in {@code m}. */
    private NDArray effectiveWeight(int layer, Projection p, NDArray weight, NDManager m) {
        NDList rows = new NDList();
        long row = 0;
        for (String module : p.modules()) {
            int j = MODULES.indexOf(module);
            long out = Projection.shape(modelConfig, module)[0];
            NDArray w = weight.get(m, new NDIndex("{}:{}", row, row + out));
            row += out;
            if (a[layer][j] != null) {
                w = w.add(Scalars.times(own(b[layer][j].matMul(a[layer][j]), m), scale));
            }
            if (masks[layer][j] != null) {
                w = w.mul(masks[layer][j]);
            }
            rows.add(w);
        }
        return rows.size() == 1 ? rows.get(0) : NDArrays.concat(rows, 0);
    }

    /**
     * Writes W' into the model's weights in place (through the Hugging Face views of the fused
     * tensors), so that the plain model computes with the adapter at no extra cost per token (how
     * the sparse actor samples); the adapter then counts as on until {@link #unmerge}. The weights as
     * they were are kept aside (one copy of every adapted or masked module) so that unmerging
     * restores them exactly. Closing a merged adapter leaves the merged weights in place (PEFT's
     * merge-and-unload).
     */
    public void merge() {
        if (merged) {
            throw new IllegalStateException("the LoRA is already merged");
        }
        try (io.tailguard.model.GradMode.Scope noGrad = io.tailguard.model.GradMode.off();
             NDManager scope = manager.newSubManager()) {
            for (int l = 0; l < modelConfig.numLayers(); l++) {
                for (int j = 0; j < MODULES.size(); j++) {
                    if (a[l][j] == null && masks[l][j] == null) {
                        continue;
                    }
                    NDArray w = baseView(l, MODULES.get(j));
                    NDArray copy = w.duplicate();
                    copy.attach(manager);
                    saved[l][j] = copy;
                    if (a[l][j] != null) {
                        w.addi(delta(l, j, scope));
                    }
                    if (masks[l][j] != null) {
                        w.muli(masks[l][j]);
                    }
                }
            }
        }
        merged = true;
    }

    /**
     * Puts back, bit for bit, the weights {@link #merge} replaced (any change made to them while
     * merged is discarded with them).
     */
    public void unmerge() {
        if (!merged) {
            throw new IllegalStateException("the LoRA is not merged");
        }
        try (io.tailguard.model.GradMode.Scope noGrad = io.tailguard.model.GradMode.off()) {
            restoreSaved();
        }
        merged = false;
    }

    private void restoreSaved() {
        for (int l = 0; l < modelConfig.numLayers(); l++) {
            for (int j = 0; j < MODULES.size(); j++) {
                if (saved[l][j] != null) {
                    baseView(l, MODULES.get(j)).set(new NDIndex(":"), saved[l][j]);
                    saved[l][j].close();
                    saved[l][j] = null;
                }
            }
        }
    }

    /**
     * {@code try (var m = lora.mergedScope()) { ... }}: merged inside the block (the plain, cheap
     * products compute with the adapter), the weights restored exactly after it.
     */
    public Switch mergedScope() {
        merge();
        return this::unmerge;
    }

    /** s·B·A of one module, in {@code scope}. */
    private NDArray delta(int layer, int j, NDManager scope) {
        return own(b[layer][j].matMul(a[layer][j]), scope).mul(scale);
    }

    private NDArray baseView(int layer, String module) {
        String name = "model.layers." + layer + "." + Projection.of(module).block() + "." + module + ".weight";
        NDArray w = model.weights().get(name);
        if (w == null) {
            throw new IllegalStateException("model has no weight " + name);
        }
        return w;
    }

    private static int moduleIndex(String module) {
        int j = MODULES.indexOf(module);
        if (j < 0) {
            throw new IllegalArgumentException("not a Qwen3 linear module: " + module);
        }
        return j;
    }

    private static NDArray linear(NDArray x, NDArray w) {
        return x.getNDArrayInternal().linear(x, w, null).singletonOrThrow();
    }

    /** Moves a temporary that an op on a long-lived array created (in that array's manager) to m. */
    private static NDArray own(NDArray temp, NDManager m) {
        temp.attach(m);
        return temp;
    }

    @Override
    public void close() {
        if (model.adapter() == this) {
            model.attach(null);
        }
        manager.close();
    }
}
