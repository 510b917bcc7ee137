package io.tailguard.actors.cli;

import com.typesafe.config.Config;
import io.tailguard.actors.runtime.RunSettings;
import io.tailguard.actors.runtime.TailguardNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;

@Command(name = "node", mixinStandardHelpOptions = true,
        description = "Starts one cluster member with the given roles and runs until it is stopped.")
final class NodeCommand implements Callable<Integer> {
    @Mixin
    Common common;

    @Option(names = "--config", required = true, description = "HOCON configuration (e.g. config/cluster.conf).")
    Path config;

    @Option(names = "--roles", required = true, split = ",", description = "Roles: controller, learner, rollout, compression.")
    List<String> roles;

    @Option(names = "--set", description = "Override one key (repeatable).")
    List<String> sets = new ArrayList<>();

    @Override
    public Integer call() throws Exception {
        Set<String> r = new LinkedHashSet<>(roles);
        for (String role : r) {
            if (!TailguardNode.ROLES.contains(role)) {
                throw new BadInput("--roles: unknown role \"" + role + "\" (known: " + String.join(", ", new java.util.TreeSet<>(TailguardNode.ROLES)) + ")");
            }
        }
        Config c = RunConfig.load(config, sets);
        RunSettings s = RunSettings.parse(c, config.toString(), r);
        if (s.startSchedule().equals(io.tailguard.actors.runtime.RunSettings.CALIBRATE)) {
            throw new BadInput(config + ": tailguard.controller.schedule = calibrate works with `train` only; for a cluster, "
                    + "run `tailguard calibrate` first and name its output file");
        }
        Path start = Checkpoints.resolve(Path.of(s.train().checkpoint()));
        RunSettings.checkModel(s.compression(), io.tailguard.model.io.ConfigJson.read(start.resolve(io.tailguard.model.io.CheckpointDir.CONFIG)));
        try (TailguardNode node = new TailguardNode(c, s, r, start, common.device(), false, null)) {
            System.err.println("node " + node.address() + " roles " + r
                    + (node.metricsPort() > 0 ? " metrics http://" + s.metrics().host() + ":" + node.metricsPort() + "/metrics" : ""));
            node.watch(config);
            String stopped = node.awaitEnd();
            if (stopped != null) {
                throw new RunStopped(stopped);
            }
        }
        return 0;
    }
}
