package io.tailguard.actors.runtime;

import io.tailguard.model.Devices;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.io.CheckpointDir;
import io.tailguard.model.io.CheckpointException;
import io.tailguard.model.io.DType;
import io.tailguard.model.io.Manifest;
import io.tailguard.model.lora.LoraAdapter;
import io.tailguard.model.lora.LoraFiles;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * The checkpoint store: a directory (local disk, or a volume every node mounts) of published
 * policies {@code v000123/}, each a complete checkpoint written atomically with a manifest. A
 * publication is named by {@code (version, uri, sha256 of manifest.json)}; a reader checks that
 * sha256, and loading checks every file against the manifest.
 */
public final class CheckpointStore {
    private final Path root;

    public CheckpointStore(Path root) {
        this.root = root.toAbsolutePath().normalize();
    }

    public Path root() {
        return root;
    }

    public Path dirOf(long version) {
        return root.resolve(String.format("v%06d", version));
    }

    /** Writes the model's weights as version v (atomically) and names the publication. */
    public PolicyPublished publish(Qwen3Model model, String tokenizerJson, long version, long step, String parent,
                                   long scheduleVersion) {
        return publish(model, tokenizerJson, version, step, parent, scheduleVersion, null);
    }

    /**
     * The same, with the sparse actor's DistillSparse LoRA when not null: its
     * files go into the version directory's folder {@code lora} (in its
     * manifest, sha256 and all). The base weights are the model's own (the adapter is never merged
     * while the learner publishes).
     */
    public PolicyPublished publish(Qwen3Model model, String tokenizerJson, long version, long step, String parent,
                                   long scheduleVersion, LoraAdapter lora) {
        Path dir = dirOf(version);
        CheckpointDir.write(dir, model.config(), ModelLoader.hostTensors(model.config(), model.hostWeights()), DType.F32,
                tokenizerJson, lora == null ? Map.of() : lora.files(), version, parent, step, scheduleVersion);
        return new PolicyPublished(version, step, dir.toUri().toString(), Manifest.sha256(dir.resolve(Manifest.FILE_NAME)));
    }

    /** Names an existing checkpoint directory (the starting policy) as version 0. */
    public static PolicyPublished existing(Path dir, long version) {
        Path m = dir.toAbsolutePath().normalize().resolve(Manifest.FILE_NAME);
        if (!Files.isRegularFile(m)) {
            throw new CheckpointException(dir + ": no " + Manifest.FILE_NAME + " (not a complete checkpoint)");
        }
        return new PolicyPublished(version, 0, dir.toAbsolutePath().normalize().toUri().toString(), Manifest.sha256(m));
    }

    /**
     * The newest complete version in a store (a directory vNNNNNN with its manifest), else the
     * starting checkpoint as version 0.
     */
    public static PolicyPublished latest(Path storeRoot, Path start) {
        long best = -1;
        if (Files.isDirectory(storeRoot)) {
            try (var dirs = Files.list(storeRoot)) {
                for (Path d : dirs.toList()) {
                    String n = d.getFileName().toString();
                    if (n.matches("v\\d{6,}") && Files.isRegularFile(d.resolve(Manifest.FILE_NAME))) {
                        best = Math.max(best, Long.parseLong(n.substring(1)));
                    }
                }
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(storeRoot + ": " + e.getMessage(), e);
            }
        }
        if (best > 0) {
            Path dir = storeRoot.resolve(String.format("v%06d", best));
            return new PolicyPublished(best, Manifest.read(dir).step(), dir.toUri().toString(), Manifest.sha256(dir.resolve(Manifest.FILE_NAME)));
        }
        return existing(start, 0);
    }

    /** Where the compression worker writes: {@code <store>/compressed/}. */
    public static Path compressedRoot(Path storeRoot) {
        return storeRoot.resolve("compressed");
    }

    /**
     * A compressed version's directory name: {@code v000010-yaqa_b4} (method and bits), or for V:N:M,
     * whose values are not quantized, {@code v000010-vnm_64_2_5} (the method names the pattern).
     */
    static String compressedName(long version, String method, int bits) {
        return VNM_METHOD.matcher(method).matches() ? String.format("v%06d-%s", version, method)
                : String.format("v%06d-%s%d", version, method, bits);
    }

    private static final java.util.regex.Pattern VNM_METHOD = java.util.regex.Pattern.compile("vnm_\\d+_\\d+_\\d+");
    private static final java.util.regex.Pattern COMPRESSED =
            java.util.regex.Pattern.compile("v(\\d{6,})-(?:(vnm_\\d+_\\d+_\\d+)|([a-z_]+?)(\\d+))");

