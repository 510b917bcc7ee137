package io.tailguard.bench;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.tailguard.actors.cli.BadInput;
import io.tailguard.model.ModelConfig;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PeerFiguresTest {
    private static final JsonObject EAGER = JsonParser.parseString("{\"torch_version\": \"2.13.0+cpu\"}").getAsJsonObject();

    private static JsonObject transformers(double dynamic, double statik, String best, double prefill) {
        return JsonParser.parseString("{\"tokens_per_s\": " + Math.max(dynamic, statik) + ", \"prefill_tokens_per_s\": "
                + prefill + ", \"cache\": \"" + best + "\", \"runs\": {\"dynamic\": {\"tokens_per_s\": " + dynamic
                + ", \"steps\": 7}, \"static\": {\"tokens_per_s\": " + statik + ", \"steps\": 5}}, \"new_tokens\": 8,"
                + " \"max_decode_seconds\": 60.0, \"transformers_version\": \"5.18.0\"}").getAsJsonObject();
    }

    @Test
    void theEagerPeerIsTheOneToBeatWhenItIsFaster() {
        // Tailguard 30 tokens/s, prefill 120; eager 20 (prefill 50); transformers 2.1 dynamic, 2.5 static (prefill 40).
        Map<String, Object> j = PeerFigures.decode(30, 120, 20.0, 50.0, EAGER, transformers(2.1, 2.5, "static", 40));
        assertEquals("pytorch", j.get("peer"));
        assertEquals(20.0, j.get("peer_tokens_per_s"));
        assertEquals(1.5, j.get("vs_peer"));             // 30 / 20
        assertEquals(1.5, j.get("vs_pytorch"));
        assertEquals(12.0, j.get("vs_transformers"));    // 30 / 2.5
        assertEquals(3.0, j.get("prefill_vs_transformers")); // 120 / 40
        assertEquals(50.0, j.get("pytorch_prefill_tokens_per_s"));
        assertEquals("static", j.get("transformers_cache"));
        assertEquals(2.1, j.get("transformers_dynamic_tokens_per_s"));
        assertEquals(2.5, j.get("transformers_static_tokens_per_s"));
        assertEquals(5, j.get("transformers_decode_steps")); // the static run's steps
        assertEquals(8, j.get("transformers_new_tokens"));
        assertEquals("2.13.0+cpu", j.get("pytorch_version"));
    }

    @Test
    void transformersIsThePeerWhenFasterOrAlone() {
        Map<String, Object> j = PeerFigures.decode(30, 120, 20.0, 50.0, EAGER, transformers(24, 12, "dynamic", 40));
        assertEquals("transformers", j.get("peer"));
        assertEquals(1.25, j.get("vs_peer"));            // 30 / 24
        assertEquals(7, j.get("transformers_decode_steps"));
        Map<String, Object> alone = PeerFigures.decode(30, 120, null, null, null, transformers(24, 12, "dynamic", 40));
        assertEquals("transformers", alone.get("peer"));
        assertFalse(alone.containsKey("vs_pytorch"));
        assertTrue(PeerFigures.decode(30, 120, null, null, null, null).isEmpty());
    }

    @Test
    void aRatioOverNothingIsNullNotInfinite() {
        assertNull(PeerFigures.ratio(3, 0));
        assertEquals(0.333, PeerFigures.ratio(1, 3));
    }

    @Test
    void qwen3ShapesAreThePublishedOnes() {
        ModelConfig c = ModelSource.presetConfig("qwen3-0.6b");
        assertEquals(28, c.numLayers());
        assertEquals(1024, c.hiddenSize());
        assertEquals(3072, c.intermediateSize());
        assertEquals(16, c.numHeads());
        assertEquals(8, c.numKvHeads());
        assertEquals(128, c.headDim());
        assertEquals(151_936, c.vocabSize());
        assertTrue(c.tieWordEmbeddings());
        // By hand: per layer q 1024x2048, k and v 1024x1024, o 2048x1024, q/k norms 128 each,
        // MLP 3 x 1024x3072, two norms of 1024 = 15,730,944; x 28 = 440,466,432 (Qwen3-0.6B's
        // "0.44B non-embedding"), + embedding 151,936 x 1024 = 155,582,464, + final norm 1024.
        assertEquals(596_049_920L, c.parameterCount());
        BadInput e = assertThrows(BadInput.class, () -> ModelSource.presetConfig("qwen3-7b"));
        assertTrue(e.getMessage().startsWith("--preset"), e.getMessage());
    }
}
