package io.tailguard.cli;

import picocli.CommandLine.Option;

/** Options every command takes. */
public class Common {
    @Option(names = "--json", description = "Print one JSON object as the last line of stdout.")
    public boolean json;

    @Option(names = "--verbose", description = "Print stack traces of errors.")
    public boolean verbose;

    @Option(names = "--device", defaultValue = "cpu", description = "cpu or gpu:N (default: ${DEFAULT-VALUE}).")
    public String device;
}
