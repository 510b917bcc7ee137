package io.tailguard.rollout.tasks;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Each hostile program must end with a 0 score and a reason, quickly, and leave no process behind.
 * Limits are short so the class runs in seconds.
 */
class PythonSandboxTest {

    static final SandboxLimits TEST_LIMITS =
            new SandboxLimits(Duration.ofSeconds(3), 1, 256L << 20, 16, 16 << 10, 1L << 20, 4L << 20);
    /**
     * For the CPU-limit tests, and tests that must end by another limit than the clock: the same
     * limits with a long wall clock, so that 1 s of CPU is always reached first even on a loaded
     * machine (a busy-looping child may get a fraction of a core).
     */
    static final SandboxLimits CPU_TEST_LIMITS =
            new SandboxLimits(Duration.ofSeconds(60), 1, 256L << 20, 16, 16 << 10, 1L << 20, 4L << 20);
    /** Generous CPU and clock: only the memory, process and disk limits can end these runs. */
    static final SandboxLimits ROOMY_LIMITS =
            new SandboxLimits(Duration.ofSeconds(60), 20, 256L << 20, 16, 16 << 10, 1L << 20, 4L << 20);
    static PythonSandbox sandbox;

    private final List<String> runIds = new ArrayList<>();

    @BeforeAll
    static void probe() {
        sandbox = new PythonSandbox(TEST_LIMITS);
        // These machines run as root with namespaces available; anything else would weaken every test
        // below, so say so loudly instead of passing vacuously.
        assertNotEquals(PythonSandbox.Isolation.NONE, sandbox.isolation(), "no namespaces here");
    }

    private SandboxResult run(String program) {
        return run(sandbox, program);
    }

    private SandboxResult run(PythonSandbox box, String program) {
        SandboxResult r = box.run(program);
        runIds.add(r.runId());
        assertFalse(r.runId().isEmpty());
        return r;
    }

    /** No process whose argv mentions a run of this test (the scratch dir name is in every argv). */
    @AfterEach
    void noStrayProcessesRemain() throws IOException {
        for (String id : runIds) {
            List<String> stray = new ArrayList<>();
            try (Stream<Path> procs = Files.list(Path.of("/proc"))) {
                for (Path p : procs.filter(p -> p.getFileName().toString().matches("\\d+")).toList()) {
                    try {
                        String argv = new String(Files.readAllBytes(p.resolve("cmdline")), StandardCharsets.UTF_8);
                        if (argv.contains(id)) {
                            stray.add(p.getFileName() + ": " + argv.replace('\0', ' '));
                        }
                    } catch (IOException e) {
                        // the process ended while we looked
                    }
                }
            }
            assertEquals(List.of(), stray, "processes of run " + id + " remain");
            assertFalse(Files.exists(Path.of(System.getProperty("java.io.tmpdir"), id)), "scratch dir removed");
        }
    }

    @Test
    void aCorrectSolutionPassesAndAWrongOneFailsWithTheAssertion() {
        String code = "def add(a, b):\n    return a + b\n";
        assertEquals(SandboxResult.Outcome.PASSED, run(code + "assert add(1, 2) == 3\n").outcome());
        SandboxResult wrong = run("def add(a, b):\n    return a - b\nassert add(1, 2) == 3\n");
        assertEquals(SandboxResult.Outcome.FAILED, wrong.outcome());
        assertEquals("exit code 1: AssertionError", wrong.reason());
    }

    @Test
    void theProgramRunsUnderAnUnprivilegedIdOfItsOwnWithTheScratchDirAsCwdHomeAndTmp() {
        SandboxResult r = run("import os, tempfile\n"
                + "assert os.getuid() >= 200000 and os.getgid() == os.getuid() and os.getgroups() == [], os.getuid()\n"
                + "assert os.getcwd() == '/work'\n"
                + "cwd = os.getcwd()\n"
                + "assert os.environ['HOME'] == cwd and tempfile.gettempdir() == cwd\n"
                + "open('scratch.txt', 'w').write('ok')\n"
                + "with tempfile.NamedTemporaryFile() as f: f.write(b'x')\n");
        assertEquals(SandboxResult.Outcome.PASSED, r.outcome(), r.output());
    }

