package io.tailguard.model.io;

import java.nio.file.Path;

/**
 * A checkpoint, config or tokenizer file on disk is malformed or does not fit the model.
 *
 * <p>The message is always one line that starts with the file and names the tensor or config key at
 * fault, because it is shown to a person as it is (the CLI maps this exception to exit code 2).
 */
public final class CheckpointException extends RuntimeException {

    public CheckpointException(String message) {
        super(oneLine(message));
    }

    public CheckpointException(String message, Throwable cause) {
        super(oneLine(message), cause);
    }

    /** {@code file: subject: detail}, e.g. {@code /x/model.safetensors: tensor a.weight: shape [2] expected [3]}. */
    public static CheckpointException of(Path file, String subject, String detail) {
        return new CheckpointException(file + ": " + subject + ": " + detail);
    }

    /** {@code file: detail}, for faults of the file as a whole. */
    public static CheckpointException of(Path file, String detail) {
        return new CheckpointException(file + ": " + detail);
    }

    /** {@code file: detail}, keeping the underlying cause for the log. */
    public static CheckpointException of(Path file, String detail, Throwable cause) {
        return new CheckpointException(file + ": " + detail, cause);
    }

    // Parser messages (Gson, the native tokenizer) can span lines and wrap a Java exception's name
    // ("java.io.EOFException: End of input ..."); a message for a person needs neither.
    private static String oneLine(String s) {
        return s == null ? "" : s.replaceAll("\\s*[\\r\\n]+\\s*", " ")
                .replaceAll("\\b(?:[a-z][a-z0-9_]*\\.)+[A-Z][A-Za-z0-9_]*(?:Exception|Error): ", "").strip();
    }
}
