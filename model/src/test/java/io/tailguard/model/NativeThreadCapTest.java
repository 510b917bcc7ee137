package io.tailguard.model;

import ai.djl.pytorch.jni.JniUtils;
import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** A thread's cap on its native calls' threads: scoped, nested, and this thread's only. */
class NativeThreadCapTest {
    @Test
    void aCapHoldsInItsScopeOnItsThreadAndIsLiftedAfter() throws Exception {
        int all = NativeLibraries.threads();
        try (NativeLibraries.ThreadCap one = NativeLibraries.limitThreads(1)) {
            assertEquals(1, NativeLibraries.threads());
            // another thread is not capped
            AtomicInteger seen = new AtomicInteger();
            Thread t = new Thread(() -> seen.set(NativeLibraries.threads()));
            t.start();
            t.join();
            assertEquals(all, seen.get());
            // nested: the inner cap, then the outer one again; 0 lifts it inside
            try (NativeLibraries.ThreadCap none = NativeLibraries.limitThreads(0)) {
                assertEquals(all, NativeLibraries.threads());
            }
            assertEquals(1, NativeLibraries.threads());
        }
        assertEquals(all, NativeLibraries.threads());
        // a cap above what the process has gives what it has
        try (NativeLibraries.ThreadCap many = NativeLibraries.limitThreads(all + 7)) {
            assertEquals(all, NativeLibraries.threads());
        }
    }

    @Test
    void aCapAlsoHoldsLibtorchsThreadsOnItsThreadOnly() throws Exception {
        int all = NativeLibraries.threads();
        org.junit.jupiter.api.Assumptions.assumeTrue(all > 1, "one processor: nothing to cap");
        ai.djl.engine.Engine.getEngine("PyTorch");
        int before = JniUtils.getNumThreads();
        // a thread that has run libtorch before the cap keeps its own threads through it
        java.util.concurrent.CountDownLatch started = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch capped = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch read = new java.util.concurrent.CountDownLatch(1);
        AtomicInteger other = new AtomicInteger();
        Thread t = new Thread(() -> {
            // the latches fall in finally: a failure here fails the assertion below rather than hanging the test
            try {
                JniUtils.setNumThreads(all);
                int own = JniUtils.getNumThreads();
                started.countDown();
                capped.await();
                other.set(JniUtils.getNumThreads() == own ? own : -own);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } finally {
                started.countDown();
                read.countDown();
            }
        });
        t.setDaemon(true);
        t.start();
        started.await();
        try (NativeLibraries.ThreadCap one = NativeLibraries.limitThreads(1)) {
            assertEquals(1, JniUtils.getNumThreads());
            try (NativeLibraries.ThreadCap none = NativeLibraries.limitThreads(0)) {
                assertEquals(all, JniUtils.getNumThreads(), "0 lifts the cap inside");
            }
            assertEquals(1, JniUtils.getNumThreads());
            capped.countDown();
            read.await();
        }
        t.join();
        assertEquals(all, other.get(), "the other thread's libtorch threads are its own");
        assertEquals(all, JniUtils.getNumThreads(), "lifted: every thread the process may use");
        // a thread whose libtorch started with a count of 1 (another thread's cap) gets them all after a cap of its own
        JniUtils.setNumThreads(1);
        try (NativeLibraries.ThreadCap one = NativeLibraries.limitThreads(1)) {
            assertEquals(1, JniUtils.getNumThreads());
        }
        assertEquals(all, JniUtils.getNumThreads());
        JniUtils.setNumThreads(before);
    }

    @Test
    void badCapsAreRefused() {
        assertEquals("threads must be >= 0 (0: no cap), got -1",
                assertThrows(IllegalArgumentException.class, () -> NativeLibraries.limitThreads(-1)).getMessage());
    }
}