    @Test
    void anInfiniteLoopIsStoppedByTheCpuLimit() {
        SandboxResult r = new PythonSandbox(CPU_TEST_LIMITS).run("while True:\n    pass\n");
        runIds.add(r.runId());
        assertEquals(SandboxResult.Outcome.CPU_LIMIT, r.outcome(), r.reason());
        assertEquals("CPU time limit exceeded (1s)", r.reason());
    }

    @Test
    void aSleepingProgramIsStoppedByTheWallClockLimit() {
        SandboxResult r = run("import time\ntime.sleep(60)\n");
        assertEquals(SandboxResult.Outcome.WALL_TIMEOUT, r.outcome());
        assertEquals("timeout after 3s", r.reason());
    }

    @Test
    void aForkBombIsCappedAndKilledWithAllItsChildren() {
        SandboxResult r = run("import os\nwhile True:\n    try:\n        os.fork()\n    except Exception:\n        pass\n");
        assertTrue(r.outcome() == SandboxResult.Outcome.WALL_TIMEOUT || r.outcome() == SandboxResult.Outcome.CPU_LIMIT,
                r.reason());
        assertFalse(r.passed());
    }

    @Test
    void theProcessLimitMakesForkFailAndBackgroundChildrenDieWithTheRun() {
        SandboxResult r = run("import os, time\nn = 0\nfor i in range(100):\n"
                + "    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
                + "    if pid == 0:\n        time.sleep(60)\n        os._exit(0)\n    n += 1\n"
                + "print('forked', n)\nassert n == 100\n");
        assertEquals(SandboxResult.Outcome.FAILED, r.outcome(), r.output());
        int forked = Integer.parseInt(r.output().replaceAll("(?s).*forked (\\d+).*", "$1"));
        assertTrue(forked < 16, "at most 16 processes for nobody, forked " + forked);
        // the sleeping children are gone: checked by noStrayProcessesRemain
    }

    @Test
    void aMemoryHogFailsWithMemoryError() {
        PythonSandbox roomy = new PythonSandbox(ROOMY_LIMITS);
        SandboxResult r = run(roomy, "chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))\n");
        assertEquals(SandboxResult.Outcome.FAILED, r.outcome(), r.output());
        assertEquals("exit code 1: MemoryError", r.reason());
        SandboxResult big = run(roomy, "x = bytearray(1 << 30)\n");
        assertEquals("exit code 1: MemoryError", big.reason());
    }

    @Test
    void aConnectionToAListeningHostPortIsRefused() throws Exception {
        try (ServerSocket server = new ServerSocket(0, 5, InetAddress.getLoopbackAddress())) {
            server.setSoTimeout(200);
            AtomicInteger accepted = new AtomicInteger();
            SandboxResult r = run("import socket\nsocket.create_connection(('127.0.0.1', " + server.getLocalPort()
                    + "), timeout=2).sendall(b'escaped')\n");
            try (Socket s = server.accept()) {
                accepted.incrementAndGet();
            } catch (SocketTimeoutException expected) {
                // nobody connected
            }
            assertEquals(0, accepted.get(), "the sandbox reached the host's loopback");
            assertEquals(SandboxResult.Outcome.FAILED, r.outcome());
            assertTrue(r.reason().startsWith("exit code 1: OSError") || r.reason().contains("Error"), r.reason());
        }
        SandboxResult outside = run("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)\n");
        assertEquals(SandboxResult.Outcome.FAILED, outside.outcome());
        assertEquals("exit code 1: OSError: [Errno 101] Network is unreachable", outside.reason());
    }

    @Test
    void writesOutsideTheScratchDirectoryFail() {
        String name = "escape-" + UUID.randomUUID();
        for (String target : List.of("/tmp/" + name, "/dev/shm/" + name, "/var/tmp/" + name,
                System.getProperty("user.dir") + "/" + name)) {
            SandboxResult r = run("open('" + target + "', 'w').write('escaped')\n");
            assertEquals(SandboxResult.Outcome.FAILED, r.outcome(), target);
            assertTrue(r.reason().contains("Read-only file system") || r.reason().contains("Permission denied")
                            || r.reason().contains("No such file or directory"), target + ": " + r.reason());
            assertFalse(Files.exists(Path.of(target)), target + " was written");
        }
    }

