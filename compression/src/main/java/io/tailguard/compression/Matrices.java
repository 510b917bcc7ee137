package io.tailguard.compression;

/**
 * Dense double-precision helpers on row-major {@code double[rows][cols]}. The matrices here are at
 * most a layer's width on a side, so plain loops are fast enough and keep the numerics readable;
 * everything accumulates in double so that the proxy-error identity holds to ~1e-12.
 */
final class Matrices {
    private Matrices() {}

    static double[][] identity(int n) {
        double[][] a = new double[n][n];
        for (int i = 0; i < n; i++) {
            a[i][i] = 1;
        }
        return a;
    }

    static double[][] copy(double[][] a) {
        double[][] c = new double[a.length][];
        for (int i = 0; i < a.length; i++) {
            c[i] = a[i].clone();
        }
        return c;
    }

    static double[][] transpose(double[][] a) {
        int r = a.length;
        int c = a[0].length;
        double[][] t = new double[c][r];
        for (int i = 0; i < r; i++) {
            for (int j = 0; j < c; j++) {
                t[j][i] = a[i][j];
            }
        }
        return t;
    }

    /** a [r, k] · b [k, c]; i-k-j loop order so the inner loop walks rows. */
    static double[][] multiply(double[][] a, double[][] b) {
        int r = a.length;
        int k = b.length;
        int c = b[0].length;
        if (a[0].length != k) {
            throw new IllegalArgumentException("inner dimensions " + a[0].length + " and " + k + " differ");
        }
        double[][] out = new double[r][c];
        for (int i = 0; i < r; i++) {
            double[] oi = out[i];
            for (int p = 0; p < k; p++) {
                double aip = a[i][p];
                if (aip == 0) {
                    continue;
                }
                double[] bp = b[p];
                for (int j = 0; j < c; j++) {
                    oi[j] += aip * bp[j];
                }
            }
        }
        return out;
    }

    static double[][] add(double[][] a, double[][] b) {
        double[][] out = copy(a);
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < a[i].length; j++) {
                out[i][j] += b[i][j];
            }
        }
        return out;
    }

    static double trace(double[][] a) {
        double t = 0;
        for (int i = 0; i < a.length; i++) {
            t += a[i][i];
        }
        return t;
    }

    static double frobeniusSquared(double[][] a) {
        double s = 0;
        for (double[] row : a) {
            for (double v : row) {
                s += v * v;
            }
        }
        return s;
    }

    /** tr(ΔW H_I ΔWᵀ H_O), the Kronecker-factored proxy error of a weight change ΔW [m, n]. */
    static double proxyError(double[][] dw, double[][] hIn, double[][] hOut) {
        double[][] left = multiply(multiply(dw, hIn), transpose(dw)); // [m, m]
        double s = 0;
        for (int i = 0; i < left.length; i++) {
            for (int j = 0; j < left.length; j++) {
                s += left[i][j] * hOut[j][i];
            }
        }
        return s;
    }

    /**
     * Lower Cholesky factor C with a = C Cᵀ, or null when a is not (numerically) positive definite:
     * the caller damps and retries.
     */
    static double[][] cholesky(double[][] a) {
        int n = a.length;
        double[][] c = new double[n][n];
        for (int j = 0; j < n; j++) {
            double d = a[j][j];
            for (int k = 0; k < j; k++) {
                d -= c[j][k] * c[j][k];
            }
            if (!(d > 0) || !Double.isFinite(d)) {
                return null;
            }
            double cjj = Math.sqrt(d);
            c[j][j] = cjj;
            for (int i = j + 1; i < n; i++) {
                double s = a[i][j];
                for (int k = 0; k < j; k++) {
                    s -= c[i][k] * c[j][k];
                }
                c[i][j] = s / cjj;
            }
        }
        return c;
    }

    /** Inverse of a lower-triangular matrix by forward substitution. */
    static double[][] invertLower(double[][] l) {
        int n = l.length;
        double[][] inv = new double[n][n];
        for (int col = 0; col < n; col++) {
            for (int i = col; i < n; i++) {
                double s = i == col ? 1 : 0;
                for (int k = col; k < i; k++) {
                    s -= l[i][k] * inv[k][col];
                }
                inv[i][col] = s / l[i][i];
            }
        }
        return inv;
    }

    static double[][] symmetrize(double[][] a) {
        int n = a.length;
        double[][] s = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                s[i][j] = 0.5 * (a[i][j] + a[j][i]);
            }
        }
        return s;
    }
}
