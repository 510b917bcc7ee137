package io.tailguard.rollout.tasks;

import com.google.gson.Gson;
import com.google.gson.JsonParseException;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

/**
 * Runs an untrusted Python program under python3 with per-run limits, for the {@code code} verifier.
 *
 * <p>Two ways to run: {@link #run} runs a program and reports how it ended; {@link #check} runs a
 * program (a completion) against tests, where the verdict never comes from the program's exit
 * status: the tests run in a separate harness process that calls into the program over pipes and
 * compares plain values itself (see {@code sandbox_runner.py}), and the program never sees them.
 *
 * <p>How the run is confined (see {@code sandbox_launcher.py}, started as process 1 of the run):
 * <ul>
 *   <li>Namespaces: {@code unshare --net --mount --pid --fork --kill-child} under {@code setsid}:
 *       no network (a downed loopback only; host ports and abstract Unix sockets unreachable), and
 *       when process 1 dies the kernel kills every process of the run.</li>
 *   <li>Files: a private root on a 1 MiB tmpfs holding only the interpreter's files, bound
 *       read-only (its executable, standard library and the shared libraries they load, found once
 *       per interpreter by {@code sandbox_probe.py}), {@code /dev/null}, {@code zero},
 *       {@code urandom}, {@code random}, and {@code /work}, a tmpfs of {@link SandboxLimits#diskBytes}
 *       that is cwd, HOME and TMPDIR. The host tree is detached: no host /tmp, /proc, /etc or
 *       socket exists inside.</li>
 *   <li>Memory and processes for the whole run: a control group per run where this process may
 *       create one ({@link SandboxCgroups}); otherwise the program is one process that cannot fork
 *       or start threads (a seccomp filter), so its own limits are the run's. RLIMIT_AS, RLIMIT_CPU,
 *       RLIMIT_FSIZE and RLIMIT_NPROC apply to each process as well.</li>
 *   <li>Privileges: as root (as on these machines) each run gets user ids of its own, the program
 *       one and the harness another, so neither can signal or trace the other, and the mounts cannot
 *       be undone. As another user the namespaces come from {@code unshare --user --map-root-user},
 *       the program's capability bounding set is emptied and no_new_privs set.</li>
 *   <li>Wall clock and output: the JVM waits at most the wall time and reads at most the output
 *       limit of stdout+stderr, killing the run as soon as either is exceeded.</li>
 *   <li>Outcome: from the verdict file the launcher writes (how the program ended, or the test
 *       verdict), which nothing inside the run can reach, never from timing.</li>
 * </ul>
 * If no namespaces can be created here, runs are refused (scored 0 with the reason) unless the
 * sandbox was built with {@code allowUnisolated}, in which case only the rlimits, the process group
 * and, as root, the user change apply; never do that with untrusted code on a shared machine.
 */
public final class PythonSandbox {

    /** How runs are isolated on this machine, found by a probe run. */
    public enum Isolation {
        /** Running as root: new net, mount and PID namespaces; the program runs under its own user id. */
        ROOT_NAMESPACES,
        /** Not root: the same namespaces inside a new user namespace; capabilities dropped. */
        USER_NAMESPACES,
        /** No namespace could be created: limits and process group only. */
        NONE
    }

    private static final int SETUP_FAILED_EXIT = 125;
    private static final int SIGKILL = 9;
    private static final int SIGXCPU = 24;
    private static final int MAX_MESSAGE = 4 << 20;
    private static final Gson GSON = new Gson();
    private static final String LAUNCHER = resource("sandbox_launcher.py");
    private static final String RUNNER = resource("sandbox_runner.py");
    private static final String PROBE = resource("sandbox_probe.py");
    private static final AtomicInteger RUNS = new AtomicInteger();

    private static final ConcurrentHashMap<String, Isolation> PROBED = new ConcurrentHashMap<>();
    private static final ConcurrentHashMap<String, Optional<InterpreterFiles>> FILES = new ConcurrentHashMap<>();
    private static volatile Optional<SandboxCgroups> cgroups;

    private final SandboxLimits limits;
    private final boolean allowUnisolated;
    private final String python;
    private final Isolation forced;      // null: probe; set only by tests of a mode this machine does not pick
    private final boolean forceSingleProcess;

    /** What the private root exposes of one interpreter (see sandbox_probe.py). */
    record InterpreterFiles(String python, List<String> dirs, List<String> files, List<List<String>> links,
                            String library_path) {
    }

