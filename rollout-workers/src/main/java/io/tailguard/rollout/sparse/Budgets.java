package io.tailguard.rollout.sparse;

import static io.tailguard.model.KvCache.PAGE;

/**
 * The rules every KV budget obeys, in one place (docs/algorithms.md, "Block-Top-k" and
 * "Calibration"):
 * <ul>
 *   <li>a budget is a multiple of the KV cache page ({@code KvCache.PAGE} tokens) and at least
 *       {@link #MIN_BUDGET}: the sink page and the 2 most recent pages, which Block-Top-k always
 *       keeps;</li>
 *   <li>a position bin is a positive multiple of the page wide;</li>
 *   <li>budgets never decrease with position, and {@link #makeNonDecreasing} is the one repair that
 *       makes them so, with one policy for the bins no rollout reached.</li>
 * </ul>
 * Schedules, the online controller, offline calibration and the command lines all check and repair
 * through here; messages are built from the same constants.
 */
public final class Budgets {
    /** The smallest sparse budget: the sink page plus the 2 most recent pages. */
    public static final int MIN_BUDGET = 3 * PAGE;
    /** The budget rule in words, for option help and messages: "a multiple of 16 and at least 48". */
    public static final String RULE = "a multiple of " + PAGE + " and at least " + MIN_BUDGET;
    /** The bin-width rule in words: "a positive multiple of 16". */
    public static final String BIN_WIDTH_RULE = "a positive multiple of " + PAGE;
    /** The largest page multiple an int holds (a bin end that large stands for "dense"). */
    public static final int LARGEST = Integer.MAX_VALUE / PAGE * PAGE;
    /** A bin's budget in {@link Bins#budget} when it has none yet (valid budgets are at least 48). */
    public static final int NONE = 0;

    private Budgets() {
    }

    /** Whether a budget obeys the rule. */
    static boolean valid(long budget) {
        return budget >= MIN_BUDGET && budget % PAGE == 0;
    }

    /**
     * Why a budget breaks the rule, as the end of a sentence about it ("is below 48 (the sink page
     * and the 2 most recent pages are always kept)", "is not a multiple of the page size 16"), or
     * null when it obeys it.
     */
    public static String problem(long budget) {
        if (budget < MIN_BUDGET) {
            return "is below " + MIN_BUDGET + " (the sink page and the 2 most recent pages are always kept)";
        }
        if (budget % PAGE != 0) {
            return "is not a multiple of the page size " + PAGE;
        }
        return null;
    }

    /** The budget, or IllegalArgumentException "NAME: budget B is below 48 (...)" naming it. */
    public static int check(String name, int budget) {
        String problem = problem(budget);
        if (problem != null) {
            throw new IllegalArgumentException(name + ": budget " + budget + " " + problem);
        }
        return budget;
    }

    /** Whether a bin width obeys its rule: a positive multiple of the page. */
    public static boolean validBinWidth(long binWidth) {
        return binWidth > 0 && binWidth % PAGE == 0;
    }

    /** The page multiple nearest to {@code tokens} (halves round up). */
    static int roundToPage(double tokens) {
        return (int) (Math.round(tokens / PAGE) * PAGE);
    }

    // ---------------------------------------------------------------- budgets never decrease

    /**
     * Per-bin budgets as {@link #makeNonDecreasing} sees them. Where budgets must stay on a set of
     * values (the controller's ladder rungs), {@link #lower} and {@link #raise} pick the nearest
     * allowed one; plain arrays take the bound itself ({@link #makeNonDecreasing(int[], boolean[])}).
     */
    public interface Bins {
        int count();

        /** Whether the bin has evidence of its own: tokens were decoded at its positions. */
        boolean reached(int bin);

        /** The bin's budget, or {@link #NONE} for an unreached bin that has none yet. */
        int budget(int bin);

        /** Lowers the bin to about {@code cap}, the budget of the next bin {@code next}. */
        void lower(int bin, int cap, int next);

        /** Raises the bin to about {@code floor}, the budget of {@code from}, a bin before it. */
        void raise(int bin, int floor, int from);
    }

    /**
     * The repair that makes budgets non-decreasing in position, with the one policy for bins no
     * rollout reached. An unreached bin has no evidence either way, so it must neither pin the bins
     * after it nor hold the bins before it down:
     * <ol>
     *   <li>unreached bins with no budget yet before the first bin that has one take that bin's
     *       (nothing comes before them); other unreached bins without one get the previous bin's in
     *       step 3, the cheapest that budgets never decreasing allows;</li>
     *   <li>right to left, an unreached bin above the next bin follows it down (so that a bin the
     *       workload never reaches, short positions under long prompts, does not keep the next
     *       bins up); an unreached bin at or below the next bin keeps its budget;</li>
     *   <li>left to right, every bin below the previous bin is raised to it: budgets never decrease
     *       with position, and a raise carries over to the later bins.</li>
     * </ol>
     * Offline calibration (no budgets for unreached bins) thus gives an unreached bin the previous
     * bin's budget, and leading unreached bins the first reached bin's; the online controller (every
     * bin has a budget) keeps an idle bin's budget between its neighbours'. Reached bins are only
     * ever raised.
     *
     * @throws IllegalArgumentException when there are bins but none has a budget
     */
    public static void makeNonDecreasing(Bins bins) {
        int n = bins.count();
        if (n == 0) {
            return;
        }
        int first = 0;
        while (first < n && bins.budget(first) == NONE) {
            first++;
        }
        if (first == n) {
            throw new IllegalArgumentException("no bin has a budget to repair from");
        }
        for (int bin = 0; bin < first; bin++) {
            bins.raise(bin, bins.budget(first), first);
        }
        for (int bin = n - 2; bin >= 0; bin--) {
            int next = bins.budget(bin + 1);
            if (!bins.reached(bin) && bins.budget(bin) > next) {
                bins.lower(bin, next, bin + 1);
            }
        }
        for (int bin = 1; bin < n; bin++) {
            int previous = bins.budget(bin - 1);
            if (bins.budget(bin) < previous) {
                bins.raise(bin, previous, bin - 1);
            }
        }
    }

    /**
     * {@link #makeNonDecreasing(Bins)} on plain budgets (a bin moves to the bound itself); {@link
     * #NONE} marks an unreached bin without a budget. Returns a repaired copy.
     */
    public static int[] makeNonDecreasing(int[] budgets, boolean[] reached) {
        if (budgets.length != reached.length) {
            throw new IllegalArgumentException("budgets (" + budgets.length + ") and reached (" + reached.length
                    + ") differ in length");
        }
        int[] b = budgets.clone();
        for (int i = 0; i < b.length; i++) {
            if (b[i] == NONE && reached[i]) {
                throw new IllegalArgumentException("bin " + i + ": a reached bin needs a budget");
            }
        }
        makeNonDecreasing(new Bins() {
            @Override
            public int count() {
                return b.length;
            }

            @Override
            public boolean reached(int bin) {
                return reached[bin];
            }

            @Override
            public int budget(int bin) {
                return b[bin];
            }

            @Override
            public void lower(int bin, int cap, int next) {
                b[bin] = cap;
            }

            @Override
            public void raise(int bin, int floor, int from) {
                b[bin] = floor;
            }
        });
        return b;
    }
}
