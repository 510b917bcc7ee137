package io.tailguard.model.io;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.ParameterShapes;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A checkpoint directory in the Hugging Face layout (docs/architecture.md, "Files on disk"): config.json,
 * model.safetensors, tokenizer.json, optional extra files, and manifest.json.
 */
public final class CheckpointDir {

    public static final String CONFIG = "config.json";
    public static final String WEIGHTS = "model.safetensors";
    /** Larger Hugging Face checkpoints come sharded, with this index instead of {@link #WEIGHTS}. */
    public static final String WEIGHTS_INDEX = "model.safetensors.index.json";
    public static final String TOKENIZER = "tokenizer.json";
    private static final Set<String> RESERVED = Set.of(CONFIG, WEIGHTS, TOKENIZER, Manifest.FILE_NAME);

    private CheckpointDir() {
    }

    public record Loaded(Path dir, ModelConfig config, Map<String, HostTensor> tensors,
                         Optional<String> tokenizerJson, Optional<Manifest> manifest) {
        public Loaded {
            tensors = Collections.unmodifiableMap(new TreeMap<>(tensors));
        }
    }

    // ---- reading ----

    public static Loaded read(Path dir) {
        if (!Files.isDirectory(dir)) {
            throw CheckpointException.of(dir, "checkpoint directory does not exist");
        }
        ModelConfig config = ConfigJson.read(dir.resolve(CONFIG));
        Optional<Manifest> manifest = Optional.empty();
        if (Files.exists(dir.resolve(Manifest.FILE_NAME))) {
            Manifest m = Manifest.read(dir);
            m.verify(dir);  // before mapping the weights: a torn file must not be half-trusted
            manifest = Optional.of(m);
        }
        Path weightsFile = dir.resolve(WEIGHTS);
        Map<String, HostTensor> tensors;
        if (!Files.exists(weightsFile) && Files.exists(dir.resolve(WEIGHTS_INDEX))) {
            weightsFile = dir.resolve(WEIGHTS_INDEX);
            tensors = readSharded(dir, weightsFile);
        } else {
            tensors = SafeTensors.read(weightsFile);
            for (Map.Entry<String, HostTensor> e : tensors.entrySet()) {
                checkFinite(weightsFile, e.getKey(), e.getValue());
            }
        }
        checkTensors(weightsFile, config, tensors);
        Optional<String> tokenizer = Optional.empty();
        Path tok = dir.resolve(TOKENIZER);
        if (Files.exists(tok)) {
            try {
                tokenizer = Optional.of(Files.readString(tok));
            } catch (IOException ex) {
                throw CheckpointException.of(tok, "cannot read: " + ex, ex);
            }
        }
        return new Loaded(dir, config, tensors, tokenizer, manifest);
    }

    /** Every tensor the config needs is present with its shape; extra tensors are tolerated. */
    static void checkTensors(Path file, ModelConfig config, Map<String, HostTensor> tensors) {
        for (String name : requiredTensorNames(config)) {
            HostTensor t = tensors.get(name);
            if (t == null) {
                throw CheckpointException.of(file, "tensor " + name, "missing (required by " + CONFIG + ")");
            }
            long[] want = expectedShape(config, name);
            if (!Arrays.equals(t.shape(), want)) {
                throw CheckpointException.of(file, "tensor " + name, "shape " + Arrays.toString(t.shape())
                        + " expected " + Arrays.toString(want));
            }
        }
    }

    private static Map<String, HostTensor> readSharded(Path dir, Path index) {
        JsonObject weightMap;
        try {
            JsonElement root = JsonParser.parseString(Files.readString(index));
            JsonElement wm = root.isJsonObject() ? root.getAsJsonObject().get("weight_map") : null;
            if (wm == null || !wm.isJsonObject()) {
                throw CheckpointException.of(index, "key weight_map", "missing or not an object");
            }
            weightMap = wm.getAsJsonObject();
        } catch (IOException | JsonParseException ex) {
            throw CheckpointException.of(index, "cannot read: " + ex.getMessage(), ex);
        }
        Map<String, Map<String, HostTensor>> shards = new TreeMap<>();
        Map<String, HostTensor> out = new TreeMap<>();
        for (Map.Entry<String, JsonElement> e : weightMap.entrySet()) {
            String shard = e.getValue().isJsonPrimitive() ? e.getValue().getAsString() : "";
            if (!Manifest.isPlainFileName(shard)) {
                throw CheckpointException.of(index, "tensor " + e.getKey(), "shard " + e.getValue() + " is not a file name");
            }
            Map<String, HostTensor> s = shards.computeIfAbsent(shard, n -> SafeTensors.read(dir.resolve(n)));
            HostTensor t = s.get(e.getKey());
            if (t == null) {
                throw CheckpointException.of(dir.resolve(shard), "tensor " + e.getKey(), "missing (listed in " + WEIGHTS_INDEX + ")");
            }
            checkFinite(dir.resolve(shard), e.getKey(), t);
            out.put(e.getKey(), t);
        }
        return out;
    }

