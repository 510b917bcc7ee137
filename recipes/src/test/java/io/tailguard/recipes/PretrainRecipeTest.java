package io.tailguard.recipes;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The recipe's hash (it names the cached embedded default), its validation, and where the default is cached. */
class PretrainRecipeTest {

    /**
     * The hashes were computed by the code before the recipe moved out of the command line (its JSON
     * then came from the CLI's writer): a changed hash would silently retrain every user's cached
     * default, so any change here must be deliberate (and bump {@link PretrainRecipe#VERSION}).
     */
    @Test
    void theHashIsTheOneTheCachedDefaultsAreNamedBy() {
        assertEquals("18aee1ad00cc", PretrainRecipe.embeddedDefault().hash());
        assertEquals("4ece0bf8c4ea", PretrainRecipe.of("pointer-chase", "small", 512, 300, 32, 3e-4, 11, 0.5).hash());
        assertEquals(Path.of("/c/default-18aee1ad00cc"), EmbeddedDefault.dir(Path.of("/c"), PretrainRecipe.embeddedDefault()));
    }

    @Test
    void theRecipeSettlesWarmUpAndCurriculumFromTheBudget() {
        PretrainRecipe r = PretrainRecipe.of("pointer-chase", "small", 512, 300, 32, 3e-4, 11, 0.5);
        assertEquals(15, r.warmupSteps(), "steps / 20");
        assertEquals(64, r.startContext());
        assertEquals(30, PretrainRecipe.of("kv-recall", "tiny", 256, 5000, 32, 1e-3, 0).warmupSteps(), "at most 30");
        assertEquals(1, PretrainRecipe.of("kv-recall", "tiny", 256, 10, 32, 1e-3, 0).warmupSteps(), "at least 1");
        assertEquals(3e-4, PretrainRecipe.defaultLr("small"));
        assertEquals(1e-3, PretrainRecipe.defaultLr("tiny"));
    }

    @Test
    void badValuesNameTheParameterNotAFlag() {
        assertMessageStarts("steps", () -> PretrainRecipe.of("kv-recall", "tiny", 256, 0, 32, 1e-3, 0));
        assertMessageStarts("batch", () -> PretrainRecipe.of("kv-recall", "tiny", 256, 10, 0, 1e-3, 0));
        assertMessageStarts("lr", () -> PretrainRecipe.of("kv-recall", "tiny", 256, 10, 32, Double.NaN, 0));
        assertMessageStarts("target", () -> PretrainRecipe.of("kv-recall", "tiny", 256, 10, 32, 1e-3, 0, 1.5));
        assertMessageStarts("task", () -> Pretraining.validate(PretrainRecipe.of("no-such-task", "tiny", 256, 10, 32, 1e-3, 0)));
        assertMessageStarts("context", () -> Pretraining.validate(PretrainRecipe.of("kv-recall", "tiny", 16, 10, 32, 1e-3, 0)));
    }

    @Test
    void theCacheHonoursTailguardCache() {
        assertEquals(Path.of("/x/cache"), EmbeddedDefault.cacheRoot(Map.of("TAILGUARD_CACHE", "/x/cache"), "/home/u"));
        assertEquals(Path.of("/home/u/.cache/tailguard"), EmbeddedDefault.cacheRoot(Map.of("TAILGUARD_CACHE", " "), "/home/u"));
        assertEquals(Path.of("/home/u/.cache/tailguard"), EmbeddedDefault.cacheRoot(Map.of(), "/home/u"));
    }

    @Test
    void theContextRampsOnceTheLookupIsMastered() {
        PretrainRecipe r = PretrainRecipe.of("kv-recall", "tiny", 256, 700, 32, 1e-3, 0, 0.3);
        assertEquals(64, Pretraining.contextCeiling(r, -1, 500), "not mastered yet: the start context");
        assertEquals(64, Pretraining.contextCeiling(r, 300, 300));
        assertEquals(160, Pretraining.contextCeiling(r, 300, 325), "half way through the 50-step ramp: 64 + 192 / 2");
        assertEquals(256, Pretraining.contextCeiling(r, 300, 350));
        assertEquals(256, Pretraining.contextCeiling(r, 300, 650));
    }

    private static void assertMessageStarts(String name, org.junit.jupiter.api.function.Executable e) {
        IllegalArgumentException x = assertThrows(IllegalArgumentException.class, e);
        assertTrue(x.getMessage().startsWith(name + " ") || x.getMessage().startsWith(name + ":"), x.getMessage());
    }
}
