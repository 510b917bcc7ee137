package io.tailguard.bench;

import io.tailguard.actors.cli.Common;
import io.tailguard.actors.cli.Json;
import io.tailguard.model.Devices;
import io.tailguard.rollout.sparse.CostModel;
import io.tailguard.rollout.sparse.MachineProbe;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

/** Measures the two machine constants of the cost model once and saves them. */
@Command(name = "machine", mixinStandardHelpOptions = true,
        description = "Measure sustained float32 matmul FLOP/s and memory bandwidth on the tensor engine; save them for the cost model.")
final class MachineBench implements Callable<Integer> {
    @Mixin
    Common common;

    @Option(names = "--out", description = "Where to save (default: $TAILGUARD_MACHINE_FILE, else ~/.cache/tailguard/machine.json).")
    Path out;

    @Option(names = "--seconds", defaultValue = "6", description = "Measuring time (default: ${DEFAULT-VALUE}).")
    int seconds;

    @Override
    public Integer call() throws IOException {
        CostModel.Machine m = MachineProbe.measure(Devices.parse(common.device()), Duration.ofSeconds(seconds));
        Path file = out != null ? out : CostModel.Machine.defaultPath();
        m.save(file);
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("flops_per_second", m.flopsPerSecond());
        r.put("bytes_per_second", m.bytesPerSecond());
        r.put("flops_per_byte", m.flopsPerByte());
        r.put("file", file.toString());
        if (common.json) {
            Json.print(r);
        } else {
            System.out.printf("%.3g FLOP/s, %.3g B/s (saved to %s)%n", m.flopsPerSecond(), m.bytesPerSecond(), file);
        }
        return 0;
    }
}
