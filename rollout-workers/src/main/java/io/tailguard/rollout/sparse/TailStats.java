package io.tailguard.rollout.sparse;

import com.tdunning.math.stats.MergingDigest;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * The tail of the acceptance rate α by position (docs/algorithms.md, "The α mismatch and its tail"): tokens are grouped by context
 * length into bins {@code [i·binWidth, (i+1)·binWidth)} (2048 wide by default), and each bin keeps a
 * t-digest of α (MergingDigest, compression 100 by default) plus an exact token count and α sum (for
 * the mean). The tail statistic is each bin's 5th percentile, {@link #p5(int)}.
 *
 * <p>The sequence statistic (docs/algorithms.md, "The sequence α"): a bin's disagreements are
 * Σ (1 − α) over its tokens ({@link #disagreements}, its count less its α sum), and the statistic
 * counts the trajectories whose tokens it holds ({@link #addSequence}), so that
 * {@code disagreements(bin) / sequences()} is a bin's share of the mean number of tokens per
 * trajectory at which a dense sampler coupled to the sparse one would have drawn another token, and
 * {@link #sequenceAlpha()} = exp(−Σ disagreements / sequences). Shares of bins add up, so a
 * schedule's sequence α can be predicted bin by bin from tails measured at different budgets. A
 * copy of one bin ({@link #onlyBin}) keeps the sequence count: every trajectory counts in every bin's
 * mean, also where it put no token.
 *
 * <p>Mergeable: workers stream partial statistics ({@link #toBytes()}), a controller merges them
 * ({@link #merge}); merged digests answer quantiles to t-digest accuracy, counts and sums exactly.
 * Not thread-safe: one owner adds, others receive bytes.
 *
 * <p>Wire format (big-endian), version 2: int magic "TGTS", int format version, int bin width,
 * double compression, long trajectories, int number of bins, then per bin: long count, double α sum,
 * int digest length in bytes (0 for an empty bin), then that many bytes of the digest's small encoding
 * ({@link MergingDigest#asSmallBytes}, centroid means as float: ample for α).
 */
public final class TailStats {
    public static final int DEFAULT_BIN_WIDTH = 2048;
    public static final double DEFAULT_COMPRESSION = 100;
    /** The tail quantile of docs/algorithms.md, "The α mismatch and its tail". */
    public static final double TAIL_QUANTILE = 0.05;

    private static final int MAGIC = 0x54475453; // "TGTS"
    private static final int FORMAT_VERSION = 2;
    /** α may come out of float arithmetic a hair outside [0, 1]; beyond this it is a bug upstream. */
    private static final double SLACK = 1e-4;

    /** One position bin of the summary. alphaP5 and alphaMean are over the bin's tokens. */
    public record BinSummary(int start, int end, long tokens, double alphaP5, double alphaMean) {
    }

    private static final class Bin {
        MergingDigest digest; // null until the first token
        long count;
        double sum;
    }

    private final int binWidth;
    private final double compression;
    private final ArrayList<Bin> bins = new ArrayList<>();
    private long sequences;

    public TailStats() {
        this(DEFAULT_BIN_WIDTH);
    }

    public TailStats(int binWidth) {
        this(binWidth, DEFAULT_COMPRESSION);
    }

    public TailStats(int binWidth, double compression) {
        if (binWidth <= 0) {
            throw new IllegalArgumentException("bin width must be positive, got " + binWidth);
        }
        if (!(compression >= 10) || compression > 10_000) {
            throw new IllegalArgumentException("t-digest compression must be in [10, 10000], got " + compression);
        }
        this.binWidth = binWidth;
        this.compression = compression;
    }

    public int binWidth() {
        return binWidth;
    }

    public double compression() {
        return compression;
    }

    /** The bin of a position (context length). */
    public int binOf(int position) {
        if (position < 0) {
            throw new IllegalArgumentException("position must be ≥ 0, got " + position);
        }
        return position / binWidth;
    }

    /** Bins seen so far: one past the last bin that has (or had room for) tokens. */
    public int binCount() {
        return bins.size();
    }

    /** Records the acceptance rate of the token generated at this position. */
    public void add(int position, double alpha) {
        if (!(alpha >= -SLACK && alpha <= 1 + SLACK)) {
            throw new IllegalArgumentException("acceptance rate must be in [0, 1], got " + alpha + " at position " + position);
        }
        double a = Math.max(0.0, Math.min(1.0, alpha));
        Bin bin = bin(binOf(position));
        if (bin.digest == null) {
            bin.digest = new MergingDigest(compression);
        }
        bin.digest.add(a);
        bin.count++;
        bin.sum += a;
    }

    /** Counts one trajectory, after its tokens were {@link #add}ed (a trajectory of no tokens counts too). */
    public void addSequence() {
        sequences++;
    }

    /** Trajectories counted. */
    public long sequences() {
        return sequences;
    }

    /** Σ (1 − α) over a bin's tokens, its count less its α sum (exact); 0 for a bin without tokens. */
    public double disagreements(int bin) {
        Bin b = existing(bin);
        return b == null ? 0 : Math.max(0, b.count - b.sum);
    }

    /** A bin's share of the mean disagreements per trajectory: disagreements(bin) / sequences(); NaN before any trajectory. */
    public double sequenceDisagreements(int bin) {
        return sequences == 0 ? Double.NaN : disagreements(bin) / sequences;
    }

    /**
     * The sequence α: exp(−Σ_bins disagreements / sequences), exp of minus the mean number of
     * disagreements per counted trajectory (to first order the chance that a coupled dense sampler
     * agrees with a whole trajectory; per trajectory e^−D bounds Π α from above); NaN before any trajectory.
     */
    public double sequenceAlpha() {
        if (sequences == 0) {
            return Double.NaN;
        }
        double total = 0;
        for (int i = 0; i < bins.size(); i++) {
            total += disagreements(i);
        }
        return Math.exp(-total / sequences);
    }

    /** Adds another statistic's tokens to this one. Bin widths must agree. */
    public void merge(TailStats other) {
        if (other.binWidth != binWidth) {
            throw new IllegalArgumentException("cannot merge tail statistics with bin width " + other.binWidth
                    + " into bin width " + binWidth);
        }
        if (other == this) {
            other = fromBytes(toBytes());
        }
        sequences += other.sequences;
        for (int i = 0; i < other.bins.size(); i++) {
            Bin theirs = other.bins.get(i);
            if (theirs.count == 0) {
                continue;
            }
            Bin mine = bin(i);
            if (mine.digest == null) {
                mine.digest = new MergingDigest(compression);
            }
            mine.digest.add(theirs.digest);
            mine.count += theirs.count;
            mine.sum += theirs.sum;
        }
    }

    /**
     * A copy holding only one bin's tokens, and every trajectory (the controller files each bin under
     * its own budget; the trajectories that put no token in the bin count in its mean as zeros).
     */
    public TailStats onlyBin(int bin) {
        TailStats t = new TailStats(binWidth, compression);
        t.sequences = sequences;
        Bin b = existing(bin);
        if (b != null && b.count > 0) {
            Bin mine = t.bin(bin);
            mine.digest = new MergingDigest(compression);
            mine.digest.add(b.digest);
            mine.count = b.count;
            mine.sum = b.sum;
        }
        return t;
    }

    /** The q-quantile of α in a bin; NaN for a bin without tokens. */
    public double quantile(int bin, double q) {
        if (!(q >= 0 && q <= 1)) {
            throw new IllegalArgumentException("quantile must be in [0, 1], got " + q);
        }
        Bin b = existing(bin);
        return b == null || b.count == 0 ? Double.NaN : b.digest.quantile(q);
    }

    /** The tail statistic: the 5th percentile of α in a bin; NaN for a bin without tokens. */
    public double p5(int bin) {
        return quantile(bin, TAIL_QUANTILE);
    }

    /** Tokens recorded in a bin. */
    public long count(int bin) {
        Bin b = existing(bin);
        return b == null ? 0 : b.count;
    }

    /** Tokens over all bins. */
    public long totalCount() {
        long n = 0;
        for (Bin b : bins) {
            n += b.count;
        }
        return n;
    }

    /** Mean α in a bin (exact); NaN for a bin without tokens. */
    public double mean(int bin) {
        Bin b = existing(bin);
        return b == null || b.count == 0 ? Double.NaN : b.sum / b.count;
    }

    /** One row per bin that has tokens, in position order. */
    public List<BinSummary> summary() {
        List<BinSummary> out = new ArrayList<>();
        for (int i = 0; i < bins.size(); i++) {
            Bin b = bins.get(i);
            if (b.count > 0) {
                long start = (long) i * binWidth;
                int end = (int) Math.min(Integer.MAX_VALUE, start + binWidth);
                out.add(new BinSummary((int) start, end, b.count, b.digest.quantile(TAIL_QUANTILE), b.sum / b.count));
            }
        }
        return out;
    }

    // ---------------------------------------------------------------- bytes

    /** The compact wire form (see the class comment). */
    public byte[] toBytes() {
        int size = 4 + 4 + 4 + 8 + 8 + 4;
        for (Bin b : bins) {
            size += 8 + 8 + 4 + (b.count == 0 ? 0 : b.digest.smallByteSize());
        }
        ByteBuffer buf = ByteBuffer.allocate(size);
        buf.putInt(MAGIC).putInt(FORMAT_VERSION).putInt(binWidth).putDouble(compression).putLong(sequences).putInt(bins.size());
        for (Bin b : bins) {
            buf.putLong(b.count).putDouble(b.sum);
            if (b.count == 0) {
                buf.putInt(0);
            } else {
                int lengthAt = buf.position();
                buf.putInt(0);
                int start = buf.position();
                b.digest.asSmallBytes(buf);
                buf.putInt(lengthAt, buf.position() - start);
            }
        }
        byte[] out = new byte[buf.position()];
        buf.flip();
        buf.get(out);
        return out;
    }

    /** Reads {@link #toBytes()}; a malformed or truncated input is refused with one line. */
    public static TailStats fromBytes(byte[] bytes) {
        ByteBuffer buf = ByteBuffer.wrap(bytes);
        try {
            int magic = buf.getInt();
            if (magic != MAGIC) {
                throw new IllegalArgumentException("tail statistics: not a TailStats encoding (bad magic number)");
            }
            int version = buf.getInt();
            if (version != FORMAT_VERSION) {
                throw new IllegalArgumentException("tail statistics: unsupported format version " + version
                        + " (this build reads " + FORMAT_VERSION + ")");
            }
            int binWidth = buf.getInt();
            double compression = buf.getDouble();
            TailStats stats;
            try {
                stats = new TailStats(binWidth, compression);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("tail statistics: " + e.getMessage());
            }
            stats.sequences = buf.getLong();
            if (stats.sequences < 0) {
                throw new IllegalArgumentException("tail statistics: negative trajectory count " + stats.sequences);
            }
            int n = buf.getInt();
            if (n < 0 || n > buf.remaining() / 20) {
                throw new IllegalArgumentException("tail statistics: bad bin count " + n);
            }
            for (int i = 0; i < n; i++) {
                Bin b = new Bin();
                b.count = buf.getLong();
                b.sum = buf.getDouble();
                int length = buf.getInt();
                if (!(b.sum >= 0 && b.sum <= b.count * (1 + SLACK))) {
                    throw new IllegalArgumentException("tail statistics: bin " + i + " has an α sum of " + b.sum + " for "
                            + b.count + " tokens");
                }
                if (b.count < 0 || length < 0 || length > buf.remaining() || (b.count == 0) != (length == 0)) {
                    throw new IllegalArgumentException("tail statistics: bin " + i + " is malformed (count " + b.count
                            + ", digest of " + length + " bytes)");
                }
                if (length > 0) {
                    ByteBuffer digestBytes = buf.slice();
                    digestBytes.limit(length);
                    try {
                        b.digest = MergingDigest.fromBytes(digestBytes);
                    } catch (RuntimeException e) {
                        throw new IllegalArgumentException("tail statistics: bin " + i + " digest is malformed");
                    }
                    buf.position(buf.position() + length);
                    if (b.digest.size() != b.count) {
                        throw new IllegalArgumentException("tail statistics: bin " + i + " digest holds " + b.digest.size()
                                + " tokens but the header says " + b.count);
                    }
                }
                stats.bins.add(b);
            }
            if (buf.hasRemaining()) {
                throw new IllegalArgumentException("tail statistics: " + buf.remaining() + " trailing bytes");
            }
            return stats;
        } catch (BufferUnderflowException | IndexOutOfBoundsException e) {
            throw new IllegalArgumentException("tail statistics: truncated encoding (" + bytes.length + " bytes)");
        }
    }

    private Bin bin(int index) {
        while (bins.size() <= index) {
            bins.add(new Bin());
        }
        return bins.get(index);
    }

    private Bin existing(int bin) {
        if (bin < 0) {
            throw new IllegalArgumentException("bin must be ≥ 0, got " + bin);
        }
        return bin < bins.size() ? bins.get(bin) : null;
    }
}