    @Test
    void printingGigabytesIsCutOffAtTheOutputLimit() {
        SandboxResult r = run(new PythonSandbox(CPU_TEST_LIMITS), "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n");
        assertEquals(SandboxResult.Outcome.OUTPUT_LIMIT, r.outcome());
        assertEquals("output limit exceeded (16384 bytes)", r.reason());
        assertTrue(r.output().length() <= 16 << 10);
    }

    @Test
    void aLargeFileInTheScratchDirIsCappedByTheFileSizeLimit() {
        SandboxResult r = run("open('big', 'wb').write(b'x' * (8 << 20))\n");
        assertEquals(SandboxResult.Outcome.FAILED, r.outcome());
        assertTrue(r.reason().contains("File too large"), r.reason());
    }

    @Test
    void theCodeTaskScoresFencedSolutionsWithTheTests(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("code.jsonl");
        Files.writeString(file, "{\"id\":\"add\",\"problem\":\"Write add(a, b).\",\"tests\":\"assert add(1, 2) == 3\\nassert add(-1, 1) == 0\"}\n");
        DatasetTask code = Tasks.fromDataset("code", file, sandbox);
        Prompt p = code.prompt(0, 0);
        assertEquals(Verdict.correct(), code.verify(p, "Here:\n```python\ndef add(a, b):\n    return a + b\n```\nDone."));
        assertEquals(Verdict.wrong("test 1 failed: assert add(1, 2) == 3"),
                code.verify(p, "```python\ndef add(a, b):\n    return a * b\n```"));
        assertEquals(Verdict.wrong("timeout after 3s"),
                code.verify(p, "```python\nimport time\ntime.sleep(30)\n```"));
    }

    @Test
    void withoutNamespacesRunsAreRefusedUnlessAllowed() {
        PythonSandbox none = new PythonSandbox(TEST_LIMITS, false, PythonSandbox.defaultPython(), PythonSandbox.Isolation.NONE);
        SandboxResult r = none.run("print('hi')\n");
        assertEquals(SandboxResult.Outcome.REFUSED, r.outcome());
        assertTrue(r.reason().startsWith("refused: no network/mount namespace"), r.reason());
        PythonSandbox allowed = new PythonSandbox(TEST_LIMITS, true, PythonSandbox.defaultPython(), PythonSandbox.Isolation.NONE);
        SandboxResult ok = allowed.run("print('hi')\n");
        runIds.add(ok.runId());
        assertEquals(SandboxResult.Outcome.PASSED, ok.outcome(), ok.output());
    }

    /** The mode a non-root deployment gets: namespaces inside a user namespace, capabilities dropped. */
    @Test
    void userNamespaceModeAlsoCutsTheNetworkAndTheFileSystem() {
        PythonSandbox userns = new PythonSandbox(TEST_LIMITS, false, PythonSandbox.defaultPython(),
                PythonSandbox.Isolation.USER_NAMESPACES);
        String name = "/escape-" + UUID.randomUUID();        // the root is read-only: EROFS
        SandboxResult r = userns.run("import os, socket\n"
                + "open('scratch.txt', 'w').write('ok')\n"
                + "try:\n    open('" + name + "', 'w')\n    print('ESCAPED')\nexcept OSError as e:\n    print('fs', e.errno)\n"
                + "try:\n    socket.create_connection(('1.1.1.1', 53), timeout=2)\n    print('NET')\nexcept OSError as e:\n    print('net', e.errno)\n"
                + "try:\n    os.chroot('/work')\n    print('CHROOT')\nexcept OSError as e:\n    print('chroot', e.errno)\n"
                + "import ctypes\nlibc = ctypes.CDLL(None)\n"
                + "print('bounding', sum(libc.prctl(23, c, 0, 0, 0) == 1 for c in range(41)))\n");
        runIds.add(r.runId());
        assertEquals(SandboxResult.Outcome.PASSED, r.outcome(), r.output());
        assertTrue(r.output().contains("fs 30\n"), r.output());          // EROFS
        assertTrue(r.output().contains("net 101\n"), r.output());        // ENETUNREACH
        assertTrue(r.output().contains("chroot 1\n"), r.output());       // EPERM: no CAP_SYS_CHROOT
        assertTrue(r.output().contains("bounding 0\n"), r.output());    // empty bounding set
        assertFalse(Files.exists(Path.of(name)));
        SandboxResult loop = new PythonSandbox(CPU_TEST_LIMITS, false, PythonSandbox.defaultPython(),
                PythonSandbox.Isolation.USER_NAMESPACES).run("while True:\n    pass\n");
        runIds.add(loop.runId());
        assertEquals(SandboxResult.Outcome.CPU_LIMIT, loop.outcome(), loop.reason());
    }

