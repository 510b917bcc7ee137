package io.tailguard.runtime;

import io.tailguard.model.Devices;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.io.CheckpointDir;
import io.tailguard.model.io.CheckpointException;
import io.tailguard.model.io.DType;
import io.tailguard.model.io.Manifest;

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
        Path dir = dirOf(version);
        CheckpointDir.write(dir, model.config(), ModelLoader.hostTensors(model.config(), model.hostWeights()), DType.F32,
                tokenizerJson, Map.of(), version, parent, step, scheduleVersion);
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
