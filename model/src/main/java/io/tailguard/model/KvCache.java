package io.tailguard.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;

import java.util.Arrays;

/**
 * A paged key/value cache for a batch of sequences.
 *
 * <p>Each sequence owns a run of pages of {@link #PAGE} tokens; page p holds positions
 * [p·PAGE, (p + 1)·PAGE). Per layer, keys and values live in one tensor [B, kvHeads, capacity, D] so
 * that dense attention reads a sequence's pages as one contiguous slice, and a sparse kernel
 * addresses them by page index. Every full page keeps its landmark, the mean of its (post-RoPE) keys,
 * in [B, kvHeads, capacity / PAGE, D]; a landmark is computed when its page fills, so it is always the
 * mean of exactly the PAGE keys the page holds. The partial last page has no landmark: sparse
 * attention always keeps the most recent pages, so it never needs one.
 *
 * <p>Keys and values are float32, or float16 where the cache is made so ({@link #KvCache(NDManager,
 * ModelConfig, int, int, DataType)}): half the bytes for every decode step to read, each value rounded
 * to nearest even when it is written (saturated at float16's ±65504), and attention computed in
 * float32 over the values as stored. Landmarks are float32 either way (the mean of the stored keys).
 *
 * <p>Sequences may have different lengths. Positions at or beyond a sequence's length hold
 * whatever padding wrote there; attention masks them, and decode overwrites them in order.
 */
public final class KvCache implements AutoCloseable {
    /**
     * Tokens per page: the one definition of the page size. Budgets, bins, the sparse kernel, its
     * mask and the cost model all use this constant; the native kernels, which need a C constant,
     * have a copy in src/main/c/tg_page.h that {@link NativeLibraries#load} checks against this one.
     */
    public static final int PAGE = 16;

    private final NDManager manager;
    private final int batch;
    private final int kvHeads;
    private final int headDim;
    private final int capacity;
    private final NDArray[] keys;      // per layer [B, kvHeads, capacity, D]
    private final NDArray[] values;    // per layer [B, kvHeads, capacity, D]
    private final NDArray[] landmarks; // per layer [B, kvHeads, capacity / PAGE, D]
    private final NDArray[] keyRows;   // per layer, views of keys [B * kvHeads * capacity / PAGE, PAGE * D]
    private final NDArray[] valueRows; // per layer, views of values, laid out the same
    private final int[] lengths;       // tokens held per sequence
    private final NDArray batchRows;   // int64 [0, B), the row index of every decode write
    private final DataType type;       // of keys and values: FLOAT32 or FLOAT16

    /** A float32 cache. */
    public KvCache(NDManager parent, ModelConfig config, int batch, int maxTokens) {
        this(parent, config, batch, maxTokens, DataType.FLOAT32);
    }

    /** A cache whose keys and values are {@code type}: FLOAT32 or FLOAT16. */
    public KvCache(NDManager parent, ModelConfig config, int batch, int maxTokens, DataType type) {
        if (type != DataType.FLOAT32 && type != DataType.FLOAT16) {
            throw new IllegalArgumentException("a KV cache holds float32 or float16, not " + type);
        }
        this.type = type;
        this.manager = parent.newSubManager();
        this.batch = batch;
        this.kvHeads = config.numKvHeads();
        this.headDim = config.headDim();
        this.capacity = ceilToPage(Math.max(1, maxTokens));
        int layers = config.numLayers();
        this.keys = new NDArray[layers];
        this.values = new NDArray[layers];
        this.landmarks = new NDArray[layers];
        this.keyRows = new NDArray[layers];
        this.valueRows = new NDArray[layers];
        long rows = (long) batch * kvHeads * (capacity / PAGE);
        for (int l = 0; l < layers; l++) {
            keys[l] = manager.zeros(new Shape(batch, kvHeads, capacity, headDim), type);
            values[l] = manager.zeros(new Shape(batch, kvHeads, capacity, headDim), type);
            landmarks[l] = manager.zeros(new Shape(batch, kvHeads, capacity / PAGE, headDim), DataType.FLOAT32);
            keyRows[l] = keys[l].reshape(rows, (long) PAGE * headDim);
            valueRows[l] = values[l].reshape(rows, (long) PAGE * headDim);
        }
        this.lengths = new int[batch];
        this.batchRows = manager.arange(0, batch, 1, DataType.INT64);
    }

    /** The smallest page multiple at least {@code tokens} (tokens ≥ 0). */
    public static int ceilToPage(int tokens) {
        return (int) (((long) tokens + PAGE - 1) / PAGE * PAGE);
    }

    public int batch() {
        return batch;
    }

    public int capacity() {
        return capacity;
    }

    public int numKvHeads() {
        return kvHeads;
    }

    public int headDim() {
        return headDim;
    }

    public int layers() {
        return keys.length;
    }

    /** The element type of keys and values: FLOAT32 or FLOAT16. */
    public DataType dataType() {
        return type;
    }

