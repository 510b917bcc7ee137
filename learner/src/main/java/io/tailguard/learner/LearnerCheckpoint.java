package io.tailguard.learner;

import ai.djl.ndarray.NDArray;
import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonParseException;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.io.CheckpointDir;
import io.tailguard.model.io.CheckpointException;
import io.tailguard.model.io.DType;
import io.tailguard.model.io.HostTensor;
import io.tailguard.model.io.SafeTensors;
import io.tailguard.model.lora.LoraAdapter;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A learner checkpoint (docs/architecture.md, "Files on disk"): the model checkpoint plus optimizer.safetensors
 * (AdamW's first and second moments by parameter name, as {@code m/NAME} and {@code v/NAME}) and
 * trainer-state.json (step, optimizer step count, data cursor, seed). Written atomically with the
 * rest of the directory. Randomness in training is counter-based (each step derives its seeds
 * from the run seed and the step), so seed + step is the whole RNG state, and resuming reproduces
 * the uninterrupted run exactly.
 *
 * <p>With a DistillSparse LoRA, the directory also holds the adapter (the folder {@code lora}, as
 * PEFT's save_pretrained writes one) and its own AdamW state in {@value #LORA_OPTIMIZER}: {@code m/NAME}
 * and {@code v/NAME} by PEFT tensor name, the optimizer's step count in the metadata key
 * {@value #STEPS_KEY}. Checkpoints written before that file existed still load; only resuming the
 * LoRA's training needs it.
 */
public final class LearnerCheckpoint {
    public static final String OPTIMIZER = "optimizer.safetensors";
    public static final String STATE = "trainer-state.json";
    public static final String LORA_OPTIMIZER = "lora-optimizer.safetensors";
    static final String STEPS_KEY = "steps";
    private static final Gson GSON = new GsonBuilder().setPrettyPrinting().create();

    /**
     * Where training stands: the next step is step + 1, reading data from dataCursor on. {@code
     * options} are the run's settings that shape its steps (name → value, e.g. {@code --lr → 1.0E-4}),
     * so a resume can refuse different ones; empty when the trainer records none (and in checkpoints
     * written before it did).
     */
    public record TrainerState(long step, long optimizerSteps, long dataCursor, long seed, String kind,
                               Map<String, String> options) {
        public TrainerState {
            options = options == null ? Map.of() : java.util.Collections.unmodifiableMap(new java.util.TreeMap<>(options));
        }

        public TrainerState(long step, long optimizerSteps, long dataCursor, long seed, String kind) {
            this(step, optimizerSteps, dataCursor, seed, kind, Map.of());
        }
    }

    private LearnerCheckpoint() {}

    public static void save(Path dir, Qwen3Model model, AdamW optimizer, TrainerState state, String tokenizerJson,
                            long version, String parent) {
        save(dir, model, optimizer, state, tokenizerJson, version, parent, null);
    }

    /**
     * As above, with the sparse actor's LoRA in the folder {@code lora} (adapter_model.safetensors,
     * adapter_config.json), written in the same atomic step; null writes none.
     */
    public static void save(Path dir, Qwen3Model model, AdamW optimizer, TrainerState state, String tokenizerJson,
                            long version, String parent, LoraAdapter lora) {
        save(dir, model, optimizer, state, tokenizerJson, version, parent, lora, null);
    }

    /**
     * As above, and with {@code loraOptimizer} (the LoRA's own AdamW, e.g. {@link DistillSparse#optimizer()})
     * its moments and step count in {@value #LORA_OPTIMIZER}, all in the same atomic step.
     */
    public static void save(Path dir, Qwen3Model model, AdamW optimizer, TrainerState state, String tokenizerJson,
                            long version, String parent, LoraAdapter lora, AdamW loraOptimizer) {
        save(dir, model, optimizer, state, tokenizerJson, version, parent, lora, loraOptimizer, Map.of());
    }

    /**
     * As above, with the caller's own files (plain names, none of this class's) in the same atomic
     * step, so they describe exactly these weights (the asynchronous learner's ledger of trained groups).
     */
    public static void save(Path dir, Qwen3Model model, AdamW optimizer, TrainerState state, String tokenizerJson,
                            long version, String parent, LoraAdapter lora, AdamW loraOptimizer, Map<String, byte[]> callerFiles) {
        if (loraOptimizer != null && lora == null) {
            throw new IllegalArgumentException("a LoRA optimizer is saved with its LoRA");
        }
        Map<String, byte[]> extra = new LinkedHashMap<>();
        extra.put(OPTIMIZER, safetensorsBytes(moments(optimizer), Map.of()));
        extra.put(STATE, GSON.toJson(state).getBytes(StandardCharsets.UTF_8));
        if (lora != null) {
            extra.putAll(lora.files());
        }
        if (loraOptimizer != null) {
            extra.put(LORA_OPTIMIZER, safetensorsBytes(moments(loraOptimizer),
                    Map.of(STEPS_KEY, Long.toString(loraOptimizer.steps()))));
        }
        for (Map.Entry<String, byte[]> f : callerFiles.entrySet()) {
            if (extra.putIfAbsent(f.getKey(), f.getValue()) != null) {
                throw new IllegalArgumentException("learner checkpoint file " + f.getKey() + ": written by the checkpoint itself");
            }
        }
        CheckpointDir.write(dir, model.config(), ModelLoader.hostTensors(model.config(), model.hostWeights()), DType.F32,
                tokenizerJson, extra, version, parent, state.step(), 0);
    }

    /** Loads the moments and step count into the optimizer; returns the trainer state. */
    public static TrainerState restore(Path dir, AdamW optimizer) {
        Path optFile = dir.resolve(OPTIMIZER);
        if (!Files.isRegularFile(dir.resolve(STATE)) || !Files.isRegularFile(optFile)) {
            throw new CheckpointException(dir + ": not a learner checkpoint (needs " + STATE + " and " + OPTIMIZER + ")");
        }
        TrainerState state = state(dir);
        Map<String, HostTensor> t = SafeTensors.read(optFile);
        load(optFile, "m/", optimizer.firstMoments(), t);
        load(optFile, "v/", optimizer.secondMoments(), t);
        optimizer.setSteps(state.optimizerSteps());
        return state;
    }

    /** Whether {@code dir} holds a learner checkpoint (its trainer state and optimizer moments). */
    public static boolean exists(Path dir) {
        return Files.isRegularFile(dir.resolve(STATE)) && Files.isRegularFile(dir.resolve(OPTIMIZER));
    }

    /** The trainer state alone (to check a checkpoint before loading anything). */
    public static TrainerState state(Path dir) {
        Path stateFile = dir.resolve(STATE);
        TrainerState state;
        try {
            state = GSON.fromJson(Files.readString(stateFile), TrainerState.class);
        } catch (java.nio.file.NoSuchFileException e) {
            throw CheckpointException.of(stateFile, "file does not exist (not a learner checkpoint)");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (JsonParseException e) {
            throw CheckpointException.of(stateFile, "not valid JSON");
        }
        if (state == null) {
            throw CheckpointException.of(stateFile, "empty");
        }
        return state;
    }

    /**
     * Resuming DistillSparse: the LoRA's A and B from the checkpoint's adapter into {@code lora} in
     * place (its rank, alpha and targets must match {@code adapter_config.json}) and, unless
     * {@code loraOptimizer} is null, that optimizer's moments and step count from {@value #LORA_OPTIMIZER}.
     * A missing file, tensor or step count, or a misshapen or stray tensor, fails with a
     * {@link CheckpointException} naming the file and the tensor or key.
     */
    public static void restoreLora(Path dir, LoraAdapter lora, AdamW loraOptimizer) {
        if (!io.tailguard.model.lora.LoraFiles.inCheckpoint(dir)) {
            throw CheckpointException.of(dir.resolve(io.tailguard.model.lora.LoraFiles.DIR), "does not exist (this checkpoint has no LoRA)");
        }
        lora.restore(dir);
        if (loraOptimizer == null) {
            return;
        }
        Path file = dir.resolve(LORA_OPTIMIZER);
        if (!Files.isRegularFile(file)) {
            throw CheckpointException.of(file, "file does not exist (the LoRA's optimizer state was not saved; "
                    + "checkpoints written before it was cannot resume DistillSparse)");
        }
        Map<String, HostTensor> t = SafeTensors.read(file);
        load(file, "m/", loraOptimizer.firstMoments(), t);
        load(file, "v/", loraOptimizer.secondMoments(), t);
        for (String name : t.keySet()) {
            String param = name.startsWith("m/") || name.startsWith("v/") ? name.substring(2) : name;
            if (!loraOptimizer.firstMoments().containsKey(param)) {
                throw CheckpointException.of(file, "tensor " + name, "belongs to no parameter of this LoRA");
            }
        }
        String steps = SafeTensors.metadata(file).get(STEPS_KEY);
        long n;
        try {
            n = Long.parseLong(String.valueOf(steps));
        } catch (NumberFormatException e) {
            throw CheckpointException.of(file, "metadata key " + STEPS_KEY, "must be the optimizer's step count, got " + steps);
        }
        if (n < 0) {
            throw CheckpointException.of(file, "metadata key " + STEPS_KEY, "must be >= 0, got " + n);
        }
        loraOptimizer.setSteps(n);
    }

    private static Map<String, HostTensor> moments(AdamW optimizer) {
        Map<String, HostTensor> moments = new LinkedHashMap<>();
        for (Map.Entry<String, NDArray> e : optimizer.firstMoments().entrySet()) {
            moments.put("m/" + e.getKey(), host(e.getValue()));
        }
        for (Map.Entry<String, NDArray> e : optimizer.secondMoments().entrySet()) {
            moments.put("v/" + e.getKey(), host(e.getValue()));
        }
        return moments;
    }

    private static void load(Path file, String prefix, Map<String, NDArray> into, Map<String, HostTensor> from) {
        for (Map.Entry<String, NDArray> e : into.entrySet()) {
            HostTensor h = from.get(prefix + e.getKey());
            if (h == null) {
                throw CheckpointException.of(file, "tensor " + prefix + e.getKey(), "missing");
            }
            long[] want = e.getValue().getShape().getShape();
            if (!java.util.Arrays.equals(h.shape(), want)) {
                throw CheckpointException.of(file, "tensor " + prefix + e.getKey(), "has shape "
                        + java.util.Arrays.toString(h.shape()) + ", expected " + java.util.Arrays.toString(want));
            }
            float[] v;
            try {
                v = h.toFloats();
            } catch (RuntimeException ex) {
                throw CheckpointException.of(file, "tensor " + prefix + e.getKey(), ex.getMessage());
            }
            e.getValue().set(v);
        }
    }

    private static HostTensor host(NDArray a) {
        return HostTensor.ofFloats(a.getShape().getShape(), a.toFloatArray(), DType.F32);
    }

    private static byte[] safetensorsBytes(Map<String, HostTensor> tensors, Map<String, String> metadata) {
        try {
            Path tmp = Files.createTempFile("tailguard-optimizer-", ".safetensors");
            try {
                SafeTensors.write(tmp, tensors, metadata);
                return Files.readAllBytes(tmp);
            } finally {
                Files.deleteIfExists(tmp);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
