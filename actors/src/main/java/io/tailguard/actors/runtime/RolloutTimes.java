package io.tailguard.actors.runtime;

import java.util.List;

/**
 * A run's rollout time, from every lease's {@link RunObserver.Rollout} (docs/reference.md, train):
 * <ul>
 *   <li>speedup: over the leases that measured it, the sum of their dense decode-step seconds over
 *       the sum of their live ones (the same tokens decoded in lockstep under the live schedule and
 *       densely, alternating step by step), so long leases weigh more, as they do in the run;</li>
 *   <li>wallSpeedup: the same leases' whole generation, prefill and sampling included: the prefill
 *       plus the dense decode steps plus the sampling, over the prefill plus the live decode steps
 *       plus the sampling. The prefill is dense in both modes (the schedule applies to decode), so
 *       both sides count the mean of the two caches' prefills (the first one runs colder); the
 *       sampling is the lease's decode loop less its live steps, the same work in either mode;</li>
 *   <li>predictedSpeedup: the cost model's dense over live seconds for the same decode steps;</li>
 *   <li>decodeFraction: over every lease, decode seconds over prefill and decode seconds;</li>
 *   <li>the rollout workers' seconds by phase, summed over every lease: generationSeconds (the
 *       generation less the measured leases' dense reference), referenceSeconds (that reference),
 *       scoringSeconds (the dense teacher-forced scoring) and shadowSeconds (the shadow replays).</li>
 * </ul>
 * NaN where no lease counts.
 */
public record RolloutTimes(int measurements, double speedup, double wallSpeedup, double predictedSpeedup, double decodeFraction,
                           double generationSeconds, double referenceSeconds, double scoringSeconds, double shadowSeconds) {

    /** {@link #of} for each rollout option apart ({@link RunObserver.Rollout#option}), in the order first seen. */
    public static java.util.Map<String, RolloutTimes> byOption(List<RunObserver.Rollout> rollouts) {
        java.util.Map<String, List<RunObserver.Rollout>> groups = new java.util.LinkedHashMap<>();
        for (RunObserver.Rollout r : rollouts) {
            groups.computeIfAbsent(r.option(), k -> new java.util.ArrayList<>()).add(r);
        }
        java.util.Map<String, RolloutTimes> out = new java.util.LinkedHashMap<>();
        groups.forEach((k, v) -> out.put(k, of(v)));
        return out;
    }

    public static RolloutTimes of(List<RunObserver.Rollout> rollouts) {
        int n = 0;
        double dense = 0;
        double live = 0;
        double denseWall = 0;
        double liveWall = 0;
        double predictedDense = 0;
        double predictedLive = 0;
        double prefill = 0;
        double decode = 0;
        double generation = 0;
        double reference = 0;
        double scoring = 0;
        double shadow = 0;
        for (RunObserver.Rollout r : rollouts) {
            prefill += r.prefillSeconds();
            decode += r.decodeSeconds();
            reference += r.referenceSeconds();
            generation += Math.max(0, r.generateSeconds() - r.referenceSeconds());
            scoring += r.scoreSeconds();
            shadow += r.shadowSeconds();
            if (!r.measured()) {
                continue;
            }
            n++;
            dense += r.denseStepSeconds();
            live += r.liveStepSeconds();
            double sampling = Math.max(0, r.decodeSeconds() - r.liveStepSeconds());
            double prefillBoth = (r.prefillSeconds() + r.densePrefillSeconds()) / 2;
            denseWall += prefillBoth + r.denseStepSeconds() + sampling;
            liveWall += prefillBoth + r.liveStepSeconds() + sampling;
            predictedDense += r.predictedDenseSeconds();
            predictedLive += r.predictedLiveSeconds();
        }
        return new RolloutTimes(n, n == 0 ? Double.NaN : dense / live, n == 0 ? Double.NaN : denseWall / liveWall,
                n == 0 ? Double.NaN : predictedDense / predictedLive,
                prefill + decode > 0 ? decode / (prefill + decode) : Double.NaN, generation, reference, scoring, shadow);
    }
}