    /** Whether keys and values are stored as float16. */
    public boolean float16() {
        return type == DataType.FLOAT16;
    }

    /** a as float32: itself if it is, else a float32 copy (attached to a's manager). */
    public static NDArray widened(NDArray a) {
        return a.getDataType() == DataType.FLOAT32 ? a : a.toType(DataType.FLOAT32, false);
    }

    private NDArray stored(NDArray a) {
        return a.getDataType() == type ? a : a.clip(-F16_MAX, F16_MAX).toType(type, false);
    }

    private static final float F16_MAX = 65504f;

    /** Tokens held by sequence b. */
    public int length(int b) {
        return lengths[b];
    }

    public int[] lengths() {
        return lengths.clone();
    }

    int maxLength() {
        return Arrays.stream(lengths).max().orElse(0);
    }

    /** Full pages of sequence b, i.e. pages that have a landmark. */
    int fullPages(int b) {
        return lengths[b] / PAGE;
    }

    /** Keys of one layer, [B, kvHeads, capacity, D]. Read only: writes go through this class. */
    public NDArray keys(int layer) {
        return keys[layer];
    }

    public NDArray values(int layer) {
        return values[layer];
    }

    /**
     * Gathers whole key pages of one layer by row: page p of sequence b, KV head h is row
     * (b * kvHeads + h) * capacity/16 + p. {@code rows} is int64 of any shape S; returns the keys as
     * [S..., PAGE * D] (token-major within a page), attached to rows' manager. Only those pages are read.
     * {@link #gatherValuePages} takes the same rows; a kernel can use one gather before it makes the
     * other, so that only one copy is alive at a time.
     *
     * <p>The pages are the rows of an embedding table (a view of the cache made once, no copy): libtorch's
     * embedding is an index_select along dim 0, which copies each 4 KB page with one memcpy, where
     * advanced indexing ({@code get("{}", rows)}) copies element by element and ran at a tenth of the
     * memory bandwidth.
     */
    public NDArray gatherKeyPages(int layer, NDArray rows) {
        return gatherRows(keyRows[layer], rows);
    }

    /** The value pages of the same rows as {@link #gatherKeyPages}, [S..., PAGE * D]. */
    public NDArray gatherValuePages(int layer, NDArray rows) {
        return gatherRows(valueRows[layer], rows);
    }

    private static NDArray gatherRows(NDArray table, NDArray rows) {
        return rows.getNDArrayInternal().embedding(rows, table, SparseFormat.DENSE).singletonOrThrow();
    }

    /** Page landmarks of one layer, [B, kvHeads, capacity / PAGE, D]; valid for full pages only. */
    public NDArray landmarks(int layer) {
        return landmarks[layer];
    }

    void checkRoom(int b, int extra) {
        if (lengths[b] + extra > capacity) {
            throw new IllegalStateException("KV cache full: sequence " + b + " holds " + lengths[b]
                    + " tokens, capacity " + capacity);
        }
    }

    /** Writes keys/values [B, kvHeads, T, D] at positions [start, start + T) of every sequence. */
    void writeRange(int layer, int start, NDArray k, NDArray v) {
        int t = (int) k.getShape().get(2);
        if (start + t > capacity) {
            throw new IllegalStateException("KV cache full: writing up to " + (start + t) + " of " + capacity);
        }
        NDIndex idx = new NDIndex(":, :, {}:{}", start, start + t);
        keys[layer].set(idx, stored(k));
        values[layer].set(idx, stored(v));
    }

    /**
     * Writes one key/value per sequence [B, kvHeads, D] at position {@code positions[b]}
     * (given both as an int64 tensor and as Java ints), then refreshes the landmark of every page
     * this write completes.
     */
    void writeAt(int layer, NDArray positionsTensor, int[] positions, NDArray k, NDArray v) {
        NDIndex idx = new NDIndex("{}, :, {}", batchRows, positionsTensor);
        keys[layer].set(idx, stored(k));
        values[layer].set(idx, stored(v));
        for (int b = 0; b < batch; b++) {
            if ((positions[b] + 1) % PAGE == 0) {
                refreshLandmark(layer, b, positions[b] / PAGE);
            }
        }
    }

    /** After a prefill of lengths[b] tokens, computes the landmarks of all full pages. */
    void refreshLandmarks(int layer) {
        int maxFull = 0;
        for (int b = 0; b < batch; b++) {
            maxFull = Math.max(maxFull, lengths[b] / PAGE);
        }
        refreshLandmarks(layer, maxFull);
    }

    /** The landmarks of pages [0, maxFull) of every sequence from the keys as stored. */
    private void refreshLandmarks(int layer, int maxFull) {
        if (maxFull == 0) {
            return;
        }
        try (NDManager scratch = manager.newSubManager()) {
            NDArray stored = keys[layer].get(new NDIndex(":, :, :{}", maxFull * PAGE));
            scratch.attachAll(stored);
            NDArray pages = widened(stored).reshape(batch, kvHeads, maxFull, PAGE, headDim);
            scratch.attachAll(pages);
            // Pages past a shorter sequence's end average padding; they are recomputed when they fill.
            landmarks[layer].set(new NDIndex(":, :, :{}", maxFull), pages.mean(new int[] {3}));
        }
    }

