package io.tailguard.bench;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.jupiter.api.Test;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LearnerBenchTest {
    @Test
    void printsJsonSideBySideWithTheEagerPeerOnTheSameLoss() {
        System.setProperty("tailguard.home", "..");
        JsonObject j = JsonParser.parseString(DecodeBenchTest.run("bench", "learner", "--preset", "tiny", "--batch", "2",
                "--seq", "16", "--steps", "1", "--json")).getAsJsonObject();
        assertTrue(j.get("tokens_per_s").getAsDouble() > 0);
        // Random weights of std 0.02 give nearly uniform next-token distributions: the mean
        // cross-entropy starts at ln(vocabulary) (4.595 for 99 symbols), whichever implementation
        // computes it; the warm-up step and the timed step on the same batch take it about 0.2 lower.
        double lnVocab = Math.log(io.tailguard.model.tokenizer.CharTokenizer.standard().vocabSize());
        assertEquals(lnVocab, j.get("loss").getAsDouble(), 0.3, j.toString());
        if (PeerScript.torchAvailable()) {
            assertEquals(lnVocab, j.get("pytorch_loss").getAsDouble(), 0.3, j.toString());
            assertTrue(Set.of("adamw_fused", "adamw_foreach").contains(j.get("pytorch_optimizer").getAsString()));
            assertEquals("sdpa", j.get("pytorch_attention").getAsString());
            assertEquals(j.get("tokens_per_s").getAsDouble() / j.get("pytorch_tokens_per_s").getAsDouble(),
                    j.get("vs_pytorch").getAsDouble(), 0.01);
        }
    }
}
