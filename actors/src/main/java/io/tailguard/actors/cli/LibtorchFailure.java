package io.tailguard.actors.cli;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;

/**
 * The one line for libtorch failing to load. The usual cause is the CUDA build ({@code mvn -Pcuda})
 * on a machine without a CUDA driver: DJL then looks for CPU natives of the same libtorch, finds none
 * bundled, and, offline, fails with an error about its index file that names neither cause nor remedy.
 */
final class LibtorchFailure {
    private LibtorchFailure() {
    }

    /** Whether {@code ex} is DJL's engine failing to start (libtorch or its JNI not loaded). */
    static boolean matches(Throwable ex) {
        for (Throwable t = ex; t != null; t = t.getCause()) {
            if (t.getClass().getName().equals("ai.djl.engine.EngineException")) {
                return true;
            }
        }
        return false;
    }

    /** The line for a failure, given the flavour of the bundled natives (cpu, cu124, ...; null if unknown). */
    static String line(Throwable ex, String flavor) {
        String why = ex.getMessage() == null ? ex.getClass().getSimpleName() : ex.getMessage().replace('\n', ' ').strip();
        String head = "libtorch did not load (" + why + ")";
        if (flavor != null && flavor.startsWith("cu")) {
            return head + ": this is the CUDA build (libtorch flavour " + flavor + "), which needs an NVIDIA driver"
                    + " even for --device cpu; on a machine without one use the default build (docs/gpu.md)";
        }
        return head;
    }

    /** The flavour of the libtorch natives on the classpath (DJL's native/lib/pytorch.properties), or null. */
    static String bundledFlavor() {
        try (InputStream in = LibtorchFailure.class.getClassLoader().getResourceAsStream("native/lib/pytorch.properties")) {
            if (in == null) {
                return null;
            }
            Properties p = new Properties();
            p.load(in);
            return p.getProperty("flavor");
        } catch (IOException e) {
            return null;
        }
    }
}
