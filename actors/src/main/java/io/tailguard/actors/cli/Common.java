package io.tailguard.actors.cli;

import picocli.CommandLine.Option;

/** Options every command takes. */
public class Common {
    @Option(names = "--json", description = "Print one JSON object as the last line of stdout.")
    public boolean json;

    @Option(names = "--verbose", description = "Print stack traces of errors.")
    public boolean verbose;

    @Option(names = "--device", description = "cpu or gpu:N (default: tailguard.model.device of the configuration, cpu).")
    public String device;

    /** The device: --device, else the configuration's tailguard.model.device. */
    public String device() {
        return device != null ? device : Configuration.load().getString("tailguard.model.device");
    }
}
