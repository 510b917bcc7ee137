package io.tailguard.recipes;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A default trained in stages: each stage cached under its own hash, the later one from the earlier's weights. */
class EmbeddedDefaultTest {
    @TempDir
    Path cache;

    @Test
    void aSecondStageTrainsFromTheFirstStagesCachedWeights() throws Exception {
        PretrainRecipe first = PretrainRecipe.of("kv-recall", "tiny", 64, 2, 2, 1e-3, 3, 0);
        // a rate so small that two steps leave the weights where they started: the second stage's
        // checkpoint is then the first's weights, which a random initialisation (seed 4) is not
        PretrainRecipe second = PretrainRecipe.of("kv-recall", "tiny", 64, 2, 2, 1e-12, 4, 0).continuing(first);
        List<String> trained = new ArrayList<>();
        EmbeddedDefault.Listener listener = new EmbeddedDefault.Listener() {
            @Override
            public void training(PretrainRecipe recipe, Path dir) {
                trained.add(recipe.hash());
            }

            @Override
            public void step(int step, int steps, double loss) {
            }
        };
        Path dir = EmbeddedDefault.ensure(cache, second, listener);
        assertEquals(EmbeddedDefault.dir(cache, second), dir);
        assertEquals(List.of(first.hash(), second.hash()), trained, "the first stage, then the second");

        Path firstDir = EmbeddedDefault.dir(cache, first);
        String info = Files.readString(dir.resolve("pretrain.json"));
        assertTrue(info.contains("\"from\":\"" + first.hash() + "\""), info);
        assertTrue(info.contains("\"init\":\"" + firstDir.toAbsolutePath().normalize() + "\""), info);

        Map<String, float[]> a = Pretraining.initWeights(firstDir, first);
        Map<String, float[]> b = Pretraining.initWeights(dir, second);
        Map<String, float[]> fresh = InitialModel.weights(InitialModel.config("tiny"), 4);
        assertEquals(a.keySet(), b.keySet());
        double fromFirst = 0;
        double fromFresh = 0;
        for (String k : a.keySet()) {
            fromFirst = Math.max(fromFirst, maxDiff(a.get(k), b.get(k)));
            fromFresh = Math.max(fromFresh, maxDiff(fresh.get(k), b.get(k)));
        }
        assertTrue(fromFirst < 1e-6, "the second stage starts from the first's weights: " + fromFirst);
        assertTrue(fromFresh > 1e-2, "not from a random initialisation: " + fromFresh);

        trained.clear();
        assertEquals(dir, EmbeddedDefault.ensure(cache, second, listener));
        assertEquals(List.of(), trained, "both stages cached: nothing trains again");
    }

    private static double maxDiff(float[] x, float[] y) {
        double m = 0;
        for (int i = 0; i < x.length; i++) {
            m = Math.max(m, Math.abs(x[i] - y[i]));
        }
        return m;
    }
}
