package io.tailguard.rollout.tasks;

import java.time.Duration;
import java.util.Objects;

/**
 * Resource limits for one sandboxed program run.
 *
 * @param wallTime       wall-clock limit; on expiry the whole process tree is killed
 * @param cpuSeconds     CPU-time limit per process (RLIMIT_CPU; SIGXCPU at the limit, SIGKILL 1 s later)
 * @param memoryBytes    memory of the whole run (its control group) and address space of each of its
 *                       processes (RLIMIT_AS): allocations beyond it fail
 * @param maxProcesses   processes of the whole run (its control group's pids.max, and RLIMIT_NPROC for
 *                       the run's own user id): fork fails beyond it; without control groups the
 *                       program is a single process whatever this says
 * @param maxOutputBytes stdout and stderr together; the run is killed once more arrives
 * @param maxFileBytes   largest file the program may write (RLIMIT_FSIZE)
 * @param diskBytes      size of the run's scratch directory, a private tmpfs: all files together
 */
public record SandboxLimits(Duration wallTime, int cpuSeconds, long memoryBytes, int maxProcesses,
                            int maxOutputBytes, long maxFileBytes, long diskBytes) {

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
        if (diskBytes < (64L << 10)) {
            throw new IllegalArgumentException("sandbox disk must be >= 64 KiB, got " + diskBytes);
        }
    }

    /** 10 s wall, 5 s CPU, 512 MiB memory, 64 processes, 64 KiB output, 16 MiB files, 64 MiB disk. */
    public static SandboxLimits defaults() {
        return new SandboxLimits(Duration.ofSeconds(10), 5, 512L << 20, 64, 64 << 10, 16L << 20, 64L << 20);
    }
}
