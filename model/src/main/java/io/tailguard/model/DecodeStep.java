package io.tailguard.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * What one decode step attends over: sequence b sees cache positions [0, lengths[b]) (this step's
 * token included); span = max(lengths). {@code mask} is an additive [B, 1, 1, span] mask (0 or
 * -inf) hiding positions past each sequence's length, or null when every length equals span.
 * {@code manager} lives for the whole step: tables a kernel shares across layers belong there
 * (each layer's own temporaries are freed when the layer returns).
 */
public record DecodeStep(int[] lengths, int span, NDArray mask, NDManager manager) {}