    /**
     * Four children each holding 100 MiB of touched memory, under a 256 MiB cap for the whole run:
     * with a control group at most two can hold theirs at once, so at most two report back; without
     * one, the program is a single process and cannot fork at all.
     */
    @Test
    void theMemoryCapHoldsForTheWholeRunWithSeveralChildren() {
        PythonSandbox roomy = new PythonSandbox(ROOMY_LIMITS);
        SandboxResult r = run(roomy, """
                import os, select
                go_r, go_w = os.pipe()
                ready_r, ready_w = os.pipe()
                done_r, done_w = os.pipe()
                kids = []
                for i in range(4):
                    try:
                        pid = os.fork()
                    except OSError as e:
                        print('fork failed', e.errno)
                        break
                    if pid == 0:
                        block = b'x' * (100 << 20)
                        os.write(ready_w, bytes([i]))
                        os.read(go_r, 1)
                        os.write(done_w, b'1')
                        os._exit(0)
                    kids.append(pid)
                os.close(done_w)
                # every child has allocated or died before any is released: the survivors hold theirs at once
                ready, dead = set(), set()
                while len(ready | dead) < len(kids):
                    if select.select([ready_r], [], [], 0.05)[0]:
                        ready.update(os.read(ready_r, 16))
                    for i, pid in enumerate(kids):
                        if i not in dead and os.waitpid(pid, os.WNOHANG)[0] != 0:
                            dead.add(i)
                for pid in kids:
                    os.write(go_w, b'1')
                for i, pid in enumerate(kids):
                    if i not in dead:
                        os.waitpid(pid, 0)
                print('survivors', len(os.read(done_r, 16)))
                """);
        assertEquals(SandboxResult.Outcome.PASSED, r.outcome(), r.output());
        if (roomy.runCaps(roomy.isolation()).equals("single process")) {
            assertTrue(r.output().contains("fork failed 11"), r.output());
        } else {
            int survivors = Integer.parseInt(r.output().replaceAll("(?s).*survivors (\\d+).*", "$1"));
            assertTrue(survivors >= 1 && survivors <= 2, "4 x 100 MiB held under a 256 MiB run cap: " + r.output());
        }
    }

    /** These machines run as root with a writable memory and pids hierarchy: the caps are per run here. */
    @Test
    void theRunCapsComeFromAControlGroupHere() {
        assertTrue(sandbox.runCaps(sandbox.isolation()).startsWith("cgroup"), sandbox.runCaps(sandbox.isolation()));
    }

    @Test
    void inSingleProcessModeTheProgramCannotForkOrStartAThread() {
        PythonSandbox single = new PythonSandbox(ROOMY_LIMITS, false, PythonSandbox.defaultPython(), null, true);
        assertEquals("single process", single.runCaps(single.isolation()));
        SandboxResult r = run(single, """
                import os, subprocess, threading
                for what, f in [('fork', os.fork), ('thread', lambda: threading.Thread(target=print).start()),
                                ('spawn', lambda: subprocess.run(['/usr/bin/python3.11', '-c', 'pass']))]:
                    try:
                        f()
                        print(what, 'STARTED')
                    except (OSError, RuntimeError) as e:
                        print(what, 'refused')
                """);
        assertEquals(SandboxResult.Outcome.PASSED, r.outcome(), r.output());
        assertEquals("fork refused\nthread refused\nspawn refused\n", r.output());
    }