    private void refreshLandmark(int layer, int b, int page) {
        try (NDManager scratch = manager.newSubManager()) {
            NDArray pageKeys = keys[layer].get(new NDIndex("{}, :, {}:{}", b, page * PAGE, (page + 1) * PAGE));
            scratch.attachAll(pageKeys);
            NDArray mean = widened(pageKeys).mean(new int[] {1});
            scratch.attachAll(mean);
            landmarks[layer].set(new NDIndex("{}, :, {}", b, page), mean);
        }
    }

    /**
     * Fills every layer with random keys and values (N(0, 1), seeded) for sequences of the given
     * lengths and computes their landmarks, as if a prefill had run. Decode cost does not depend on
     * what the cache holds, so benchmarks use this instead of a long prefill; tests use it to check
     * attention kernels against brute force.
     */
    public void fillSynthetic(long seed, int[] newLengths) {
        int max = 0;
        for (int len : newLengths) {
            max = Math.max(max, len);
        }
        if (newLengths.length != batch || max > capacity) {
            throw new IllegalArgumentException("lengths do not fit the cache: " + java.util.Arrays.toString(newLengths));
        }
        ai.djl.engine.Engine.getEngine(manager.getEngine().getEngineName()).setRandomSeed((int) seed);
        for (int l = 0; l < keys.length; l++) {
            try (NDManager scratch = manager.newSubManager()) {
                Shape s = new Shape(batch, kvHeads, max, headDim);
                writeRange(l, 0, scratch.randomNormal(s), scratch.randomNormal(s));
            }
        }
        setLengths(newLengths);
        for (int l = 0; l < keys.length; l++) {
            refreshLandmarks(l);
        }
    }

    /**
     * Fills this empty cache from {@code src}: sequence b becomes a copy of src's sequence
     * {@code rows[b]} (its keys, values, landmarks and length), as if the same prompt had been
     * prefilled here. Prompts that several sequences share (a GRPO group's samples) are then
     * prefilled once. src must have this cache's layers, heads and head size and fit its capacity.
     */
    public void copyRowsFrom(KvCache src, int[] rows) {
        if (rows.length != batch) {
            throw new IllegalArgumentException(rows.length + " rows for a batch of " + batch);
        }
        if (src.layers() != layers() || src.kvHeads != kvHeads || src.headDim != headDim || src.capacity > capacity) {
            throw new IllegalArgumentException("source cache does not fit: " + src.layers() + " layers, " + src.kvHeads
                    + " KV heads of " + src.headDim + ", capacity " + src.capacity + " into " + layers() + ", " + kvHeads
                    + ", " + headDim + ", " + capacity);
        }
        long[] index = new long[batch];
        for (int b = 0; b < batch; b++) {
            if (rows[b] < 0 || rows[b] >= src.batch) {
                throw new IllegalArgumentException("row " + rows[b] + " outside the source batch of " + src.batch);
            }
            if (lengths[b] != 0) {
                throw new IllegalStateException("copyRowsFrom needs an empty cache");
            }
            index[b] = rows[b];
        }
        int pages = src.capacity / PAGE;
        try (NDManager scratch = manager.newSubManager()) {
            NDArray idx = scratch.create(index);
            NDIndex rowsOf = new NDIndex("{}", idx);
            for (int l = 0; l < keys.length; l++) {
                NDArray k = src.keys[l].get(rowsOf);
                NDArray v = src.values[l].get(rowsOf);
                scratch.attachAll(k, v);
                NDArray ks = stored(k);
                NDArray vs = stored(v);
                scratch.attachAll(ks, vs);
                keys[l].set(new NDIndex(":, :, :{}", src.capacity), ks);
                values[l].set(new NDIndex(":, :, :{}", src.capacity), vs);
                if (src.type == type) {
                    NDArray lm = src.landmarks[l].get(rowsOf);
                    scratch.attachAll(lm);
                    landmarks[l].set(new NDIndex(":, :, :{}", pages), lm);
                } else {
                    // the keys were rounded on the way: the landmarks are the means of them as stored
                    refreshLandmarks(l, pages);
                }
            }
        }
        for (int b = 0; b < batch; b++) {
            lengths[b] = src.lengths[rows[b]];
        }
    }

    /** Records that every sequence b now holds newLengths[b] tokens. */
    void setLengths(int[] newLengths) {
        for (int b = 0; b < batch; b++) {
            if (newLengths[b] < 0 || newLengths[b] > capacity) {
                throw new IllegalStateException("length " + newLengths[b] + " outside cache capacity " + capacity);
            }
            lengths[b] = newLengths[b];
        }
    }

    @Override
    public void close() {
        manager.close();
    }
}
