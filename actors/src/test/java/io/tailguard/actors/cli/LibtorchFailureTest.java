package io.tailguard.actors.cli;

import ai.djl.engine.EngineException;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The line for libtorch failing to load, above all the CUDA build on a machine without a driver. */
class LibtorchFailureTest {
    @Test
    void theCudaBuildWithoutADriverSaysSo() {
        // what DJL 0.33 throws there, offline (seen with -Pcuda on a machine without a GPU)
        RuntimeException ex = new IllegalStateException("wrapped", new EngineException("Failed to save pytorch index file"));
        assertTrue(LibtorchFailure.matches(ex));
        assertEquals("libtorch did not load (wrapped): this is the CUDA build (libtorch flavour cu124), which needs an NVIDIA"
                + " driver even for --device cpu; on a machine without one use the default build (docs/gpu.md)",
                LibtorchFailure.line(ex, "cu124"));
        assertEquals("libtorch did not load (Failed to save pytorch index file)",
                LibtorchFailure.line(new EngineException("Failed to save pytorch index file"), "cpu"));
        assertFalse(LibtorchFailure.matches(new IllegalStateException("other")));
    }

    @Test
    void theDefaultBuildBundlesTheCpuNatives() {
        // the test classpath is the build's: the CPU natives by default, cu124 under -Pcuda
        String flavor = LibtorchFailure.bundledFlavor();
        assertTrue("cpu".equals(flavor) || "cu124".equals(flavor), "flavour " + flavor);
    }
}
