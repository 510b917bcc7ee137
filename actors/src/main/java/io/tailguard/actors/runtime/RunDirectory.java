package io.tailguard.actors.runtime;

import io.tailguard.model.io.AtomicFiles;
import io.tailguard.model.io.CheckpointException;
import io.tailguard.model.io.Manifest;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A run directory belongs to one warm start. The first learner to use {@code <out>} records which
 * checkpoint it started from ({@code <out>/warm-start.json}: the path and a sha256 over its files);
 * a later start over the same directory resumes only from the same warm start. Resuming a learner
 * checkpoint trained from another policy (say, after the embedded default's recipe changed) would
 * silently continue the wrong run, so it is refused, naming the file.
 */
final class RunDirectory {
    public static final String FILE_NAME = "warm-start.json";
    private static final Pattern SHA = Pattern.compile("\"sha256\"\\s*:\\s*\"([0-9a-f]{64})\"");

    private RunDirectory() {
    }

    /** Records the warm start of a fresh run directory, or checks that a used one started from it. */
    public static void claim(Path out, Path start) throws IOException {
        String sha = fingerprint(start);
        Path file = out.resolve(FILE_NAME);
        if (Files.isRegularFile(file)) {
            Matcher m = SHA.matcher(Files.readString(file));
            if (!m.find()) {
                throw CheckpointException.of(file, "no \"sha256\" of the warm start");
            }
            if (!m.group(1).equals(sha)) {
                throw CheckpointException.of(file, "this run started from another warm start than " + start
                        + "; set tailguard.train.out to a new directory or remove " + out + " to start over");
            }
            return;
        }
        if (Files.isRegularFile(out.resolve("learner").resolve(Manifest.FILE_NAME))) {
            throw CheckpointException.of(out.resolve("learner"), "a learner checkpoint without " + FILE_NAME
                    + ", so its warm start is unknown; set tailguard.train.out to a new directory or remove " + out);
        }
        AtomicFiles.writeString(file, "{\"checkpoint\":\"" + start.toAbsolutePath().toString().replace("\\", "\\\\").replace("\"", "\\\"")
                + "\",\"sha256\":\"" + sha + "\"}\n");
    }

    /** sha256 over the checkpoint's manifest when it has one (which holds every file's sum), else over its files. */
    static String fingerprint(Path dir) throws IOException {
        Path manifest = dir.resolve(Manifest.FILE_NAME);
        if (Files.isRegularFile(manifest)) {
            return Manifest.sha256(manifest);
        }
        List<Path> files;
        try (Stream<Path> st = Files.list(dir)) {
            files = st.filter(Files::isRegularFile).sorted().toList();
        }
        StringBuilder sums = new StringBuilder();
        for (Path f : files) {
            sums.append(f.getFileName()).append(' ').append(Manifest.sha256(f)).append('\n');
        }
        try {
            return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
                    .digest(sums.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8)));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java runtime has SHA-256", e);
        }
    }
}
