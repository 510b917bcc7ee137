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
            new SandboxLimits(Duration.ofSeconds(3), 1, 256L << 20, 16, 16 << 10, 1L << 20);
    /**
     * For the CPU-limit tests: the same limits with a long wall clock, so that 1 s of CPU is always
     * reached first even on a loaded machine (a busy-looping child may get a fraction of a core).
     */
    static final SandboxLimits CPU_TEST_LIMITS =
            new SandboxLimits(Duration.ofSeconds(60), 1, 256L << 20, 16, 16 << 10, 1L << 20);
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
        SandboxResult r = sandbox.run(program);
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
    void theProgramRunsAsNobodyWithTheScratchDirAsCwdHomeAndTmp() {
        SandboxResult r = run("import os, tempfile\n"
                + "assert os.getuid() == 65534 and os.getgid() == 65534, os.getuid()\n"
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
        long t0 = System.nanoTime();
        SandboxResult r = run("import time\ntime.sleep(60)\n");
        assertEquals(SandboxResult.Outcome.WALL_TIMEOUT, r.outcome());
        assertEquals("timeout after 3s", r.reason());
        assertTrue(System.nanoTime() - t0 < 8_000_000_000L, "killed promptly");
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
        SandboxResult r = run("chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))\n");
        assertEquals(SandboxResult.Outcome.FAILED, r.outcome(), r.output());
        assertEquals("exit code 1: MemoryError", r.reason());
        SandboxResult big = run("x = bytearray(1 << 30)\n");
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
            assertTrue(r.reason().contains("Read-only file system") || r.reason().contains("Permission denied"),
                    target + ": " + r.reason());
            assertFalse(Files.exists(Path.of(target)), target + " was written");
        }
    }

    @Test
    void printingGigabytesIsCutOffAtTheOutputLimit() {
        long t0 = System.nanoTime();
        SandboxResult r = run("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n");
        assertEquals(SandboxResult.Outcome.OUTPUT_LIMIT, r.outcome());
        assertEquals("output limit exceeded (16384 bytes)", r.reason());
        assertTrue(r.output().length() <= 16 << 10);
        assertTrue(System.nanoTime() - t0 < 3_000_000_000L, "stopped before the wall clock limit");
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
        assertEquals(Verdict.wrong("exit code 1: AssertionError"),
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
        String name = "/tmp/escape-" + UUID.randomUUID();
        SandboxResult r = userns.run("import os, socket\n"
                + "open('scratch.txt', 'w').write('ok')\n"
                + "try:\n    open('" + name + "', 'w')\n    print('ESCAPED')\nexcept OSError as e:\n    print('fs', e.errno)\n"
                + "try:\n    socket.create_connection(('1.1.1.1', 53), timeout=2)\n    print('NET')\nexcept OSError as e:\n    print('net', e.errno)\n"
                + "caps = [l for l in open('/proc/self/status') if l.startswith('CapEff')][0]\n"
                + "print(caps.strip())\n");
        runIds.add(r.runId());
        assertEquals(SandboxResult.Outcome.PASSED, r.outcome(), r.output());
        assertTrue(r.output().contains("fs 30\n"), r.output());          // EROFS
        assertTrue(r.output().contains("net 101\n"), r.output());        // ENETUNREACH
        assertTrue(r.output().contains("CapEff:\t0000000000000000"), r.output());
        assertFalse(Files.exists(Path.of(name)));
        SandboxResult loop = new PythonSandbox(CPU_TEST_LIMITS, false, PythonSandbox.defaultPython(),
                PythonSandbox.Isolation.USER_NAMESPACES).run("while True:\n    pass\n");
        runIds.add(loop.runId());
        assertEquals(SandboxResult.Outcome.CPU_LIMIT, loop.outcome(), loop.reason());
    }
}
