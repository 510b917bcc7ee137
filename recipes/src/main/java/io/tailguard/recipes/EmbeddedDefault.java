package io.tailguard.recipes;

import io.tailguard.model.Devices;
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
 * The embedded default: the checkpoint that {@link PretrainRecipe#embeddedDefault()} trains, cached
 * under {@code <cache root>/default-<recipe hash>/}. The first use trains and writes it (about 9
 * minutes on two CPU cores); later uses load it. The recipe hash in the name means a changed recipe trains
 * a new default instead of reusing a stale one. A recipe that continues another ({@link
 * PretrainRecipe#from}) starts from that one's checkpoint, cached the same way under its own hash.
 */
public final class EmbeddedDefault {

    /** Progress of a training run (none when the default is cached already). */
    public interface Listener extends Pretraining.Listener {
        /** Called once, before training the recipe into {@code dir}. */
        default void training(PretrainRecipe recipe, Path dir) {
        }
    }

    private EmbeddedDefault() {
    }

    /** $TAILGUARD_CACHE if set (and not blank), else ~/.cache/tailguard. */
    public static Path cacheRoot(Map<String, String> env, String userHome) {
        String c = env.get("TAILGUARD_CACHE");
        if (c != null && !c.isBlank()) {
            return Path.of(c);
        }
        return Path.of(userHome, ".cache", "tailguard");
    }

    /** Where the recipe's checkpoint is cached. */
    public static Path dir(Path cacheRoot, PretrainRecipe recipe) {
        return cacheRoot.resolve("default-" + recipe.hash());
    }

    /**
     * The cached checkpoint of {@code recipe}, trained (on the CPU) and written first if missing. A
     * file lock serialises processes that start at once, so only one trains; the checkpoint write
     * itself is atomic, so a killed run leaves nothing that looks complete.
     */
    public static Path ensure(Path cacheRoot, PretrainRecipe recipe, Listener listener) {
        Path dir = dir(cacheRoot, recipe);
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
                Path before = recipe.from() == null ? null : ensure(cacheRoot, recipe.from(), listener);
                Map<String, float[]> init = before == null ? null : Pretraining.initWeights(before, recipe);
                listener.training(recipe, dir);
                try (Pretraining.Trained trained = Pretraining.train(recipe, init, Devices.parse("cpu"), listener)) {
                    Pretraining.write(dir, recipe, before, trained);
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
