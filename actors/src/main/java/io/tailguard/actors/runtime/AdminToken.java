package io.tailguard.actors.runtime;

import com.typesafe.config.Config;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The admin endpoint's token, read the same way by the node that serves it and by `tune` and
 * `status`: the first line of {@code tailguard.admin.token-file} when that is set (a mounted
 * Secret, a file only its owner reads), else {@code tailguard.admin.token} (whose default is
 * {@code $TAILGUARD_ADMIN_TOKEN}). Neither way puts the token on a command line, where every user
 * of the machine can read it.
 */
public final class AdminToken {
    /** Enough for any generated token; a larger file is not a token file. */
    private static final long MAX_BYTES = 4096;

    private AdminToken() {}

    /** The token, or "" for none. */
    public static String of(Config c) {
        String file = c.hasPath("tailguard.admin.token-file") ? c.getString("tailguard.admin.token-file") : "";
        if (file.isBlank()) {
            return c.hasPath("tailguard.admin.token") ? c.getString("tailguard.admin.token") : "";
        }
        return fromFile("tailguard.admin.token-file", Path.of(file));
    }

    /** The first line of {@code file}, stripped; {@code what} names the key or flag in the one-line error. */
    public static String fromFile(String what, Path file) {
        try {
            if (!Files.isRegularFile(file)) {
                throw new IllegalArgumentException(what + ": " + file + ": no such file");
            }
            if (Files.size(file) > MAX_BYTES) {
                throw new IllegalArgumentException(what + ": " + file + ": larger than " + MAX_BYTES + " bytes, not a token file");
            }
            String text = new String(Files.readAllBytes(file), StandardCharsets.UTF_8).strip();
            String token = text.lines().findFirst().orElse("").strip();
            if (token.isEmpty()) {
                throw new IllegalArgumentException(what + ": " + file + ": empty (expected the token on its first line)");
            }
            return token;
        } catch (IOException e) {
            throw new IllegalArgumentException(what + ": " + file + ": cannot read: " + e.getMessage(), e);
        }
    }
}
