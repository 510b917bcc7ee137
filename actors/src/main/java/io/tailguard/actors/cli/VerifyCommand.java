package io.tailguard.actors.cli;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import io.tailguard.rollout.tasks.DatasetTask;
import io.tailguard.rollout.tasks.Prompt;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.Verdict;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

@Command(name = "verify", mixinStandardHelpOptions = true,
        description = {"Scores given completions with a task's verifier, exactly as training rewards them: check a reward "
                + "function (and its resistance to reward hacking) before a run.",
                "--completions FILE has one JSON object per line, {\"id\": ..., \"completion\": ...}: for a dataset task "
                        + "the id of a record of --dataset; for a built-in task a prompt id as eval and training write "
                        + "them (\"copy/c768/s42/i17\": task, context, seed, index), with the task's knobs (--task-steps, "
                        + "--reward) as in the run.",
                "Every line is checked before any is scored. With --json: one object {\"id\":..,\"reward\":..,\"reason\":..} "
                        + "per completion in input order, then {\"n\":..,\"mean_reward\":..,\"correct\":..,\"failures\":{reason:count}}."})
final class VerifyCommand implements Callable<Integer> {
    @Mixin
    Common common;

    @Mixin
    TaskOptions task;

    @Option(names = "--completions", required = true, description = "JSON-lines file of {\"id\", \"completion\"} objects.")
    Path completions;

    private static final Pattern BUILTIN_ID = Pattern.compile("(.+)/c(\\d+)/s(-?\\d+)/i(\\d+)");

    /** One line of the completions file, resolved to its prompt. */
    private record Item(String id, Prompt prompt, Task task, String completion) {
    }

    @Override
    public Integer call() throws Exception {
        task.validate();
        task.refuseChat("verify");
        List<Item> items = read(resolver());
        List<Verdict> verdicts = score(items);
        Map<String, Integer> failures = new TreeMap<>();
        double sum = 0;
        int correct = 0;
        for (int i = 0; i < items.size(); i++) {
            Verdict v = verdicts.get(i);
            sum += v.reward();
            correct += v.isCorrect() ? 1 : 0;
            if (!v.isCorrect()) {
                failures.merge(v.reason(), 1, Integer::sum);
            }
            if (common.json) {
                Map<String, Object> line = new LinkedHashMap<>();
                line.put("id", items.get(i).id());
                line.put("reward", v.reward());
                line.put("reason", v.reason());
                Json.print(line);
            } else {
                System.out.printf("%-24s %.3f  %s%n", items.get(i).id(), v.reward(), v.reason());
            }
        }
        Map<String, Object> summary = new LinkedHashMap<>();
        summary.put("n", items.size());
        summary.put("mean_reward", items.isEmpty() ? 0.0 : Progress.round(sum / items.size(), 6));
        summary.put("correct", correct);
        summary.put("failures", failures);
        if (common.json) {
            Json.print(summary);
        } else {
            System.out.printf("%d completions, %d correct, mean reward %.4f%n", items.size(), correct,
                    items.isEmpty() ? 0.0 : sum / items.size());
        }
        return 0;
    }

    /** From a line's id to its prompt and the task that scores it; a BadInput for an id that names none. */
    private interface Resolver {
        Item resolve(String id, String completion, String where);
    }

    private Resolver resolver() {
        if (task.isDataset()) {
            DatasetTask t = (DatasetTask) task.resolve(0);
            Map<String, Prompt> byId = new HashMap<>();
            for (Prompt p : t.prompts()) {
                byId.put(p.id(), p);
            }
            return (id, completion, where) -> {
                Prompt p = byId.get(id);
                if (p == null) {
                    throw new BadInput(where + ": id \"" + id + "\" is not a record of " + task.dataset);
                }
                return new Item(id, p, t, completion);
            };
        }
        Map<Integer, Task> byContext = new HashMap<>();
        return (id, completion, where) -> {
            Matcher m = BUILTIN_ID.matcher(id);
            if (!m.matches() || !m.group(1).equals(task.task)) {
                throw new BadInput(where + ": id \"" + id + "\" is not a prompt id of " + task.task
                        + " (" + task.task + "/c<context>/s<seed>/i<index>)");
            }
            int context;
            long seed;
            long index;
            try {
                context = Integer.parseInt(m.group(2));
                seed = Long.parseLong(m.group(3));
                index = Long.parseLong(m.group(4));
            } catch (NumberFormatException e) {
                throw new BadInput(where + ": id \"" + id + "\" has a number out of range");
            }
            Task t;
            try {
                t = byContext.computeIfAbsent(context, c -> task.resolve(c));
            } catch (IllegalArgumentException e) {
                throw new BadInput(where + ": id \"" + id + "\": " + e.getMessage());
            }
            Prompt p = t.prompt(seed, index);
            if (!p.id().equals(id)) {
                throw new BadInput(where + ": id \"" + id + "\" regenerates as \"" + p.id() + "\"");
            }
            return new Item(id, p, t, completion);
        };
    }

    private List<Item> read(Resolver resolver) {
        List<String> lines;
        try {
            lines = Files.readAllLines(completions, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new BadInput("--completions " + completions + ": cannot read: " + e.getMessage());
        }
        List<Item> items = new ArrayList<>();
        for (int n = 0; n < lines.size(); n++) {
            String line = lines.get(n);
            if (line.isBlank()) {
                continue;
            }
            String where = completions + ":" + (n + 1);
            JsonObject o = parse(line, where);
            String id = stringField(o, "id", where);
            String completion = stringField(o, "completion", where);
            items.add(resolver.resolve(id, completion, where));
        }
        if (items.isEmpty()) {
            throw new BadInput("--completions " + completions + ": no completions");
        }
        return items;
    }

    private static JsonObject parse(String line, String where) {
        try {
            JsonReader reader = new JsonReader(new StringReader(line));
            reader.setStrictness(Strictness.STRICT);
            JsonElement e = JsonParser.parseReader(reader);
            if (reader.peek() != com.google.gson.stream.JsonToken.END_DOCUMENT) {
                throw new BadInput(where + ": text after the JSON object");
            }
            if (!e.isJsonObject()) {
                throw new BadInput(where + ": not a JSON object");
            }
            return e.getAsJsonObject();
        } catch (JsonParseException | IOException | IllegalStateException e) {
            throw new BadInput(where + ": not a JSON object: " + e.getMessage());
        }
    }

    private static String stringField(JsonObject o, String key, String where) {
        JsonElement e = o.get(key);
        if (e == null || !e.isJsonPrimitive() || !e.getAsJsonPrimitive().isString()) {
            throw new BadInput(where + ": field \"" + key + "\" must be a string");
        }
        return e.getAsString();
    }

    /** Scores on as many threads as there are cores (the code verifier's runs are independent); results in input order. */
    private static List<Verdict> score(List<Item> items) throws InterruptedException, ExecutionException {
        int threads = Math.max(1, Math.min(items.size(), Runtime.getRuntime().availableProcessors()));
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<Verdict>> futures = new ArrayList<>();
            for (Item it : items) {
                futures.add(pool.submit(() -> it.task().verify(it.prompt(), it.completion())));
            }
            List<Verdict> out = new ArrayList<>();
            for (Future<Verdict> f : futures) {
                out.add(f.get());
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
    }
}
