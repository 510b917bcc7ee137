package io.tailguard.actors.cli;

import io.tailguard.model.ModelConfig;
import io.tailguard.model.io.DType;
import io.tailguard.recipes.InitialModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "init-model", mixinStandardHelpOptions = true,
        description = "Write a randomly initialised checkpoint of a preset (tiny, small) with the built-in task tokenizer.")
final class InitModelCommand implements Callable<Integer> {
    @Mixin
    Common common;

    @Option(names = "--preset", required = true, description = "tiny (the embedded default, ~1M params) or small (~36M, for benchmarks).")
    String preset;

    @Option(names = "--out", required = true, description = "Checkpoint directory to write (replaced atomically).")
    Path out;

    @Option(names = "--seed", defaultValue = "0", description = "Initialisation seed (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--dtype", defaultValue = "F32", description = "Storage dtype: F32, BF16 or F16 (default: ${DEFAULT-VALUE}).")
    String dtype;

    @Override
    public Integer call() {
        InitialModel.config(preset);   // an unknown preset fails before the dtype is read, as it always has
        DType storeAs = DType.parse(dtype, "--dtype");
        ModelConfig config = InitialModel.write(out, preset, seed, storeAs);
        System.err.printf("wrote %s: preset %s, %,d parameters, %s%n", out, preset, config.parameterCount(), storeAs);
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("checkpoint", out.toString());
        r.put("preset", preset);
        r.put("parameters", config.parameterCount());
        if (common.json) {
            Json.print(r);
        }
        return 0;
    }
}
