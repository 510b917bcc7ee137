package io.tailguard.model;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The native kernels' copy of the page size must be KvCache.PAGE, or they do not load. */
class NativePageTest {
    @Test
    void aLibraryBuiltWithAnotherPageIsNotLoaded() {
        assertNull(NativeLibraries.pageReason("lib.so", () -> KvCache.PAGE));
        String reason = NativeLibraries.pageReason("lib.so", () -> 2 * KvCache.PAGE);
        assertTrue(reason.contains("lib.so") && reason.contains("pages of " + 2 * KvCache.PAGE + " tokens")
                && reason.contains("KvCache.PAGE is " + KvCache.PAGE), reason);
        String old = NativeLibraries.pageReason("lib.so", () -> {
            throw new UnsatisfiedLinkError("pageSize");
        });
        assertTrue(old.contains("lib.so") && old.contains("no page size"), old);
    }

    /**
     * The library is copied out of the jar to a temporary file and loaded from it; the file is deleted
     * at once (the mapping stays), so a JVM that is killed leaves no copy behind: this process maps it
     * from a path the kernel marks deleted.
     */
    @Test
    void theLoadedLibrarysTemporaryFileIsGoneAlready() throws Exception {
        Assumptions.assumeTrue(NativeDecode.LIBRARY.loaded(), () -> "native decode layer not loaded: " + NativeDecode.LIBRARY.unavailableReason());
        java.util.List<String> mapped = java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/maps")).stream()
                .filter(l -> l.contains("tailguard-native")).toList();
        assertTrue(!mapped.isEmpty(), "the loaded library is mapped from a tailguard-native*.so copy");
        for (String l : mapped) {
            assertTrue(l.endsWith("(deleted)"), l);
        }
    }

    @Test
    void theDecodeLayerWasBuiltWithKvCachePage() {
        Assumptions.assumeTrue(NativeDecode.LIBRARY.loaded(), () -> "native decode layer not loaded: " + NativeDecode.LIBRARY.unavailableReason());
        assertEquals(KvCache.PAGE, NativeDecode.pageSize());
    }
}
