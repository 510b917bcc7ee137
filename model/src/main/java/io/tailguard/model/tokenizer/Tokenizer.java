package io.tailguard.model.tokenizer;

/**
 * Text to token ids and back. {@link #encode} adds no special tokens (callers place bos/eos
 * themselves); {@link #decode} drops special tokens, so generated answers decode to plain text.
 */
public interface Tokenizer {
    int[] encode(String text);

    String decode(int[] ids);

    int vocabSize();

    /** -1 when the tokenizer has none. */
    int eosId();

    /** -1 when the tokenizer has none. */
    int bosId();

    /** The text stored as the checkpoint's tokenizer.json. */
    String toJson();
}
