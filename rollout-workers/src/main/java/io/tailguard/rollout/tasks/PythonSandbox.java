package io.tailguard.rollout.tasks;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;

/**
 * Runs an untrusted Python program under python3 with limits, for the {@code code} verifier.
 *
 * <p>How each limit is enforced (see {@link #LAUNCHER}, a small Python script that runs first):
 * <ul>
 *   <li>Process group and cleanup: the run starts under {@code setsid} (own session and process
 *       group) and {@code unshare --pid --fork --kill-child}: the launcher is process 1 of a new PID
 *       namespace, so when it dies the kernel kills every process of the run, including ones that
 *       forked, double-forked or called setsid. On a timeout the JVM kills that process tree and
 *       waits until {@code unshare} has reaped the namespace.</li>
 *   <li>No network: {@code unshare --net}, a new network namespace with only a downed loopback.</li>
 *   <li>Files: {@code unshare --mount}; the launcher remounts the whole tree read-only
 *       (mount_setattr, recursive) except the fresh scratch directory, which is cwd, HOME and TMPDIR.
 *       RLIMIT_FSIZE caps each file written there.</li>
 *   <li>Privileges: run as root (as on these machines), the launcher drops to nobody (65534) with
 *       no groups, so RLIMIT_NPROC is enforced (it is not for root) and the read-only mounts cannot
 *       be undone. Run as another user, the namespaces come from {@code unshare --user
 *       --map-root-user} and the launcher empties the capability bounding set and sets
 *       no_new_privs instead.</li>
 *   <li>CPU and memory: RLIMIT_CPU (SIGXCPU, then SIGKILL a second later) and RLIMIT_AS.</li>
 *   <li>Wall clock and output: the JVM waits at most the wall time and reads at most the output
 *       limit of stdout+stderr, killing the run as soon as either is exceeded.</li>
 * </ul>
 * If no namespaces can be created here, runs are refused (scored 0 with the reason) unless the
 * sandbox was built with {@code allowUnisolated}, in which case only the rlimits, the user change
 * and the process group apply; never do that with untrusted code on a shared machine.
 */
public final class PythonSandbox {

    /** How runs are isolated on this machine, found by a probe run. */
    public enum Isolation {
        /** Running as root: new net, mount and PID namespaces; the program runs as nobody. */
        ROOT_NAMESPACES,
        /** Not root: the same namespaces inside a new user namespace; capabilities dropped. */
        USER_NAMESPACES,
        /** No namespace could be created: limits and process group only. */
        NONE
    }

    static final int NOBODY = 65534;
    private static final int SETUP_FAILED_EXIT = 125;
    private static final int SIGXCPU = 24;

    /** Runs as root of the new namespaces, locks the file system, then runs the program unprivileged. */
    static final String LAUNCHER = """
            import ctypes, os, resource, sys
            work, uid, cpu, mem, nproc, fsize, isolate = sys.argv[1], *map(int, sys.argv[2:8])
            prog = sys.argv[8:]
            libc = ctypes.CDLL(None, use_errno=True)
            def check(rc, what):
                if rc != 0:
                    sys.stderr.write("sandbox setup failed: %s: %s\\n" % (what, os.strerror(ctypes.get_errno())))
                    sys.exit(125)
            class MountAttr(ctypes.Structure):
                _fields_ = [("set", ctypes.c_uint64), ("clr", ctypes.c_uint64),
                            ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]
            def setattr_mount(path, flags, attr):
                return libc.syscall(442, -100, path.encode(), flags, ctypes.byref(attr), ctypes.sizeof(attr))
            if isolate:
                MS_BIND, MS_REC, MS_PRIVATE, AT_RECURSIVE, RDONLY = 4096, 16384, 262144, 0x8000, 1
                check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make mounts private")
                check(libc.mount(work.encode(), work.encode(), None, MS_BIND, None), "bind scratch dir")
                check(setattr_mount("/", AT_RECURSIVE, MountAttr(RDONLY, 0, 0, 0)), "remount / read-only")
                check(setattr_mount(work, 0, MountAttr(0, RDONLY, 0, 0)), "keep scratch dir writable")
            if uid >= 0:
                os.chown(work, uid, uid)
                os.chown(os.path.join(work, "main.py"), uid, uid)
            pid = os.fork()
            if pid == 0:
                try:
                    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
                    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
                    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
                    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
                    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
                    if uid >= 0:
                        os.setgroups([]); os.setgid(uid); os.setuid(uid)
                    else:
                        for cap in range(64):
                            libc.prctl(24, cap, 0, 0, 0)      # PR_CAPBSET_DROP; EINVAL past the last cap
                        check(libc.prctl(38, 1, 0, 0, 0), "set no_new_privs")
                    os.chdir(work)
                    os.execve(prog[0], prog, {"HOME": work, "TMPDIR": work, "PATH": "/usr/bin:/bin",
                                              "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"})
                except OSError as e:
                    sys.stderr.write("sandbox setup failed: %s\\n" % e)
                    os._exit(125)
            _, status, usage = os.wait4(pid, 0)
            if os.WIFEXITED(status):
                sys.exit(os.WEXITSTATUS(status))
            sig = os.WTERMSIG(status)
            if sig == 9 and usage.ru_utime + usage.ru_stime >= cpu - 0.05:
                sig = 24                                      # the hard CPU limit's SIGKILL: report SIGXCPU
            sys.exit(128 + sig)
            """;

