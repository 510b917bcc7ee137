package io.tailguard.actors.runtime;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import io.tailguard.model.io.AtomicFiles;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a `train` run saw, kept so that runs can be compared afterwards (`compare-runs`):
 * {@code <out>/run-record.json}, written atomically when the run ends. Times are seconds since the
 * `train` command began (calibration at the start included). NaN values are written as null and
 * read back as NaN.
 *
 * @param startMillis    when `train` began (epoch milliseconds)
 * @param endSeconds     when the learner finished, its last evaluation included
 * @param settings       the settings that tell runs apart (task, seed, τ, start schedule, adapt, ...)
 * @param summary        the run's `--json` summary
 */
public record RunRecord(long startMillis, double endSeconds, Map<String, Object> settings, Map<String, Object> summary,
                        List<StepRow> steps, List<WindowRow> windows, List<EvalRow> evaluations) {
    public static final String FILE_NAME = "run-record.json";
    /** The layout's version; a reader refuses another. */
    public static final int FORMAT = 1;

    /**
     * One learner step. rolloutSeconds: the generation seconds of the step's tokens at the rollout
     * rate of the newest lease in its batch (tokens / rollout tokens per second); tisTruncated: the
     * share of the step's tokens whose TIS weight was truncated (NaN: no update).
     */
    public record StepRow(int step, double seconds, double reward, double passRate, long tokens, double rolloutTokensPerSecond,
                          double rolloutSeconds, double learnSeconds, double tisTruncated, double loss, int staleness) {}

    /**
     * One controller window: p5 α per bin (NaN: no tokens), the budgets after its decision, τ, what
     * the decision judged per bin, and the sequence α of the option in use (NaN: not judged, or a
     * record written before it was kept).
     */
    public record WindowRow(double seconds, long scheduleVersion, int[] budgets, double[] alphaP5, long[] tokens, double tau,
                            double predictedSpeedup, double[] judgedP5, long[] judgedTokens, double sequenceAlpha) {
        /** A window judged on its own tails alone (a record written before judged_p5 was). */
        public WindowRow(double seconds, long scheduleVersion, int[] budgets, double[] alphaP5, long[] tokens, double tau,
                         double predictedSpeedup) {
            this(seconds, scheduleVersion, budgets, alphaP5, tokens, tau, predictedSpeedup, alphaP5, tokens, Double.NaN);
        }
    }

    /** One held-out evaluation: its step, when it began, pass@1, and how long it took. */
    public record EvalRow(int step, double seconds, double passAt1, double evalSeconds) {}

    /** The record of what the recorder saw, times relative to startMillis. */
    public static RunRecord of(RunRecorder r, long startMillis, long endMillis, Map<String, Object> settings,
                               Map<String, Object> summary) {
        List<StepRow> steps = new ArrayList<>();
        for (RunObserver.Step s : r.steps()) {
            steps.add(new StepRow(s.step(), since(startMillis, s.timeMillis()), s.reward(), s.passRate(), s.tokens(),
                    s.rolloutTokensPerSecond(), s.rolloutTokensPerSecond() > 0 ? s.tokens() / s.rolloutTokensPerSecond() : Double.NaN,
                    s.learnSeconds(), s.tisTruncated(), s.loss(), s.staleness()));
        }
        List<WindowRow> windows = new ArrayList<>();
        for (RunObserver.Window w : r.windows()) {
            windows.add(new WindowRow(since(startMillis, w.timeMillis()), w.scheduleVersion(), w.budgets().clone(), w.alphaP5().clone(),
                    w.tokens().clone(), w.tau(), w.predictedSpeedup(), w.judgedP5().clone(), w.judgedTokens().clone(),
                    w.sequenceAlpha()));
        }
        List<EvalRow> evals = new ArrayList<>();
        for (RunObserver.Evaluated e : r.evaluations()) {
            evals.add(new EvalRow(e.step(), since(startMillis, e.timeMillis()), e.passAt1(), e.seconds()));
        }
        return new RunRecord(startMillis, since(startMillis, endMillis), new LinkedHashMap<>(settings), new LinkedHashMap<>(summary),
                List.copyOf(steps), List.copyOf(windows), List.copyOf(evals));
    }

    private static double since(long startMillis, long millis) {
        return (millis - startMillis) / 1000.0;
    }

    /**
     * [step, seconds since startMillis (one decimal), pass@1] per evaluation, in order: train
     * --json's pass_at_1_curve.
     */
    public static List<List<Number>> curve(List<RunObserver.Evaluated> evaluations, long startMillis) {
        List<List<Number>> out = new ArrayList<>();
        for (RunObserver.Evaluated e : evaluations) {
            out.add(List.of(e.step(), Math.round(since(startMillis, e.timeMillis()) * 10) / 10.0, e.passAt1()));
        }
        return out;
    }

    /**
     * The settings that tell runs apart: the task and its lengths, seed, steps, τ, the configured
     * start schedule and the one the controller started from, whether it adapts, the shadow share,
     * the held-out evaluation's size and period, and the calibration's seconds (NaN: none).
     */
    public static Map<String, Object> settingsOf(RunSettings s, String configuredSchedule, io.tailguard.rollout.sparse.Schedule start,
                                                 double calibrationSeconds) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("checkpoint", s.train().checkpoint());
        m.put("task", s.train().task().name());
        m.put("task_steps", s.train().task().steps());
        m.put("reward", s.train().task().reward().toString());
        if (s.train().task().isDataset()) {
            // only for dataset runs, so a built-in run's record reads as it always has
            m.put("dataset", s.train().task().dataset().toString());
            m.put("dataset_sha256", io.tailguard.rollout.tasks.DatasetTask.sha256(s.train().task().dataset()));
            m.put("max_new_tokens", s.train().task().maxNewTokens());
            m.put("held_out", s.train().heldOut() == null ? null : s.train().heldOut().toString());
            m.put("chat_template", s.train().task().chat() != null);
        }
        m.put("context_min", s.train().contextMin());
        m.put("context_max", s.train().contextMax());
        m.put("steps", s.train().steps());
        m.put("seed", s.train().seed());
        m.put("sampling_seed", s.train().samplingSeed());
        m.put("tau", s.controller().tau());
        m.put("schedule", configuredSchedule);
        m.put("start_schedule", start.toString());
        m.put("adapt", s.adapt());
        m.put("shadow_fraction", s.rollout().shadowFraction());
        m.put("score_fraction", s.rollout().scoreFraction());
        m.put("kv_cache", s.rollout().kvCacheChosen() ? "choose"
                : s.rollout().kvCache() == ai.djl.ndarray.types.DataType.FLOAT16 ? "float16" : "float32");
        m.put("packed_activations", s.rollout().packedActivations() == io.tailguard.model.PackedLinear.Activations.INT8 ? "int8" : "float32");
        m.put("rollout_threads", s.rollout().threads());
        m.put("learner_threads", s.learner().threads());
        m.put("bin_width", s.controller().binWidth());
        m.put("min_tokens", s.controller().minTokens());
        m.put("eval_n", s.train().evalN());
        m.put("eval_every", s.train().evalEvery());
        m.put("calibration_seconds", calibrationSeconds);
        return m;
    }

    /** Writes the record as JSON, atomically. */
    public void write(Path file) throws IOException {
        JsonObject o = new JsonObject();
        o.addProperty("format", FORMAT);
        o.addProperty("start_millis", startMillis);
        o.add("end_seconds", num(endSeconds));
        o.add("settings", tree(settings));
        o.add("summary", tree(summary));
        JsonArray st = new JsonArray();
        for (StepRow s : steps) {
            JsonObject j = new JsonObject();
            j.addProperty("step", s.step());
            j.add("seconds", num(s.seconds()));
            j.add("reward", num(s.reward()));
            j.add("pass_rate", num(s.passRate()));
            j.addProperty("tokens", s.tokens());
            j.add("rollout_tokens_per_second", num(s.rolloutTokensPerSecond()));
            j.add("rollout_seconds", num(s.rolloutSeconds()));
            j.add("learn_seconds", num(s.learnSeconds()));
            j.add("tis_truncated", num(s.tisTruncated()));
            j.add("loss", num(s.loss()));
            j.addProperty("staleness", s.staleness());
            st.add(j);
        }
        o.add("steps", st);
        JsonArray ws = new JsonArray();
        for (WindowRow w : windows) {
            JsonObject j = new JsonObject();
            j.add("seconds", num(w.seconds()));
            j.addProperty("schedule_version", w.scheduleVersion());
            j.add("budgets", tree(w.budgets()));
            j.add("alpha_p5", tree(w.alphaP5()));
            j.add("tokens", tree(w.tokens()));
            j.add("judged_p5", tree(w.judgedP5()));
            j.add("judged_tokens", tree(w.judgedTokens()));
            j.add("sequence_alpha", num(w.sequenceAlpha()));
            j.add("tau", num(w.tau()));
            j.add("predicted_speedup", num(w.predictedSpeedup()));
            ws.add(j);
        }
        o.add("windows", ws);
        JsonArray es = new JsonArray();
        for (EvalRow e : evaluations) {
            JsonObject j = new JsonObject();
            j.addProperty("step", e.step());
            j.add("seconds", num(e.seconds()));
            j.add("pass_at_1", num(e.passAt1()));
            j.add("eval_seconds", num(e.evalSeconds()));
            es.add(j);
        }
        o.add("evaluations", es);
        AtomicFiles.writeString(file, GSON.toJson(o) + "\n");
    }

    private static final Gson GSON = new GsonBuilder().setPrettyPrinting().serializeNulls().disableHtmlEscaping().create();

    /**
     * Reads a record: a run directory (its run-record.json) or the file itself. A missing or
     * malformed file is an {@link IllegalArgumentException} naming it (and the field).
     */
    public static RunRecord read(Path dirOrFile) {
        Path file = Files.isDirectory(dirOrFile) ? dirOrFile.resolve(FILE_NAME) : dirOrFile;
        String text;
        try {
            text = Files.readString(file);
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException(file + ": no run record (written by `tailguard train` when a run ends)");
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage());
        }
        try {
            JsonObject o = JsonParser.parseString(text).getAsJsonObject();
            int format = field(o, "format").getAsInt();
            if (format != FORMAT) {
                throw new IllegalArgumentException("format: " + format + ", this version reads " + FORMAT);
            }
            List<StepRow> steps = new ArrayList<>();
            JsonArray st = field(o, "steps").getAsJsonArray();
            for (int i = 0; i < st.size(); i++) {
                JsonObject j = st.get(i).getAsJsonObject();
                String at = "steps[" + i + "].";
                steps.add(new StepRow(field(j, "step", at).getAsInt(), dbl(j, "seconds", at), dbl(j, "reward", at), dbl(j, "pass_rate", at),
                        field(j, "tokens", at).getAsLong(), dbl(j, "rollout_tokens_per_second", at), dbl(j, "rollout_seconds", at),
                        dbl(j, "learn_seconds", at), dbl(j, "tis_truncated", at), dbl(j, "loss", at), field(j, "staleness", at).getAsInt()));
            }
            List<WindowRow> windows = new ArrayList<>();
            JsonArray ws = field(o, "windows").getAsJsonArray();
            for (int i = 0; i < ws.size(); i++) {
                JsonObject j = ws.get(i).getAsJsonObject();
                String at = "windows[" + i + "].";
                JsonArray b = field(j, "budgets", at).getAsJsonArray();
                JsonArray a = field(j, "alpha_p5", at).getAsJsonArray();
                JsonArray t = field(j, "tokens", at).getAsJsonArray();
                if (a.size() != b.size() || t.size() != b.size()) {
                    throw new IllegalArgumentException(at + "alpha_p5: budgets, alpha_p5 and tokens must have one entry per bin");
                }
                int[] budgets = new int[b.size()];
                double[] alpha = new double[b.size()];
                long[] tokens = new long[b.size()];
                for (int k = 0; k < budgets.length; k++) {
                    budgets[k] = b.get(k).getAsInt();
                    alpha[k] = a.get(k).isJsonNull() ? Double.NaN : a.get(k).getAsDouble();
                    tokens[k] = t.get(k).getAsLong();
                }
                // judged_p5 / judged_tokens: absent in records written before them (then the window's own)
                double[] judged = alpha;
                long[] judgedTokens = tokens;
                if (j.has("judged_p5") || j.has("judged_tokens")) {
                    JsonArray jp = field(j, "judged_p5", at).getAsJsonArray();
                    JsonArray jt = field(j, "judged_tokens", at).getAsJsonArray();
                    if (jp.size() != b.size() || jt.size() != b.size()) {
                        throw new IllegalArgumentException(at + "judged_p5: budgets, judged_p5 and judged_tokens must have one entry per bin");
                    }
                    judged = new double[b.size()];
                    judgedTokens = new long[b.size()];
                    for (int k = 0; k < budgets.length; k++) {
                        judged[k] = jp.get(k).isJsonNull() ? Double.NaN : jp.get(k).getAsDouble();
                        judgedTokens[k] = jt.get(k).getAsLong();
                    }
                }
                windows.add(new WindowRow(dbl(j, "seconds", at), field(j, "schedule_version", at).getAsLong(), budgets, alpha, tokens,
                        dbl(j, "tau", at), dbl(j, "predicted_speedup", at), judged, judgedTokens,
                        j.has("sequence_alpha") && !j.get("sequence_alpha").isJsonNull() ? dbl(j, "sequence_alpha", at) : Double.NaN));
            }
            List<EvalRow> evals = new ArrayList<>();
            JsonArray es = field(o, "evaluations").getAsJsonArray();
            for (int i = 0; i < es.size(); i++) {
                JsonObject j = es.get(i).getAsJsonObject();
                String at = "evaluations[" + i + "].";
                evals.add(new EvalRow(field(j, "step", at).getAsInt(), dbl(j, "seconds", at), dbl(j, "pass_at_1", at),
                        dbl(j, "eval_seconds", at)));
            }
            return new RunRecord(field(o, "start_millis").getAsLong(), dbl(o, "end_seconds", ""), map(field(o, "settings")),
                    map(field(o, "summary")), List.copyOf(steps), List.copyOf(windows), List.copyOf(evals));
        } catch (IllegalArgumentException | IllegalStateException | UnsupportedOperationException | ClassCastException
                 | JsonParseException e) {
            // gson's own messages name neither the file nor (always) the field: ours do
            throw new IllegalArgumentException(file + ": " + (e.getMessage() == null ? e.toString() : e.getMessage()), e);
        }
    }

    private static JsonElement field(JsonObject o, String name) {
        return field(o, name, "");
    }

    private static JsonElement field(JsonObject o, String name, String at) {
        JsonElement e = o.get(name);
        if (e == null) {
            throw new IllegalArgumentException(at + name + ": missing");
        }
        return e;
    }

    private static double dbl(JsonObject o, String name, String at) {
        JsonElement e = field(o, name, at);
        return e.isJsonNull() ? Double.NaN : e.getAsDouble();
    }

    private static Map<String, Object> map(JsonElement e) {
        @SuppressWarnings("unchecked")
        Map<String, Object> m = GSON.fromJson(e, LinkedHashMap.class);
        return m;
    }

    private static JsonElement num(double v) {
        return Double.isNaN(v) || Double.isInfinite(v) ? JsonNull.INSTANCE : new JsonPrimitive(v);
    }

    /** Any summary value as JSON: arrays and collections element by element, maps by key, NaN as null. */
    static JsonElement tree(Object v) {
        if (v == null) {
            return JsonNull.INSTANCE;
        }
        if (v instanceof Double || v instanceof Float) {
            return num(((Number) v).doubleValue());
        }
        if (v instanceof Number n) {
            return new JsonPrimitive(n);
        }
        if (v instanceof Boolean b) {
            return new JsonPrimitive(b);
        }
        if (v instanceof int[] a) {
            JsonArray j = new JsonArray();
            for (int x : a) {
                j.add(x);
            }
            return j;
        }
        if (v instanceof long[] a) {
            JsonArray j = new JsonArray();
            for (long x : a) {
                j.add(x);
            }
            return j;
        }
        if (v instanceof double[] a) {
            JsonArray j = new JsonArray();
            for (double x : a) {
                j.add(num(x));
            }
            return j;
        }
        if (v instanceof Object[] a) {
            return tree(java.util.Arrays.asList(a));
        }
        if (v instanceof Collection<?> c) {
            JsonArray j = new JsonArray();
            for (Object x : c) {
                j.add(tree(x));
            }
            return j;
        }
        if (v instanceof Map<?, ?> m) {
            JsonObject j = new JsonObject();
            for (Map.Entry<?, ?> x : m.entrySet()) {
                j.add(String.valueOf(x.getKey()), tree(x.getValue()));
            }
            return j;
        }
        return new JsonPrimitive(String.valueOf(v));
    }
}