    /** A sandbox that refuses to run where no namespaces can be created, using /usr/bin/python3. */
    public PythonSandbox(SandboxLimits limits) {
        this(limits, false, defaultPython());
    }

    /**
     * @param allowUnisolated run even where no namespaces can be created (no network or file system
     *                        isolation then); off by default
     * @param python          absolute path of the interpreter; it must be readable by any user
     */
    public PythonSandbox(SandboxLimits limits, boolean allowUnisolated, String python) {
        this(limits, allowUnisolated, python, null, false);
    }

    PythonSandbox(SandboxLimits limits, boolean allowUnisolated, String python, Isolation forced) {
        this(limits, allowUnisolated, python, forced, false);
    }

    /** @param forceSingleProcess use the no-fork mode even where control groups could be used (tests) */
    PythonSandbox(SandboxLimits limits, boolean allowUnisolated, String python, Isolation forced,
                  boolean forceSingleProcess) {
        this.limits = Objects.requireNonNull(limits, "limits");
        this.allowUnisolated = allowUnisolated;
        this.python = Objects.requireNonNull(python, "python");
        this.forced = forced;
        this.forceSingleProcess = forceSingleProcess;
    }

    /** /usr/bin/python3 where it exists: interpreters under /root (pyenv) are unreadable for other users. */
    static String defaultPython() {
        return Files.isExecutable(Path.of("/usr/bin/python3")) ? "/usr/bin/python3" : "python3";
    }

    public SandboxLimits limits() {
        return limits;
    }

    /** How runs are isolated here; probed once per interpreter by running an empty program. */
    public Isolation isolation() {
        if (forced != null) {
            return forced;
        }
        return PROBED.computeIfAbsent(python, p -> probe());
    }

    /** How the whole run's memory and processes are capped here: "cgroup v1", "cgroup v2" or "single process". */
    public String runCaps(Isolation isolation) {
        return group(isolation).map(SandboxCgroups::describe).orElse("single process");
    }

    private Optional<SandboxCgroups> group(Isolation isolation) {
        if (forceSingleProcess || isolation != Isolation.ROOT_NAMESPACES) {
            return Optional.empty();
        }
        Optional<SandboxCgroups> c = cgroups;
        if (c == null) {
            synchronized (PythonSandbox.class) {
                if (cgroups == null) {
                    cgroups = SandboxCgroups.detect();
                }
                c = cgroups;
            }
        }
        return c;
    }

    private Isolation probe() {
        Isolation wanted = isRoot() ? Isolation.ROOT_NAMESPACES : Isolation.USER_NAMESPACES;
        SandboxResult r = execute("pass\n", null, wanted);
        return r.passed() ? wanted : Isolation.NONE;
    }

