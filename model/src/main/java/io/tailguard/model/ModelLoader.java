package io.tailguard.model;

import ai.djl.Device;
import io.tailguard.model.io.CheckpointDir;
import io.tailguard.model.io.DType;
import io.tailguard.model.io.HostTensor;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** Checkpoint directory <-> model. Weights compute in float32 whatever their dtype on disk. */
public final class ModelLoader {
    private ModelLoader() {}

    /** Loads and verifies a checkpoint (bad files raise CheckpointException naming file and tensor). */
    public static Qwen3Model load(Path dir, Device device) {
        CheckpointDir.Loaded loaded = CheckpointDir.read(dir);
        Map<String, float[]> weights = new LinkedHashMap<>();
        for (String name : ParameterShapes.of(loaded.config()).keySet()) {
            weights.put(name, loaded.tensors().get(name).toFloats());
        }
        return Qwen3Model.create(loaded.config(), weights, device);
    }

    /** Host tensors of float32 weights, in the shapes of {@link ParameterShapes}. */
    public static Map<String, HostTensor> hostTensors(ModelConfig config, Map<String, float[]> weights) {
        Map<String, HostTensor> out = new LinkedHashMap<>();
        for (Map.Entry<String, long[]> e : ParameterShapes.of(config).entrySet()) {
            out.put(e.getKey(), HostTensor.ofFloats(e.getValue(), weights.get(e.getKey()), DType.F32));
        }
        return out;
    }
}
