package io.tailguard.actors.cli;

/**
 * A one-line progress bar on stderr, redrawn in place ("\r"), finished with a newline. Progress
 * never goes to stdout, whose last line is the --json object.
 */
final class Progress {
    private static final int WIDTH = 30;
    private final String label;
    private boolean open;

    Progress(String label) {
        this.label = label;
    }

    void update(int done, int total) {
        update(done, total, "");
    }

    /** As {@link #update(int, int)}, with a short note (a loss, a rate) after the count. */
    void update(int done, int total, String note) {
        int filled = total == 0 ? WIDTH : (int) ((long) WIDTH * done / total);
        System.err.print("\r" + label + " [" + "#".repeat(filled) + " ".repeat(WIDTH - filled) + "] " + done + "/" + total
                + (note.isEmpty() ? "" : " " + note));
        open = true;
        if (done >= total) {
            finish();
        }
    }

    void finish() {
        if (open) {
            System.err.println();
            open = false;
        }
    }

    /** v rounded to a number of decimals, for readable JSON (NaN and infinities as they are). */
    static double round(double v, int decimals) {
        double scale = Math.pow(10, decimals);
        return Double.isFinite(v) ? Math.round(v * scale) / scale : v;
    }
}