    private static boolean isRoot() {
        try {
            return ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:uid")).intValue() == 0;
        } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
            return false;
        }
    }

    /** Runs {@code program} (a complete Python source file) and reports how it ended. */
    public SandboxResult run(String program) {
        return runChecked(Objects.requireNonNull(program, "program"), null);
    }

    /**
     * Runs {@code program} as a module and then {@code tests}, Python statements with asserts, against
     * it from a separate harness process; PASSED only if every statement of the tests ran without an
     * exception (and they contain at least one assert), whatever the program does to its own process.
     */
    public SandboxResult check(String program, String tests) {
        return runChecked(Objects.requireNonNull(program, "program"), Objects.requireNonNull(tests, "tests"));
    }

    private SandboxResult runChecked(String program, String tests) {
        Isolation isolation = isolation();
        if (isolation == Isolation.NONE && !allowUnisolated) {
            return new SandboxResult(SandboxResult.Outcome.REFUSED, -1, "", Duration.ZERO, "",
                    "refused: no network/mount namespace available for the sandbox (allow-unisolated is off)");
        }
        return execute(program, tests, isolation);
    }

    private static String resource(String name) {
        try (InputStream in = PythonSandbox.class.getResourceAsStream(name)) {
            if (in == null) {
                throw new IllegalStateException("missing resource " + name);
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The interpreter's files, listed once by running the probe script with it (unsandboxed: it is ours). */
    private Optional<InterpreterFiles> interpreterFiles() {
        return FILES.computeIfAbsent(python, p -> {
            try {
                Process proc = new ProcessBuilder(p, "-I", "-S", "-c", PROBE)
                        .redirectError(ProcessBuilder.Redirect.DISCARD).start();
                String out = new String(proc.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                if (!proc.waitFor(60, TimeUnit.SECONDS) || proc.exitValue() != 0) {
                    return Optional.empty();
                }
                return Optional.of(GSON.fromJson(out, InterpreterFiles.class));
            } catch (IOException | RuntimeException e) {
                return Optional.empty();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return Optional.empty();
            }
        });
    }

    private List<String> command(Isolation isolation) {
        List<String> cmd = new ArrayList<>(List.of("setsid"));
        switch (isolation) {
            case ROOT_NAMESPACES -> cmd.addAll(List.of("unshare", "--net", "--mount", "--pid", "--fork",
                    "--kill-child"));
            case USER_NAMESPACES -> cmd.addAll(List.of("unshare", "--user", "--map-root-user", "--net",
                    "--mount", "--pid", "--fork", "--kill-child"));
            case NONE -> { }
        }
        cmd.addAll(List.of(python, "-I", "-S", "-c", LAUNCHER));
        return cmd;
    }

    private SandboxResult execute(String program, String tests, Isolation isolation) {
        Path base;
        try {
            base = Files.createTempDirectory("tailguard-sandbox-");
            // traversable (an unisolated program runs in root/ under its own user id), not listable
            Files.setPosixFilePermissions(base, PosixFilePermissions.fromString("rwx--x--x"));
            Files.createDirectory(base.resolve("root"));
            Files.createFile(base.resolve("verdict"), PosixFilePermissions.asFileAttribute(
                    PosixFilePermissions.fromString("rw-------")));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the sandbox scratch directory", e);
        }
        String runId = base.getFileName().toString();
        long start = System.nanoTime();
        SandboxCgroups.Group group = null;
        try {
            boolean isolate = isolation != Isolation.NONE;
            Optional<InterpreterFiles> files = isolate ? interpreterFiles() : Optional.empty();
            if (isolate && files.isEmpty()) {
                return new SandboxResult(SandboxResult.Outcome.SETUP_FAILED, -1, "", Duration.ZERO, runId,
                        "sandbox setup failed: cannot list the files of " + python);
            }
            Optional<SandboxCgroups> caps = group(isolation);
            if (caps.isPresent()) {
                try {
                    group = caps.get().create(runId, limits.memoryBytes(), limits.maxProcesses());
                } catch (IOException e) {
                    return new SandboxResult(SandboxResult.Outcome.SETUP_FAILED, -1, "", Duration.ZERO, runId,
                            "sandbox setup failed: cannot create the run's control group: " + e.getMessage());
                }
            }
            boolean asRoot = isolation != Isolation.USER_NAMESPACES && isRoot();
            // Each run its own pair of user ids (even: the program, odd: the harness), so runs cannot
            // reach each other's processes and RLIMIT_NPROC counts this run's processes only.
            int uid = asRoot ? 200_000 + 2 * Math.floorMod(RUNS.getAndIncrement() + 4099 * (int) ProcessHandle.current().pid(), 400_000) : -1;
            Map<String, Object> cfg = new LinkedHashMap<>();
            cfg.put("root", base.resolve("root").toString());
            cfg.put("verdict", base.resolve("verdict").toString());
            cfg.put("uid", uid);
            cfg.put("harness_uid", asRoot ? uid + 1 : -1);
            cfg.put("isolate", isolate);
            cfg.put("cgroup_procs", group == null ? List.of() : group.procsFiles());
            cfg.put("single_process", isolate && group == null);
            cfg.put("cpu", limits.cpuSeconds());
            cfg.put("memory", limits.memoryBytes());
            cfg.put("processes", limits.maxProcesses());
            cfg.put("file", limits.maxFileBytes());
            cfg.put("disk", limits.diskBytes());
            cfg.put("python", files.map(InterpreterFiles::python).orElse(python));
            cfg.put("dirs", files.map(InterpreterFiles::dirs).orElse(List.of()));
            cfg.put("files", files.map(InterpreterFiles::files).orElse(List.of()));
            cfg.put("links", files.map(InterpreterFiles::links).orElse(List.of()));
            cfg.put("library_path", files.map(InterpreterFiles::library_path).orElse(""));
            cfg.put("program", program);
            cfg.put("tests", tests);
            cfg.put("runner", RUNNER);
            cfg.put("max_message", MAX_MESSAGE);
            if (!isolate && asRoot) {
                // without a private root, the scratch directory must belong to the program's user
                chown(base.resolve("root"), uid);
            }
            ProcessBuilder pb = new ProcessBuilder(command(isolation))
                    .directory(base.toFile())
                    .redirectErrorStream(true);
            pb.environment().keySet().retainAll(List.of("PATH"));
            Process process;
            try {
                process = pb.start();
            } catch (IOException e) {
                return new SandboxResult(SandboxResult.Outcome.SETUP_FAILED, -1, "", Duration.ZERO, runId,
                        "sandbox setup failed: " + e.getMessage());
            }
            AtomicBoolean outputExceeded = new AtomicBoolean();
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            Thread reader = new Thread(() -> readCapped(process, out, outputExceeded), "sandbox-output-" + runId);
            reader.setDaemon(true);
            reader.start();
            try (OutputStream stdin = process.getOutputStream()) {
                stdin.write(GSON.toJson(cfg).getBytes(StandardCharsets.UTF_8));
            } catch (IOException e) {
                // the launcher died before reading its settings: its output says why
            }
            boolean finished = waitFor(process, limits.wallTime());
            if (!finished) {
                killTree(process);
            }
            joinQuietly(reader);
            Duration elapsed = Duration.ofNanos(System.nanoTime() - start);
            String output;
            synchronized (out) {
                output = out.toString(StandardCharsets.UTF_8);
            }
            int exit = waitFor(process, Duration.ofSeconds(1)) ? process.exitValue() : -1;
            String verdict;
            try {
                verdict = Files.readString(base.resolve("verdict"));
            } catch (IOException e) {
                verdict = "";
            }
            boolean oom = group != null && group.oomKilled();
            return classify(exit, !finished, outputExceeded.get(), oom, verdict, tests != null, output, elapsed, runId);
        } finally {
            if (group != null) {
                group.remove();
            }
            deleteTree(base);
        }
    }

    private static void chown(Path p, int uid) {
        try {
            Files.setAttribute(p, "unix:uid", uid);
            Files.setAttribute(p, "unix:gid", uid);
        } catch (IOException | UnsupportedOperationException e) {
            throw new IllegalStateException("cannot hand the scratch directory to the sandbox user", e);
        }
    }

    private void readCapped(Process process, ByteArrayOutputStream out, AtomicBoolean exceeded) {
        byte[] buf = new byte[8192];
        int total = 0;
        try (InputStream in = process.getInputStream()) {
            int n;
            while ((n = in.read(buf)) > 0) {
                int keep = Math.min(n, limits.maxOutputBytes() - total);
                synchronized (out) {
                    out.write(buf, 0, Math.max(0, keep));
                }
                total += Math.max(0, keep);
                if (keep < n) {
                    exceeded.set(true);
                    killTree(process);
                    return;
                }
            }
        } catch (IOException e) {
            // the pipe closes when the process is killed; what was read so far is kept
        }
    }

    private static boolean waitFor(Process process, Duration d) {
        try {
            return process.waitFor(d.toNanos(), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /**
     * Kills the run: first every descendant (the launcher among them is PID 1 of the run's namespace,
     * whose death makes the kernel kill the rest), then waits for {@code unshare} to reap it, which
     * happens only once the whole namespace is gone. The process group is killed as well, for runs
     * without a PID namespace.
     */
    private static void killTree(Process process) {
        List<ProcessHandle> descendants = process.descendants().toList();
        descendants.forEach(ProcessHandle::destroyForcibly);
        try {
            new ProcessBuilder("kill", "-KILL", "--", "-" + process.pid())
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start()
                    .waitFor(2, TimeUnit.SECONDS);
        } catch (IOException e) {
            // kill(1) missing: the namespace and the descendants above still cover the run
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (!waitFor(process, Duration.ofSeconds(5))) {
            process.destroyForcibly();
            waitFor(process, Duration.ofSeconds(5));
        }
        for (ProcessHandle h : descendants) {
            try {
                h.onExit().get(2, TimeUnit.SECONDS);
            } catch (Exception e) {
                // reported by the caller's leak checks; nothing more can be done from here
            }
        }
    }

    private static void joinQuietly(Thread t) {
        try {
            t.join(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** How the program ended, as the launcher saw it. */
    private record Ended(Integer exit, Integer signal, double cpu) {
    }

    /** The launcher's verdict file: how the program ended, and in test mode the harness's verdict. */
    private record VerdictFile(Ended program, Boolean passed, String reason) {
    }

    private SandboxResult classify(int exit, boolean timedOut, boolean outputExceeded, boolean oom, String verdictText,
                                   boolean testMode, String output, Duration elapsed, String runId) {
        VerdictFile v = null;
        try {
            v = verdictText.isBlank() ? null : GSON.fromJson(verdictText, VerdictFile.class);
        } catch (JsonParseException e) {
            v = null;
        }
        SandboxResult.Outcome outcome;
        String reason;
        Ended ended = v == null ? null : v.program();
        if (outputExceeded) {
            outcome = SandboxResult.Outcome.OUTPUT_LIMIT;
            reason = "output limit exceeded (" + limits.maxOutputBytes() + " bytes)";
        } else if (timedOut) {
            outcome = SandboxResult.Outcome.WALL_TIMEOUT;
            reason = "timeout after " + seconds(limits.wallTime());
        } else if (v == null) {
            boolean setup = exit == SETUP_FAILED_EXIT && output.contains("sandbox setup failed");
            outcome = SandboxResult.Outcome.SETUP_FAILED;
            reason = setup ? lastLine(output) : "sandbox setup failed: the launcher ended with code " + exit;
        } else if (testMode) {
            boolean passed = Boolean.TRUE.equals(v.passed());
            outcome = passed ? SandboxResult.Outcome.PASSED : SandboxResult.Outcome.FAILED;
            reason = passed ? "passed" : (v.reason() == null ? "failed" : v.reason());
            if (!passed && oom) {
                outcome = SandboxResult.Outcome.MEMORY_LIMIT;
                reason = "memory limit exceeded (" + mib(limits.memoryBytes()) + " for the run): " + reason;
            } else if (!passed && cpuLimited(ended)) {
                outcome = SandboxResult.Outcome.CPU_LIMIT;
                reason = "CPU time limit exceeded (" + limits.cpuSeconds() + "s): " + reason;
            }
        } else if (cpuLimited(ended)) {
            outcome = SandboxResult.Outcome.CPU_LIMIT;
            reason = "CPU time limit exceeded (" + limits.cpuSeconds() + "s)";
        } else if (ended != null && ended.exit() != null && ended.exit() == SETUP_FAILED_EXIT
                && output.contains("sandbox setup failed")) {
            outcome = SandboxResult.Outcome.SETUP_FAILED;
            reason = lastLine(output);
        } else if (ended != null && ended.exit() != null && ended.exit() == 0) {
            outcome = SandboxResult.Outcome.PASSED;
            reason = "passed";
        } else if (oom) {
            outcome = SandboxResult.Outcome.MEMORY_LIMIT;
            reason = "memory limit exceeded (" + mib(limits.memoryBytes()) + " for the run)";
        } else {
            outcome = SandboxResult.Outcome.FAILED;
            String last = lastLine(output);
            reason = (ended == null || ended.exit() == null
                    ? "killed by signal " + (ended == null ? "?" : ended.signal()) : "exit code " + ended.exit())
                    + (last.isEmpty() ? "" : ": " + last);
        }
        int code = ended == null ? -1 : ended.exit() != null ? ended.exit() : 128 + ended.signal();
        return new SandboxResult(outcome, code, output, elapsed, runId, reason);
    }

    /** SIGXCPU at the soft limit, or the hard limit's SIGKILL once the CPU time is used up. */
    private boolean cpuLimited(Ended e) {
        return e != null && e.signal() != null
                && (e.signal() == SIGXCPU || e.signal() == SIGKILL && e.cpu() >= limits.cpuSeconds() - 0.05);
    }

    private static String mib(long bytes) {
        return (bytes >> 20) + " MiB";
    }

    private static String seconds(Duration d) {
        long ms = d.toMillis();
        return ms % 1000 == 0 ? ms / 1000 + "s" : ms / 1000.0 + "s";
    }

    /** Last non-blank output line, shortened: usually the exception ("AssertionError", "MemoryError"). */
    static String lastLine(String output) {
        String[] lines = output.strip().split("\n");
        String last = lines.length == 0 ? "" : lines[lines.length - 1].strip();
        return last.length() <= 100 ? last : last.substring(0, 97) + "...";
    }

    private static void deleteTree(Path dir) {
        try (Stream<Path> paths = Files.walk(dir)) {
            paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            // a leftover scratch directory in the temp dir is harmless
        }
    }
}
