package io.tailguard.bench;

import picocli.CommandLine.Command;

@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Benchmarks; each prints JSON and compares modes side by side in one run.",
        subcommands = {DecodeBench.class, RolloutBench.class, MachineBench.class, LearnerBench.class, RuntimeBench.class})
final class BenchCommand {}
