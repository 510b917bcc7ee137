package io.tailguard.rollout.tasks;

import java.time.Duration;
import java.util.Objects;

/**
 * Resource limits for one sandboxed program run.
 *
 * @param wallTime       wall-clock limit; on expiry the whole process tree is killed
 * @param cpuSeconds     CPU-time limit per process (RLIMIT_CPU; SIGXCPU at the limit, SIGKILL 1 s later)
 * @param memoryBytes    address-space limit per process (RLIMIT_AS): allocations beyond it fail
 * @param maxProcesses   process limit for the sandbox user (RLIMIT_NPROC): fork fails beyond it
 * @param maxOutputBytes stdout and stderr together; the run is killed once more arrives
 * @param maxFileBytes   largest file the program may write (RLIMIT_FSIZE), so the scratch
 *                       directory cannot fill the disk
 */
public record SandboxLimits(Duration wallTime, int cpuSeconds, long memoryBytes, int maxProcesses,
                            int maxOutputBytes, long maxFileBytes) {

    public SandboxLimits {
        Objects.requireNonNull(wallTime, "wallTime");
        if (wallTime.isNegative() || wallTime.isZero()) {
            throw new IllegalArgumentException("sandbox wall time must be > 0, got " + wallTime);
        }
        if (cpuSeconds < 1) {
            throw new IllegalArgumentException("sandbox CPU seconds must be >= 1, got " + cpuSeconds);
        }
        if (memoryBytes < (32L << 20)) {
            throw new IllegalArgumentException("sandbox memory must be >= 32 MiB (python needs it), got " + memoryBytes);
        }
        if (maxProcesses < 1) {
            throw new IllegalArgumentException("sandbox process limit must be >= 1, got " + maxProcesses);
        }
        if (maxOutputBytes < 1) {
            throw new IllegalArgumentException("sandbox output limit must be >= 1 byte, got " + maxOutputBytes);
        }
        if (maxFileBytes < 1) {
            throw new IllegalArgumentException("sandbox file size limit must be >= 1 byte, got " + maxFileBytes);
        }
    }

    /** 10 s wall, 5 s CPU, 512 MiB memory, 64 processes, 64 KiB output, 16 MiB files. */
    public static SandboxLimits defaults() {
        return new SandboxLimits(Duration.ofSeconds(10), 5, 512L << 20, 64, 64 << 10, 16L << 20);
    }
}
