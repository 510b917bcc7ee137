package io.tailguard.actors.cli;

import com.typesafe.config.Config;
import io.tailguard.actors.runtime.ConfigKeys;

/**
 * The keys a user may set ({@link ConfigKeys}: those of every reference.conf on the class path,
 * checked on one layer the user wrote, a configuration file or a `--set` pair, before it is merged),
 * as bad input (exit 2).
 */
final class KnownKeys {
    private KnownKeys() {
    }

    /**
     * Throws {@link BadInput} naming the first unknown key (in key order) and where it came from:
     * {@code where} (a `--set` pair), or, when {@code file}, the file and line the key was read from
     * (an included file is named as itself).
     */
    static void check(Config layer, String where, boolean file) {
        try {
            ConfigKeys.check(layer, where, file);
        } catch (IllegalArgumentException e) {
            throw new BadInput(e.getMessage());
        }
    }
}
