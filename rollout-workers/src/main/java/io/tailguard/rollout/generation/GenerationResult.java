package io.tailguard.rollout.generation;

import java.util.List;

/** The sequences, in request order, and where the time went (decode steps exclude the prefill). */
public record GenerationResult(List<Generated> sequences, double prefillSeconds, double decodeSeconds,
                               int decodeSteps) {}
