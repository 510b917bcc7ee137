package io.tailguard.model.io;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Writing one small file so that readers see the old contents or the new, never a torn file: a
 * temporary file beside the target, then an atomic rename. A failed write leaves the old file and
 * no temporary behind. (Whole directories go through {@link CheckpointDir#writeAtomically}.)
 */
public final class AtomicFiles {
    private AtomicFiles() {
    }

    public static void writeString(Path file, String text) throws IOException {
        Path parent = file.toAbsolutePath().getParent();
        Files.createDirectories(parent);
        Path tmp = Files.createTempFile(parent, "." + file.getFileName(), ".tmp");
        try {
            Files.writeString(tmp, text, StandardCharsets.UTF_8);
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }
}