    private static final ConcurrentHashMap<String, Isolation> PROBED = new ConcurrentHashMap<>();

    private final SandboxLimits limits;
    private final boolean allowUnisolated;
    private final String python;
    private final Isolation forced;   // null: probe; set only by tests of a mode this machine does not pick

    /** A sandbox that refuses to run where no namespaces can be created, using /usr/bin/python3. */
    public PythonSandbox(SandboxLimits limits) {
        this(limits, false, defaultPython());
    }

    /**
     * @param allowUnisolated run even where no namespaces can be created (no network or file system
     *                        isolation then); off by default
     * @param python          absolute path of the interpreter; it must be readable by nobody
     */
    public PythonSandbox(SandboxLimits limits, boolean allowUnisolated, String python) {
        this(limits, allowUnisolated, python, null);
    }

    PythonSandbox(SandboxLimits limits, boolean allowUnisolated, String python, Isolation forced) {
        this.limits = Objects.requireNonNull(limits, "limits");
        this.allowUnisolated = allowUnisolated;
        this.python = Objects.requireNonNull(python, "python");
        this.forced = forced;
    }

    /** /usr/bin/python3 where it exists: interpreters under /root (pyenv) are unreadable for nobody. */
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

    private Isolation probe() {
        Isolation wanted = isRoot() ? Isolation.ROOT_NAMESPACES : Isolation.USER_NAMESPACES;
        SandboxResult r = execute("pass\n", wanted);
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
        Isolation isolation = isolation();
        if (isolation == Isolation.NONE && !allowUnisolated) {
            return new SandboxResult(SandboxResult.Outcome.REFUSED, -1, "", Duration.ZERO, "",
                    "refused: no network/mount namespace available for the sandbox (allow-unisolated is off)");
        }
        return execute(program, isolation);
    }

    private List<String> command(Path work, Isolation isolation) {
        List<String> cmd = new ArrayList<>(List.of("setsid"));
        switch (isolation) {
            case ROOT_NAMESPACES -> cmd.addAll(List.of("unshare", "--net", "--mount", "--pid", "--fork",
                    "--kill-child", "--mount-proc"));
            case USER_NAMESPACES -> cmd.addAll(List.of("unshare", "--user", "--map-root-user", "--net",
                    "--mount", "--pid", "--fork", "--kill-child", "--mount-proc"));
            case NONE -> { }
        }
        int uid = isolation == Isolation.USER_NAMESPACES || !isRoot() ? -1 : NOBODY;
        cmd.addAll(List.of(python, "-I", "-c", LAUNCHER, work.toString(), Integer.toString(uid),
                Integer.toString(limits.cpuSeconds()), Long.toString(limits.memoryBytes()),
                Integer.toString(limits.maxProcesses()), Long.toString(limits.maxFileBytes()),
                isolation == Isolation.NONE ? "0" : "1",
                python, "-I", "-B", work.resolve("main.py").toString()));
        return cmd;
    }

    private SandboxResult execute(String program, Isolation isolation) {
        Path work;
        try {
            work = Files.createTempDirectory("tailguard-sandbox-");
            Files.writeString(work.resolve("main.py"), program, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the sandbox scratch directory", e);
        }
        String runId = work.getFileName().toString();
        long start = System.nanoTime();
        try {
            ProcessBuilder pb = new ProcessBuilder(command(work, isolation))
                    .directory(work.toFile())
                    .redirectErrorStream(true)
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
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
            return classify(exit, !finished, outputExceeded.get(), output, elapsed, runId);
        } finally {
            deleteTree(work);
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

    private SandboxResult classify(int exit, boolean timedOut, boolean outputExceeded, String output,
                                   Duration elapsed, String runId) {
        SandboxResult.Outcome outcome;
        String reason;
        if (outputExceeded) {
            outcome = SandboxResult.Outcome.OUTPUT_LIMIT;
            reason = "output limit exceeded (" + limits.maxOutputBytes() + " bytes)";
        } else if (timedOut) {
            outcome = SandboxResult.Outcome.WALL_TIMEOUT;
            reason = "timeout after " + seconds(limits.wallTime());
        } else if (exit == 0) {
            outcome = SandboxResult.Outcome.PASSED;
            reason = "passed";
        } else if (exit == 128 + SIGXCPU) {
            outcome = SandboxResult.Outcome.CPU_LIMIT;
            reason = "CPU time limit exceeded (" + limits.cpuSeconds() + "s)";
        } else if (exit == SETUP_FAILED_EXIT && output.contains("sandbox setup failed")) {
            outcome = SandboxResult.Outcome.SETUP_FAILED;
            reason = lastLine(output);
        } else {
            outcome = SandboxResult.Outcome.FAILED;
            String last = lastLine(output);
            reason = (exit > 128 ? "killed by signal " + (exit - 128) : "exit code " + exit)
                    + (last.isEmpty() ? "" : ": " + last);
        }
        return new SandboxResult(outcome, exit, output, elapsed, runId, reason);
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