    /**
     * A NaN or an infinity in a weight poisons every logit it reaches (a diverged run's save, a
     * damaged file); the model refuses it by name rather than generating from it.
     */
    private static void checkFinite(Path file, String name, HostTensor t) {
        long i = t.firstNonFinite();
        if (i >= 0) {
            float v = t.dtype() == DType.F32 ? t.data().getFloat((int) (i * 4))
                    : t.dtype() == DType.BF16 ? DType.bf16BitsToFloat(t.data().getShort((int) (i * 2)))
                    : DType.f16BitsToFloat(t.data().getShort((int) (i * 2)));
            throw CheckpointException.of(file, "tensor " + name, "holds a value that is not finite (" + v
                    + " at flat index " + i + ")");
        }
    }

    // ---- tensor names and shapes ----

    public static List<String> requiredTensorNames(ModelConfig c) {
        return new ArrayList<>(ParameterShapes.of(c).keySet());
    }

    /** @throws IllegalArgumentException for a name that is not a Qwen3 weight of this config */
    public static long[] expectedShape(ModelConfig c, String name) {
        long[] shape = ParameterShapes.of(c).get(name);
        if (shape == null && name.equals("lm_head.weight")) {
            shape = new long[] {c.vocabSize(), c.hiddenSize()}; // a tied checkpoint may still store it
        }
        if (shape == null) {
            throw new IllegalArgumentException("not a Qwen3 weight of this config: " + name);
        }
        return shape;
    }

    // ---- writing ----

    /**
     * Writes a complete checkpoint atomically: everything goes into a fresh temporary sibling
     * directory, is forced to disk, and only then swapped in. Until the swap, any failure removes
     * the temporary directory and leaves an existing checkpoint at {@code dir} untouched.
     *
     * @param tensors must hold every {@link #requiredTensorNames} tensor with its expected shape
     * @param extraFiles further files by plain name (optimizer.safetensors, trainer-state.json, ...) or
     *                   in a folder of their own (lora/adapter_model.safetensors)
     * @throws IllegalArgumentException for tensors that do not fit the config or bad extra file names
     * @throws UncheckedIOException when the file system fails
     */
    public static void write(Path dir, ModelConfig config, Map<String, HostTensor> tensors, DType storeAs,
                             String tokenizerJsonOrNull, Map<String, byte[]> extraFiles,
                             long version, String parent, long step, long scheduleVersion) {
        // Validate before touching the disk.
        try {
            checkTensors(Path.of(WEIGHTS), config, tensors);
        } catch (CheckpointException ex) {
            throw new IllegalArgumentException(ex.getMessage(), ex);
        }
        Map<String, byte[]> extras = new TreeMap<>(extraFiles == null ? Map.of() : extraFiles);
        for (String name : extras.keySet()) {
            if (!Manifest.isCheckpointPath(name) || RESERVED.contains(name) || name.startsWith(".") || name.contains("/.")) {
                throw new IllegalArgumentException("extra file name '" + name
                        + "' must be a plain, non-hidden file name (in at most one folder) other than " + new TreeSet<>(RESERVED));
            }
        }

        writeAtomically(dir, tmp -> {
            writeString(tmp.resolve(CONFIG), ConfigJson.toJson(config, storeAs));
            Map<String, HostTensor> stored = new TreeMap<>();
            tensors.forEach((name, t) -> stored.put(name, t.convertTo(storeAs)));
            SafeTensors.write(tmp.resolve(WEIGHTS), stored, Map.of("format", "pt"));
            if (tokenizerJsonOrNull != null) {
                writeString(tmp.resolve(TOKENIZER), tokenizerJsonOrNull);
            }
            for (Map.Entry<String, byte[]> e : extras.entrySet()) {
                Files.createDirectories(tmp.resolve(e.getKey()).getParent());
                writeBytes(tmp.resolve(e.getKey()), e.getValue());
            }
        }, version, parent, step, scheduleVersion);
    }

