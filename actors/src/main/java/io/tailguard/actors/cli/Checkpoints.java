package io.tailguard.actors.cli;

import io.tailguard.recipes.EmbeddedDefault;
import io.tailguard.recipes.PretrainRecipe;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Where a --checkpoint argument points. A directory is itself; the literal word {@code default},
 * when no such directory exists, is the {@link EmbeddedDefault}, cached under
 * {@code $TAILGUARD_CACHE} (else {@code ~/.cache/tailguard}): trained on first use with its
 * progress on stderr, loaded later.
 */
public final class Checkpoints {
    public static final String DEFAULT = "default";

    private Checkpoints() {
    }

    /** The checkpoint directory {@code arg} names (training the embedded default on first use). */
    public static Path resolve(Path arg) {
        return resolve(arg, EmbeddedDefault.cacheRoot(System.getenv(), System.getProperty("user.home")),
                PretrainRecipe.embeddedDefault());
    }

    /**
     * As {@link #resolve(Path)} for a checkpoint named by configuration key {@code key}: a path that
     * is neither {@code default} nor a directory is bad input naming the key, before any work.
     */
    public static Path resolveSetting(String value, String key) {
        Path arg = Path.of(value);
        if (!value.equals(DEFAULT) && !Files.isDirectory(arg)) {
            throw new BadInput(key + ": " + value + ": no such checkpoint directory");
        }
        return resolve(arg);
    }

    static Path resolve(Path arg, Path cacheRoot, PretrainRecipe recipe) {
        if (arg == null || !arg.toString().equals(DEFAULT) || Files.exists(arg)) {
            return arg;
        }
        PretrainCommand.Bar bar = new PretrainCommand.Bar(recipe, null) {
            @Override
            public void training(PretrainRecipe r, Path dir) {
                stage(r);
                System.err.printf("tailguard: training the embedded default (%s at context %d, at most %d steps%s; once) into %s%n",
                        r.task(), r.context(), r.steps(), r.from() == null ? "" : ", from the stage before", dir);
            }
        };
        try {
            return EmbeddedDefault.ensure(cacheRoot, recipe, bar);
        } finally {
            bar.finish();
        }
    }
}
