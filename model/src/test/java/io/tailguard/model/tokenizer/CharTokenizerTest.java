package io.tailguard.model.tokenizer;

import io.tailguard.model.io.CheckpointException;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CharTokenizerTest {

    private final CharTokenizer t = CharTokenizer.standard();

    @Test
    void hasNinetyNineTokensWithSpecialsFirst() {
        assertEquals(99, t.vocabSize());
        assertEquals(1, t.bosId());
        assertEquals(2, t.eosId());
        assertArrayEquals(new int[] {3}, t.encode("\n"));
        assertArrayEquals(new int[] {4}, t.encode(" "));
        assertArrayEquals(new int[] {4 + ('A' - 32)}, t.encode("A"));
        assertArrayEquals(new int[] {98}, t.encode("~"));
    }

    @Test
    void encodeDecodeRoundTripsAndDecodeDropsSpecials() {
        String s = "12+30=42\nsort: b a c ~!";
        assertEquals(s, t.decode(t.encode(s)));
        assertEquals("hi", t.decode(new int[] {1, 4 + ('h' - 32), 4 + ('i' - 32), 2, 0}));
        assertThrows(IllegalArgumentException.class, () -> t.decode(new int[] {99}));
    }

    @Test
    void unknownCharacterIsNamedWithItsPosition() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.encode("ab\tc"));
        assertTrue(e.getMessage().contains("U+0009") && e.getMessage().contains("position 2"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> t.encode("café"));
        assertTrue(e.getMessage().contains("U+00E9") && e.getMessage().contains("position 3"), e.getMessage());
    }

    @Test
    void jsonDescribesItselfAndReadsBack() {
        String json = t.toJson();
        assertTrue(json.contains("\"type\": \"tailguard-char\""), json);
        assertTrue(json.contains("\"version\": 1"), json);
        assertTrue(json.contains("\"specials\": ["), json);
        assertTrue(json.contains("\"alphabet\": \"\\n !\\\"#$%&'()*+,-./0123456789"), json);
        assertSame(t, CharTokenizer.fromJson(json, "tokenizer.json"));
    }

    @Test
    void wrongDescriptionIsRefusedNamingTheKey() {
        CheckpointException e = assertThrows(CheckpointException.class,
                () -> CharTokenizer.fromJson(t.toJson().replace("\"version\": 1", "\"version\": 2"), "/c/tokenizer.json"));
        assertTrue(e.getMessage().contains("/c/tokenizer.json") && e.getMessage().contains("version"), e.getMessage());
        e = assertThrows(CheckpointException.class,
                () -> CharTokenizer.fromJson("{\"type\":\"tailguard-char\",\"version\":1,"
                        + "\"specials\":[\"<pad>\",\"<bos>\",\"<eos>\"],\"alphabet\":\"aba\"}", "/c/tokenizer.json"));
        assertTrue(e.getMessage().contains("alphabet"), e.getMessage());
    }
}
