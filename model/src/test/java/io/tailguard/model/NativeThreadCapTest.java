package io.tailguard.model;

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
        assertEquals("threads must be >= 0 (0: no cap), got -1",
                assertThrows(IllegalArgumentException.class, () -> NativeLibraries.limitThreads(-1)).getMessage());
    }
}