    /** The scratch directory is a tmpfs of the disk limit (4 MiB here): files under the 1 MiB cap each still run out. */
    @Test
    void theDiskCapHoldsForAllFilesTogether() {
        SandboxResult r = run(new PythonSandbox(ROOMY_LIMITS), """
                n = 0
                try:
                    for i in range(8):
                        with open('f%d' % i, 'wb') as f:
                            f.write(b'x' * ((1 << 20) - 1))
                        n += 1
                except OSError as e:
                    print('stopped', e.errno)
                print('written', n)
                """);
        assertEquals(SandboxResult.Outcome.PASSED, r.outcome(), r.output());
        assertTrue(r.output().contains("stopped 28\n"), r.output());            // ENOSPC
        int written = Integer.parseInt(r.output().replaceAll("(?s).*written (\\d+).*", "$1"));
        assertTrue(written < 4, r.output());
    }

    /** Only the interpreter's files, four devices and /work exist; no host file, directory or socket. */
    @Test
    void noHostFileOrSocketIsReachable(@TempDir Path dir) throws Exception {
        Path socketPath = dir.resolve("host.sock");
        String abstractName = "tailguard-test-" + UUID.randomUUID();
        Process abstractListener = new ProcessBuilder(PythonSandbox.defaultPython(), "-c", """
                import socket, sys
                s = socket.socket(socket.AF_UNIX)
                s.bind('\\0' + sys.argv[1])
                s.listen(8)
                print('ready', flush=True)
                sys.stdin.readline()
                s.setblocking(False)
                try:
                    s.accept()
                    print('ACCEPTED')
                except BlockingIOError:
                    print('none')
                """, abstractName).redirectErrorStream(true).start();
        try (var server = java.nio.channels.ServerSocketChannel.open(java.net.StandardProtocolFamily.UNIX)) {
            server.bind(java.net.UnixDomainSocketAddress.of(socketPath));
            Files.setPosixFilePermissions(socketPath, java.nio.file.attribute.PosixFilePermissions.fromString("rwxrwxrwx"));
            Files.setPosixFilePermissions(dir, java.nio.file.attribute.PosixFilePermissions.fromString("rwxrwxrwx"));
            server.configureBlocking(false);
            var listenerOut = new java.io.BufferedReader(new java.io.InputStreamReader(abstractListener.getInputStream()));
            assertEquals("ready", listenerOut.readLine());
            SandboxResult r = run(new PythonSandbox(ROOMY_LIMITS), """
                    import os, socket
                    print('root', sorted(os.listdir('/')))
                    for p in ['/etc/passwd', '/etc', '/proc', '/sys', '/tmp', '/home', '/root', '/var', '/run', '/usr/local', '/usr/share', '%s']:
                        print(p, os.path.exists(p))
                    for target in ['%s', '\\0%s']:
                        try:
                            socket.socket(socket.AF_UNIX).connect(target)
                            print('CONNECTED')
                        except OSError as e:
                            print('connect', e.errno)
                    seen = set()
                    for top in os.listdir('/'):
                        for d, subdirs, files in os.walk('/' + top):
                            seen.update(os.path.realpath(os.path.join(d, f)) for f in files
                                        if os.path.exists(os.path.join(d, f)))   # dangling links lead nowhere
                    print('files', len(seen))
                    print('outside', sorted(f for f in seen if not (f.startswith('/usr/lib/') or f.startswith('/usr/bin/python')
                          or f.startswith('/dev/') or f.startswith('/work/')))[:5])
                    """.formatted(dir, socketPath, abstractName));
            assertEquals(SandboxResult.Outcome.PASSED, r.outcome(), r.output());
            String out = r.output();
            assertTrue(out.contains("root ['dev', 'lib', 'lib64', 'usr', 'work']\n"), out);
            for (String p : List.of("/etc/passwd", "/etc", "/proc", "/sys", "/tmp", "/home", "/root", "/var", "/run",
                    "/usr/local", "/usr/share", dir.toString())) {
                assertTrue(out.contains(p + " False\n"), p + " is visible: " + out);
            }
            assertEquals(2, out.split("connect ", -1).length - 1, out);
            assertFalse(out.contains("CONNECTED"), out);
            assertTrue(out.contains("outside []\n"), out);
            assertEquals(null, server.accept(), "the sandbox reached a host Unix socket");
            abstractListener.getOutputStream().write('\n');
            abstractListener.getOutputStream().flush();
            assertEquals("none", listenerOut.readLine(), "the sandbox reached a host abstract socket");
        } finally {
            abstractListener.destroyForcibly().waitFor();
        }
    }
}
