package io.tailguard.rollout.tasks;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Per-run memory and process caps through control groups, where this process may create them:
 * cgroup v2 (memory.max, memory.swap.max, pids.max) or, on a v1 hierarchy, the memory and pids
 * controllers. Each run gets its own group under this JVM's, so its processes together, however many,
 * stay within the caps. Where neither can be used, {@link #detect()} gives empty and the sandbox runs
 * the program as one process that cannot fork, whose own limits are then the run's.
 */
final class SandboxCgroups {

    private static final Path ROOT = Path.of("/sys/fs/cgroup");

    /** The directories (one per hierarchy) under which runs get their groups. */
    private final List<Path> parents;
    private final boolean v2;

    private SandboxCgroups(List<Path> parents, boolean v2) {
        this.parents = parents;
        this.v2 = v2;
    }

    /** One run's groups. */
    record Group(List<Path> dirs, boolean v2) {
        /** The cgroup.procs files the run's first process writes its pid to. */
        List<String> procsFiles() {
            return dirs.stream().map(d -> d.resolve("cgroup.procs").toString()).toList();
        }

        /** Whether the kernel killed a process of the run for exceeding the memory cap. */
        boolean oomKilled() {
            Path file = dirs.get(0).resolve(v2 ? "memory.events" : "memory.oom_control");
            try {
                for (String line : Files.readAllLines(file)) {
                    String[] kv = line.trim().split("\\s+");
                    if (kv.length == 2 && kv[0].equals("oom_kill") && Long.parseLong(kv[1]) > 0) {
                        return true;
                    }
                }
            } catch (IOException | NumberFormatException e) {
                return false;
            }
            return false;
        }

        /** Removes the groups once their processes are gone (they die with the run's namespace). */
        void remove() {
            for (Path d : dirs) {
                for (int i = 0; i < 500; i++) {
                    try {
                        Files.deleteIfExists(d);
                        break;
                    } catch (IOException busy) {
                        sleep();
                    }
                }
            }
        }
    }

    /** The caps this machine lets us set, probed by creating and removing a group. */
    static Optional<SandboxCgroups> detect() {
        try {
            if (Files.exists(ROOT.resolve("cgroup.controllers"))) {
                return detectV2();
            }
            return detectV1();
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    private static Optional<SandboxCgroups> detectV2() throws IOException {
        Path own = ROOT.resolve(ownPath("").orElseThrow(() -> new IOException("no v2 entry")));
        // A group with processes cannot hand controllers to children, so runs go under a child
        // group "tailguard-sandbox" that holds none; it needs memory and pids enabled from here.
        String enabled = Files.readString(own.resolve("cgroup.subtree_control"));
        if (!enabled.contains("memory") || !enabled.contains("pids")) {
            Files.writeString(own.resolve("cgroup.subtree_control"), "+memory +pids");
        }
        Path parent = own.resolve("tailguard-sandbox");
        Files.createDirectories(parent);
        Files.writeString(parent.resolve("cgroup.subtree_control"), "+memory +pids");
        SandboxCgroups c = new SandboxCgroups(List.of(parent), true);
        c.create("probe-" + ProcessHandle.current().pid()).remove();
        return Optional.of(c);
    }

    private static Optional<SandboxCgroups> detectV1() throws IOException {
        List<Path> parents = new ArrayList<>();
        for (String controller : List.of("memory", "pids")) {
            Path mount = ROOT.resolve(controller);
            String own = ownPath(controller).orElseThrow(() -> new IOException("no " + controller + " entry"));
            Path parent = mount.resolve(own.startsWith("/") ? own.substring(1) : own);
            if (!Files.isDirectory(parent) || !Files.exists(parent.resolve("cgroup.procs"))) {
                return Optional.empty();
            }
            parents.add(parent);
        }
        SandboxCgroups c = new SandboxCgroups(parents, false);
        c.create("probe-" + ProcessHandle.current().pid()).remove();
        return Optional.of(c);
    }

    /** This process's group path in the hierarchy of {@code controller} ("" for v2's unified one). */
    private static Optional<String> ownPath(String controller) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/cgroup"), StandardCharsets.UTF_8)) {
            String[] f = line.split(":", 3);
            if (f.length == 3 && (controller.isEmpty() ? f[0].equals("0") && f[1].isEmpty()
                    : List.of(f[1].split(",")).contains(controller))) {
                return Optional.of(f[2]);
            }
        }
        return Optional.empty();
    }

    String describe() {
        return v2 ? "cgroup v2" : "cgroup v1";
    }

    /** A group for one run, {@code memoryBytes} and {@code processes} for all its processes together. */
    Group create(String name, long memoryBytes, int processes) throws IOException {
        Group g = create(name);
        try {
            if (v2) {
                Path d = g.dirs().get(0);
                Files.writeString(d.resolve("memory.max"), Long.toString(memoryBytes));
                writeIfPresent(d.resolve("memory.swap.max"), "0");
                Files.writeString(d.resolve("pids.max"), Integer.toString(processes));
            } else {
                Path mem = g.dirs().get(0);
                Files.writeString(mem.resolve("memory.limit_in_bytes"), Long.toString(memoryBytes));
                writeIfPresent(mem.resolve("memory.memsw.limit_in_bytes"), Long.toString(memoryBytes));
                Files.writeString(g.dirs().get(1).resolve("pids.max"), Integer.toString(processes));
            }
            return g;
        } catch (IOException | RuntimeException e) {
            g.remove();
            throw e;
        }
    }

    private Group create(String name) throws IOException {
        List<Path> dirs = new ArrayList<>();
        try {
            for (Path p : parents) {
                dirs.add(Files.createDirectory(p.resolve(name)));
            }
        } catch (IOException e) {
            new Group(dirs, v2).remove();
            throw e;
        }
        return new Group(dirs, v2);
    }

    private static void writeIfPresent(Path file, String value) throws IOException {
        if (Files.exists(file)) {
            Files.writeString(file, value);
        }
    }

    private static void sleep() {
        try {
            Thread.sleep(10);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