    /**
     * The newest complete compressed version in a store (a directory named as
     * {@link #compressedName} with its manifest), or null when there is none. Its KL is not
     * recorded on disk: NaN.
     */
    public static CompressedPublished latestCompressed(Path storeRoot) {
        Path root = compressedRoot(storeRoot);
        if (!Files.isDirectory(root)) {
            return null;
        }
        Path best = null;
        long bestVersion = -1;
        java.util.regex.Matcher bestMatch = null;
        try (var dirs = Files.list(root)) {
            for (Path d : dirs.toList()) {
                java.util.regex.Matcher m = COMPRESSED.matcher(d.getFileName().toString());
                if (m.matches() && Files.isRegularFile(d.resolve(Manifest.FILE_NAME)) && Long.parseLong(m.group(1)) > bestVersion) {
                    best = d;
                    bestVersion = Long.parseLong(m.group(1));
                    bestMatch = m;
                }
            }
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(root + ": " + e.getMessage(), e);
        }
        if (best == null) {
            return null;
        }
        boolean vnm = bestMatch.group(2) != null;
        return compressed(best, bestVersion, vnm ? bestMatch.group(2) : bestMatch.group(3),
                vnm ? RunSettings.Compression.VNM_VALUE_BITS : Integer.parseInt(bestMatch.group(4)), Double.NaN);
    }

    /** Names a compressed checkpoint directory (complete, with its manifest) as a publication. */
    public static CompressedPublished compressed(Path dir, long version, String method, int bits, double kl) {
        Path d = dir.toAbsolutePath().normalize();
        return new CompressedPublished(version, d.toUri().toString(), Manifest.sha256(d.resolve(Manifest.FILE_NAME)), method, bits, kl);
    }

    /**
     * Loads a compressed publication for sampling after checking its manifest's sha256 (and, through
     * the reader, every file): a packed quantized or V:N:M checkpoint keeps its linears packed and
     * decodes on them where the native decoder library is loaded on a CPU (dequantized elsewhere);
     * a plain checkpoint loads as it is.
     */
    public static Qwen3Model loadCompressed(CompressedPublished c, String device) {
        return loadCompressed(c, device, io.tailguard.model.PackedLinear.Activations.FLOAT32);
    }

    /** {@link #loadCompressed(CompressedPublished, String)}, a packed quantized checkpoint's products on {@code activations}. */
    public static Qwen3Model loadCompressed(CompressedPublished c, String device, io.tailguard.model.PackedLinear.Activations activations) {
        Path dir = Path.of(java.net.URI.create(c.uri()));
        String sha = Manifest.sha256(dir.resolve(Manifest.FILE_NAME));
        if (!sha.equals(c.sha256())) {
            throw new CheckpointException(dir.resolve(Manifest.FILE_NAME) + ": sha256 " + sha + " is not the announced " + c.sha256());
        }
        return io.tailguard.compression.CompressedCheckpoints.load(dir, Devices.parse(device), activations);
    }

    /** Whether a published version carries a DistillSparse LoRA for the sparse actor. */
    public static boolean hasLora(PolicyPublished p) {
        return LoraFiles.inCheckpoint(Path.of(java.net.URI.create(p.uri())));
    }

    /**
     * The publication's LoRA for {@code model} (not attached), after checking its two files against
     * the manifest the publication names (whose sha256 the caller checked when loading the model).
     */
    public static LoraAdapter loadLora(PolicyPublished p, Qwen3Model model) {
        Path dir = Path.of(java.net.URI.create(p.uri()));
        Manifest m = Manifest.read(dir);
        for (String f : LoraFiles.checkpointFiles(dir)) {
            String listed = m.sha256().get(f);
            if (listed == null || !listed.equals(Manifest.sha256(dir.resolve(f)))) {
                throw new CheckpointException(dir.resolve(f) + ": " + (listed == null ? "not listed in " + Manifest.FILE_NAME
                        : "sha256 does not match " + Manifest.FILE_NAME));
            }
        }
        return LoraAdapter.load(dir, model);
    }

    /** Loads a publication after checking its manifest's sha256 (and, through the loader, every file). */
    public static Qwen3Model load(PolicyPublished p, String device) {
        Path dir = Path.of(java.net.URI.create(p.uri()));
        String sha = Manifest.sha256(dir.resolve(Manifest.FILE_NAME));
        if (!sha.equals(p.sha256())) {
            throw new CheckpointException(dir.resolve(Manifest.FILE_NAME) + ": sha256 " + sha + " is not the published " + p.sha256());
        }
        return ModelLoader.load(dir, Devices.parse(device));
    }
}