    /** Writes the files of a directory; it gets a fresh, empty directory to fill. */
    @FunctionalInterface
    public interface Contents {
        void writeInto(Path dir) throws IOException;
    }

    /**
     * The one atomic way to write a checkpoint-like directory (model checkpoints, quantized
     * checkpoints): {@code contents} fills a fresh temporary sibling, a manifest with the sha256 of
     * every file is written last, everything is forced to disk, and only then is it swapped in.
     * Until the swap, any failure removes the temporary directory and leaves an existing one at
     * {@code dir} untouched.
     */
    public static void writeAtomically(Path dir, Contents contents, long version, String parent, long step,
                                       long scheduleVersion) {
        Path target = dir.toAbsolutePath().normalize();
        Path parentDir = target.getParent();
        String base = target.getFileName().toString();
        Path tmp;
        try {
            Files.createDirectories(parentDir);
            recoverLeftovers(target);
            // A sibling, so that the final rename stays within one file system and is atomic.
            tmp = Files.createTempDirectory(parentDir, "." + base + ".tmp-");
        } catch (IOException ex) {
            throw new UncheckedIOException(target + ": cannot create a temporary directory: " + ex.getMessage(), ex);
        }
        IN_FLIGHT.add(tmp);
        try {
            contents.writeInto(tmp);
            TreeMap<String, String> sums = new TreeMap<>();
            try (var files = Files.list(tmp)) {
                for (Path f : (Iterable<Path>) files::iterator) {
                    if (!Files.isDirectory(f)) {
                        sums.put(f.getFileName().toString(), Manifest.sha256(f));
                        continue;
                    }
                    // a folder of the checkpoint (an adapter's files): one level, listed as folder/file
                    try (var inner = Files.list(f)) {
                        for (Path g : (Iterable<Path>) inner::iterator) {
                            if (Files.isDirectory(g)) {
                                throw new IOException(g + ": checkpoint folders hold files only");
                            }
                            sums.put(f.getFileName() + "/" + g.getFileName(), Manifest.sha256(g));
                        }
                    }
                    fsyncDirectory(f);
                }
            }
            // Last: a manifest only ever describes files that are already complete on disk.
            writeString(tmp.resolve(Manifest.FILE_NAME),
                    new Manifest(version, parent, step, scheduleVersion, sums).toJson());
            fsyncDirectory(tmp);
        } catch (IOException ex) {
            deleteQuietly(tmp);
            IN_FLIGHT.remove(tmp);
            throw new UncheckedIOException(target + ": cannot write checkpoint: " + ex, ex);
        } catch (RuntimeException | Error ex) {
            deleteQuietly(tmp);
            IN_FLIGHT.remove(tmp);
            throw ex;
        }
        try {
            swapIn(tmp, target);
        } finally {
            IN_FLIGHT.remove(tmp);
        }
    }

    /** The names {@link #writeAtomically} gives its temporary directory and the one it moves aside. */
    private static final Pattern LEFTOVER = Pattern.compile("\\.(.+)\\.(tmp|old)-(-?\\d+)");

    /** Temporary directories this process is filling right now: never leftovers, whatever their name. */
    private static final Set<Path> IN_FLIGHT = ConcurrentHashMap.newKeySet();

    /** Swaps and recoveries in this process take turns, so a recovery never sees a swap half done. */
    private static final Object SWAP_LOCK = new Object();

