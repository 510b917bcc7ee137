package io.tailguard.bench;

import io.tailguard.actors.cli.CommandProvider;

/** Registers {@code tailguard bench} with the CLI. */
public final class BenchProvider implements CommandProvider {
    @Override
    public Object command() {
        return new BenchCommand();
    }
}
