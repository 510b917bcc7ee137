package io.tailguard.actors.runtime;

import io.tailguard.model.io.AtomicFiles;
import io.tailguard.rollout.tasks.DatasetTask;
import io.tailguard.rollout.tasks.TaskSpec;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A dataset run's records are the same on every node. Each node reads tailguard.train.dataset from
 * its own path, and the controller leases records by index: a node with another file would roll out
 * other prompts under the same group ids. So the first node to start over {@code <out>} records the
 * file's sha256 in {@code <out>/dataset.sha256}, and every later start (another node, a restarted
 * one, a resumed run) must read a file with the same sum, else it stops at start with one line
 * naming the key (exit 2).
 */
final class RunDataset {
    static final String FILE_NAME = "dataset.sha256";

    private RunDataset() {
    }

    /** Records or checks the dataset's sha256 under {@code out}; nothing for a built-in task. */
    static void claim(Path out, TaskSpec task) {
        if (!task.isDataset()) {
            return;
        }
        String sha = DatasetTask.sha256(task.dataset());
        Path file = out.resolve(FILE_NAME);
        try {
            Files.createDirectories(out);
            if (!Files.isRegularFile(file)) {
                AtomicFiles.writeString(file, sha + "  " + task.dataset().getFileName() + "\n");
            }
            String recorded = Files.readString(file).strip().split("\\s+")[0];
            if (!recorded.equals(sha)) {
                throw new IllegalArgumentException("tailguard.train.dataset: " + task.dataset() + " has sha256 " + sha
                        + ", but the run in " + out + " trains on a file with sha256 " + recorded + " (" + file
                        + "); every node must read the same dataset file");
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot record the dataset's sha256 in " + file, e);
        }
    }
}
