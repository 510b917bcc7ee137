package io.tailguard.learner;

/** Linear warm-up to the peak rate, then cosine decay to minRatio × peak at totalSteps. */
public record LrSchedule(double peak, int warmupSteps, int totalSteps, double minRatio) {
    public LrSchedule {
        if (!(peak > 0) || warmupSteps < 0 || totalSteps < 1 || !(minRatio >= 0 && minRatio <= 1)) {
            throw new IllegalArgumentException("bad learning-rate schedule: peak " + peak + ", warm-up " + warmupSteps
                    + ", total " + totalSteps + ", min ratio " + minRatio);
        }
    }

    /**
     * The same shape (warm-up, decay, total, min ratio) with another peak: every rate is scaled by
     * newPeak / peak. A live change of the learning rate uses it from the next step on.
     */
    public LrSchedule withPeak(double newPeak) {
        return new LrSchedule(newPeak, warmupSteps, totalSteps, minRatio);
    }

    /** The rate of step s (1-based). */
    public double at(int step) {
        if (step <= warmupSteps) {
            return peak * step / Math.max(1, warmupSteps);
        }
        double progress = Math.min(1.0, (double) (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
        double cosine = 0.5 * (1 + Math.cos(Math.PI * progress));
        return peak * (minRatio + (1 - minRatio) * cosine);
    }
}
