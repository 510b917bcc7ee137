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
 * A learner checkpoint (DESIGN.md "Files on disk"): the model checkpoint plus optimizer.safetensors
 * (AdamW's first and second moments by parameter name, as {@code m/NAME} and {@code v/NAME}) and
 * trainer-state.json (step, optimizer step count, data cursor, seed). Written atomically with the
 * rest of the directory. Randomness in training is counter-based (each step derives its seeds
 * from the run seed and the step), so seed + step is the whole RNG state, and resuming reproduces
 * the uninterrupted run exactly.
 */
public final class LearnerCheckpoint {
    public static final String OPTIMIZER = "optimizer.safetensors";
    public static final String STATE = "trainer-state.json";
    private static final Gson GSON = new GsonBuilder().setPrettyPrinting().create();

    /** Where training stands: the next step is step + 1, reading data from dataCursor on. */
    public record TrainerState(long step, long optimizerSteps, long dataCursor, long seed, String kind) {}

    private LearnerCheckpoint() {}

    public static void save(Path dir, Qwen3Model model, AdamW optimizer, TrainerState state, String tokenizerJson,
                            long version, String parent) {
        save(dir, model, optimizer, state, tokenizerJson, version, parent, null);
    }

    /**
     * As above, with the sparse actor's LoRA beside the weights ({@code lora.safetensors},
     * {@code adapter_config.json}), written in the same atomic step; null writes none.
     */
    public static void save(Path dir, Qwen3Model model, AdamW optimizer, TrainerState state, String tokenizerJson,
                            long version, String parent, LoraAdapter lora) {
        Map<String, HostTensor> moments = new LinkedHashMap<>();
        for (Map.Entry<String, NDArray> e : optimizer.firstMoments().entrySet()) {
            moments.put("m/" + e.getKey(), host(e.getValue()));
        }
        for (Map.Entry<String, NDArray> e : optimizer.secondMoments().entrySet()) {
            moments.put("v/" + e.getKey(), host(e.getValue()));
        }
        Map<String, byte[]> extra = new LinkedHashMap<>();
        extra.put(OPTIMIZER, safetensorsBytes(moments));
        extra.put(STATE, GSON.toJson(state).getBytes(StandardCharsets.UTF_8));
        if (lora != null) {
            extra.putAll(lora.files());
        }
        CheckpointDir.write(dir, model.config(), ModelLoader.hostTensors(model.config(), model.hostWeights()), DType.F32,
                tokenizerJson, extra, version, parent, state.step(), 0);
    }

    /** Loads the moments and step count into the optimizer; returns the trainer state. */
    public static TrainerState restore(Path dir, AdamW optimizer) {
        Path stateFile = dir.resolve(STATE);
        Path optFile = dir.resolve(OPTIMIZER);
        if (!Files.isRegularFile(stateFile) || !Files.isRegularFile(optFile)) {
            throw new CheckpointException(dir + ": not a learner checkpoint (needs " + STATE + " and " + OPTIMIZER + ")");
        }
        TrainerState state;
        try {
            state = GSON.fromJson(Files.readString(stateFile), TrainerState.class);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (JsonParseException e) {
            throw CheckpointException.of(stateFile, "not valid JSON");
        }
        Map<String, HostTensor> t = SafeTensors.read(optFile);
        load(optFile, "m/", optimizer.firstMoments(), t);
        load(optFile, "v/", optimizer.secondMoments(), t);
        optimizer.setSteps(state.optimizerSteps());
        return state;
    }

    private static void load(Path file, String prefix, Map<String, NDArray> into, Map<String, HostTensor> from) {
        for (Map.Entry<String, NDArray> e : into.entrySet()) {
            HostTensor h = from.get(prefix + e.getKey());
            if (h == null) {
                throw CheckpointException.of(file, "tensor " + prefix + e.getKey(), "missing");
            }
            if (h.numel() != e.getValue().size()) {
                throw CheckpointException.of(file, "tensor " + prefix + e.getKey(), "has " + h.numel() + " values, expected "
                        + e.getValue().size());
            }
            e.getValue().set(h.toFloats());
        }
    }

    private static HostTensor host(NDArray a) {
        return HostTensor.ofFloats(a.getShape().getShape(), a.toFloatArray(), DType.F32);
    }

    private static byte[] safetensorsBytes(Map<String, HostTensor> tensors) {
        try {
            Path tmp = Files.createTempFile("tailguard-optimizer-", ".safetensors");
            try {
                SafeTensors.write(tmp, tensors, Map.of());
                return Files.readAllBytes(tmp);
            } finally {
                Files.deleteIfExists(tmp);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
