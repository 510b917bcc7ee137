package io.tailguard.actors.cli;

import io.tailguard.model.io.Manifest;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;

/**
 * Where a --checkpoint argument points. A directory is itself; the literal word {@code default},
 * when no such directory exists, is the embedded default: the checkpoint that
 * {@link PretrainRecipe#embeddedDefault()} trains, cached under
 * {@code $TAILGUARD_CACHE/default-<recipe hash>/} (else {@code ~/.cache/tailguard/...}). The first
 * use trains and writes it (a few minutes, progress on stderr); later uses load it. The recipe hash
 * in the name means a changed recipe trains a new default instead of reusing a stale one.
 */
public final class Checkpoints {
    public static final String DEFAULT = "default";

    private Checkpoints() {
    }

    /** The checkpoint directory {@code arg} names (training the embedded default on first use). */
    public static Path resolve(Path arg) {
        return resolve(arg, cacheRoot(System.getenv(), System.getProperty("user.home")), PretrainRecipe.embeddedDefault());
    }

    static Path resolve(Path arg, Path cacheRoot, PretrainRecipe recipe) {
        if (arg == null || !arg.toString().equals(DEFAULT) || Files.exists(arg)) {
            return arg;
        }
        return ensure(cacheRoot, recipe);
    }

    /** $TAILGUARD_CACHE if set (and not blank), else ~/.cache/tailguard. */
    static Path cacheRoot(Map<String, String> env, String userHome) {
        String c = env.get("TAILGUARD_CACHE");
        if (c != null && !c.isBlank()) {
            return Path.of(c);
        }
        return Path.of(userHome, ".cache", "tailguard");
    }

    static Path defaultDir(Path cacheRoot, PretrainRecipe recipe) {
        return cacheRoot.resolve("default-" + recipe.hash());
    }

    /**
     * The cached default, trained and written first if missing. A file lock serialises processes
     * that start at once, so only one trains; the checkpoint write itself is atomic, so a killed
     * run leaves nothing that looks complete.
     */
    static Path ensure(Path cacheRoot, PretrainRecipe recipe) {
        Path dir = defaultDir(cacheRoot, recipe);
        if (complete(dir)) {
            return dir;
        }
        try {
            Files.createDirectories(cacheRoot);
            try (FileChannel ch = FileChannel.open(cacheRoot.resolve(dir.getFileName() + ".lock"),
                    StandardOpenOption.CREATE, StandardOpenOption.WRITE);
                 FileLock ignored = ch.lock()) {
                if (complete(dir)) {
                    return dir;
                }
                System.err.printf("tailguard: training the embedded default (%s at context %d, at most %d steps; once) into %s%n",
                        recipe.task(), recipe.context(), recipe.steps(), dir);
                try (Pretraining.Trained trained = PretrainCommand.train(recipe, io.tailguard.model.Devices.parse("cpu"))) {
                    Pretraining.write(dir, recipe, trained);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(cacheRoot + ": cannot write the embedded default: " + e.getMessage(), e);
        }
        return dir;
    }

    private static boolean complete(Path dir) {
        return Files.isRegularFile(dir.resolve(Manifest.FILE_NAME));
    }
}
