package io.tailguard.model.tokenizer;

import com.google.gson.JsonElement;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import io.tailguard.model.io.CheckpointDir;
import io.tailguard.model.io.CheckpointException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/** The tokenizer of a checkpoint directory, chosen by what its tokenizer.json describes. */
public final class Tokenizers {

    private Tokenizers() {
    }

    /** @throws CheckpointException when tokenizer.json is absent or unreadable */
    public static Tokenizer fromCheckpoint(Path dir) {
        Path f = dir.resolve(CheckpointDir.TOKENIZER);
        if (!Files.isRegularFile(f)) {
            throw new CheckpointException(f + ": file does not exist");
        }
        String text;
        try {
            text = Files.readString(f);
        } catch (IOException ex) {
            throw new CheckpointException(f + ": cannot read: " + ex, ex);
        }
        JsonElement root;
        try {
            root = JsonParser.parseString(text);
        } catch (JsonParseException ex) {
            throw new CheckpointException(f + ": not valid JSON: " + ex.getMessage(), ex);
        }
        // Hugging Face tokenizer.json has no top-level "type"; ours says what it is.
        JsonElement type = root != null && root.isJsonObject() ? root.getAsJsonObject().get("type") : null;
        if (type != null && type.isJsonPrimitive() && CharTokenizer.TYPE.equals(type.getAsString())) {
            return CharTokenizer.fromJson(text, f.toString());
        }
        return HfTokenizer.load(f);
    }

    public static Optional<Tokenizer> maybeFromCheckpoint(Path dir) {
        return Files.exists(dir.resolve(CheckpointDir.TOKENIZER)) ? Optional.of(fromCheckpoint(dir)) : Optional.empty();
    }
}