    /**
     * Tidies what a process killed inside {@link #writeAtomically} left beside {@code dir}, for
     * every checkpoint in its parent directory: a {@code .<name>.tmp-*} directory is an unfinished
     * write and is removed; a {@code .<name>.old-*} directory is a complete checkpoint moved aside
     * by a crash between the two renames, so it is moved back to {@code <name>} when that is
     * missing, and removed when the new checkpoint did land there. Writing calls this first; a
     * command that resumes from a checkpoint it will write again calls it before looking. Only the
     * process that writes into a directory may call it (another writer's temporary directory would
     * look like a leftover).
     */
    public static void recoverLeftovers(Path dir) {
        Path parentDir = dir.toAbsolutePath().normalize().getParent();
        if (parentDir == null || !Files.isDirectory(parentDir)) {
            return;
        }
        synchronized (SWAP_LOCK) {
            List<Path> tmps = new ArrayList<>();
            Map<String, List<Path>> olds = new TreeMap<>();
            try (var entries = Files.list(parentDir)) {
                for (Path p : (Iterable<Path>) entries::iterator) {
                    Matcher m = LEFTOVER.matcher(p.getFileName().toString());
                    if (!m.matches() || !Files.isDirectory(p) || IN_FLIGHT.contains(p)) {
                        continue;
                    }
                    if (m.group(2).equals("tmp")) {
                        tmps.add(p);
                    } else {
                        olds.computeIfAbsent(m.group(1), k -> new ArrayList<>()).add(p);
                    }
                }
            } catch (IOException ex) {
                throw new UncheckedIOException(parentDir + ": cannot list it to tidy interrupted checkpoint writes: "
                        + ex.getMessage(), ex);
            }
            tmps.forEach(CheckpointDir::deleteQuietly);
            for (Map.Entry<String, List<Path>> e : olds.entrySet()) {
                Path target = parentDir.resolve(e.getKey());
                List<Path> aside = e.getValue();
                // A write recovers before it moves anything aside, so there is one; were there several, the
                // one whose manifest was written last is kept (nanoTime suffixes of two processes do not compare).
                aside.sort((a, b) -> Long.compare(manifestTime(a), manifestTime(b)));
                if (!Files.exists(target)) {
                    Path back = aside.remove(aside.size() - 1);
                    try {
                        Files.move(back, target, StandardCopyOption.ATOMIC_MOVE);
                        fsyncDirectory(parentDir);
                    } catch (IOException ex) {
                        throw new UncheckedIOException(back + ": cannot move it back to " + target + ": " + ex.getMessage(), ex);
                    }
                }
                aside.forEach(CheckpointDir::deleteQuietly);
            }
        }
    }

    private static long manifestTime(Path dir) {
        try {
            return Files.getLastModifiedTime(dir.resolve(Manifest.FILE_NAME)).toMillis();
        } catch (IOException ex) {
            return Long.MIN_VALUE;  // no manifest: the least worth keeping
        }
    }

    /**
     * Java cannot exchange two directories atomically (renameat2 is out of reach), so an existing
     * checkpoint is renamed aside first; a crash between the two renames leaves it complete under
     * its {@code .old-} name, never a torn mix.
     */
    private static void swapIn(Path tmp, Path target) {
        synchronized (SWAP_LOCK) {
            swapInLocked(tmp, target);
        }
    }

    private static void swapInLocked(Path tmp, Path target) {
        Path parentDir = target.getParent();
        Path old = null;
        try {
            if (Files.exists(target)) {
                old = parentDir.resolve("." + target.getFileName() + ".old-" + System.nanoTime());
                Files.move(target, old, StandardCopyOption.ATOMIC_MOVE);
            }
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
            } catch (IOException ex) {
                if (old != null) {
                    Files.move(old, target, StandardCopyOption.ATOMIC_MOVE);  // put the old one back
                }
                throw ex;
            }
            fsyncDirectory(parentDir);
        } catch (IOException ex) {
            deleteQuietly(tmp);
            throw new UncheckedIOException(target + ": cannot move the new checkpoint into place: " + ex, ex);
        }
        if (old != null) {
            deleteQuietly(old);
        }
    }

    private static void writeString(Path f, String s) throws IOException {
        writeBytes(f, s.getBytes(StandardCharsets.UTF_8));
    }

    private static void writeBytes(Path f, byte[] bytes) throws IOException {
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.wrap(bytes);
            while (b.hasRemaining()) {
                ch.write(b);
            }
            ch.force(true);
        }
    }

    /** Makes renames and new entries durable; some platforms cannot open a directory, which is harmless there. */
    private static void fsyncDirectory(Path d) {
        try (FileChannel ch = FileChannel.open(d, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException ignored) {
            // best effort: not supported on every platform
        }
    }

    static void deleteQuietly(Path root) {
        try {
            if (!Files.exists(root)) {
                return;
            }
            Files.walkFileTree(root, new SimpleFileVisitor<>() {
                @Override
                public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                    Files.deleteIfExists(file);
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult postVisitDirectory(Path d, IOException exc) throws IOException {
                    try {
                        Files.deleteIfExists(d);
                    } catch (DirectoryNotEmptyException ignored) {
                        // leave it; the caller's error is the one worth reporting
                    }
                    return FileVisitResult.CONTINUE;
                }
            });
        } catch (IOException | RuntimeException ignored) {
            // cleanup must never mask the original failure
        }
    }
}
