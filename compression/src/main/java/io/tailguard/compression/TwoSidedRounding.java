package io.tailguard.compression;

import java.util.Arrays;

/**
 * YAQA's rounding (docs/algorithms.md, "YAQA, LDLQ and RTN"): 16×16 tiles quantized one anti-diagonal at a time from the
 * bottom-right tile, each tile's target being W + (L_Oᵀ E L_I + L_Oᵀ E + E L_I) with E = W − Ŵ over
 * the tiles already quantized. Because L_I and L_O are strictly block-lower, a tile's feedback only
 * involves tiles below it, right of it, or both, which all lie on earlier anti-diagonals; tiles of
 * one anti-diagonal never feed each other and could be rounded as one batch.
 *
 * <p>With R = target − Ŵ the per-tile rounding residual, (I + L_Oᵀ) E (I + L_I) = R, so the proxy
 * error tr(E H_I Eᵀ H_O) equals tr(R D_I Rᵀ D_O). LDLQ is the case L_O = 0 (H_O = I); round to
 * nearest is L_O = L_I = 0.
 */
final class TwoSidedRounding {
    static final int TILE = 16;

    /**
     * @param codes    the integer code of every weight, [m, n]
     * @param quantized Ŵ, the dequantized values, [m, n]
     * @param residual R, target − Ŵ, [m, n]
     */
    record Result(int[][] codes, double[][] quantized, double[][] residual) {}

    private TwoSidedRounding() {}

    /**
     * @param w      the weights [m, n] (already incoherence-processed)
     * @param lIn    L_I [n, n], strictly block-lower; null for none
     * @param lOut   L_O [m, m], strictly block-lower; null for none (LDLQ, RTN)
     */
    static Result round(double[][] w, double[][] lIn, double[][] lOut, GroupQuantizer q) {
        int m = w.length;
        int n = w[0].length;
        int tilesDown = (m + TILE - 1) / TILE;
        int tilesAcross = (n + TILE - 1) / TILE;
        double[][] e = new double[m][n];      // W − Ŵ on quantized tiles, 0 elsewhere
        double[][] eli = new double[m][n];    // E L_I, kept up to date tile by tile
        double[][] sum = new double[m][n];    // E + E L_I on quantized rows, what L_Oᵀ multiplies
        int[][] codes = new int[m][n];
        double[][] wHat = new double[m][n];
        double[][] residual = new double[m][n];
        double[][] feedback = new double[TILE][TILE]; // the current tile's L_Oᵀ term
        // Anti-diagonal d counts from the bottom-right tile: (tilesDown-1-i) + (tilesAcross-1-j) = d.
        for (int d = 0; d <= tilesDown + tilesAcross - 2; d++) {
            for (int ti = tilesDown - 1; ti >= 0; ti--) {
                int tj = tilesAcross - 1 - (d - (tilesDown - 1 - ti));
                if (tj < 0 || tj >= tilesAcross) {
                    continue;
                }
                int r0 = ti * TILE;
                int r1 = Math.min(m, r0 + TILE);
                int c0 = tj * TILE;
                int c1 = Math.min(n, c0 + TILE);
                if (lOut != null) {
                    // (L_Oᵀ (E + E L_I)) over the quantized rows below this tile, for the whole tile
                    // at once: k outermost so that lOut[k] and sum[k] are read along their rows (a
                    // per-element sum down lOut's column missed the cache on every k). Each element
                    // still sums over k in ascending order from 0, so the result is bit-identical.
                    for (double[] a : feedback) {
                        Arrays.fill(a, 0);
                    }
                    for (int k = r1; k < m; k++) {
                        double[] lk = lOut[k];
                        double[] sk = sum[k];
                        for (int r = r0; r < r1; r++) {
                            double l = lk[r];
                            if (l == 0) {
                                continue;
                            }
                            double[] a = feedback[r - r0];
                            for (int c = c0; c < c1; c++) {
                                a[c - c0] += l * sk[c];
                            }
                        }
                    }
                }
                for (int r = r0; r < r1; r++) {
                    for (int c = c0; c < c1; c++) {
                        // (E L_I)[r][c]: eli is complete for row r over columns c0..c1, because every
                        // tile right of this one in row block ti is already quantized.
                        double target = w[r][c] + eli[r][c];
                        if (lOut != null) {
                            target += feedback[r - r0][c - c0];
                        }
                        int code = q.code(target, r, c);
                        double v = q.value(code, r, c);
                        codes[r][c] = code;
                        wHat[r][c] = v;
                        residual[r][c] = target - v;
                        e[r][c] = w[r][c] - v;
                    }
                }
                // The new E tile feeds E L_I in its rows, for the columns left of it (L_I is
                // strictly block-lower, so only columns of earlier blocks pick it up).
                if (lIn != null) {
                    for (int r = r0; r < r1; r++) {
                        for (int k = c0; k < c1; k++) {
                            double ek = e[r][k];
                            if (ek == 0) {
                                continue;
                            }
                            double[] lk = lIn[k];
                            for (int c = 0; c < c0; c++) {
                                eli[r][c] += ek * lk[c];
                            }
                        }
                    }
                }
                for (int r = r0; r < r1; r++) {
                    for (int c = c0; c < c1; c++) {
                        sum[r][c] = e[r][c] + eli[r][c];
                    }
                }
            }
        }
        return new Result(codes, wHat, residual);
    }
}
