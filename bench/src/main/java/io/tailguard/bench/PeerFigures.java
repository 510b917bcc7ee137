package io.tailguard.bench;

import com.google.gson.JsonObject;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The peer half of {@code bench decode}'s JSON: each peer's figures, which peer was stronger, and
 * the ratios. The eager peer's keys keep their old names (pytorch_*, vs_pytorch); transformers'
 * generate adds transformers_*; peer / peer_tokens_per_s / vs_peer name the stronger of the two.
 */
final class PeerFigures {
    private PeerFigures() {}

    /**
     * @param tokensPerS     Tailguard's decode tokens/s
     * @param prefillPerS    Tailguard's prefill tokens/s
     * @param eager          the eager peer's best decode tokens/s, or null when it did not run
     * @param eagerPrefill   the eager peer's best prefill tokens/s, or null
     * @param eagerJson      the eager peer's JSON line of its best round, or null
     * @param hfJson         transformers_decode.py's JSON line, or null when it did not run
     */
    static Map<String, Object> decode(double tokensPerS, double prefillPerS, Double eager, Double eagerPrefill,
                                      JsonObject eagerJson, JsonObject hfJson) {
        Map<String, Object> out = new LinkedHashMap<>();
        String peer = null;
        double peerTps = 0;
        if (eager != null) {
            out.put("pytorch_tokens_per_s", round1(eager));
            out.put("pytorch_prefill_tokens_per_s", round1(eagerPrefill));
            out.put("vs_pytorch", ratio(tokensPerS, eager));
            out.put("pytorch_version", eagerJson.get("torch_version").getAsString());
            peer = "pytorch";
            peerTps = eager;
        }
        if (hfJson != null) {
            double tps = hfJson.get("tokens_per_s").getAsDouble();
            double prefill = hfJson.get("prefill_tokens_per_s").getAsDouble();
            String cache = hfJson.get("cache").getAsString();
            JsonObject runs = hfJson.getAsJsonObject("runs");
            out.put("transformers_tokens_per_s", round1(tps));
            out.put("transformers_prefill_tokens_per_s", round1(prefill));
            out.put("transformers_cache", cache);
            for (String c : runs.keySet()) {
                out.put("transformers_" + c + "_tokens_per_s", round1(runs.getAsJsonObject(c).get("tokens_per_s").getAsDouble()));
            }
            out.put("transformers_new_tokens", hfJson.get("new_tokens").getAsInt());
            out.put("transformers_decode_steps", runs.getAsJsonObject(cache).get("steps").getAsInt());
            out.put("transformers_max_decode_seconds", hfJson.get("max_decode_seconds").getAsDouble());
            out.put("transformers_version", hfJson.get("transformers_version").getAsString());
            out.put("vs_transformers", ratio(tokensPerS, tps));
            out.put("prefill_vs_transformers", ratio(prefillPerS, prefill));
            if (peer == null || tps > peerTps) {
                peer = "transformers";
                peerTps = tps;
            }
        }
        if (peer != null) {
            out.put("peer", peer);
            out.put("peer_tokens_per_s", round1(peerTps));
            out.put("vs_peer", ratio(tokensPerS, peerTps));
        }
        return out;
    }

    static double round1(double v) {
        return Math.round(v * 10) / 10.0;
    }

    /** a / b to three decimals; null (JSON null, never NaN or Infinity) when b is not positive. */
    static Double ratio(double a, double b) {
        return b > 0 ? Math.round(a / b * 1000) / 1000.0 : null;
    }
}
