package io.tailguard.exp;

import ai.djl.Device;
import io.tailguard.learner.AdamW;
import io.tailguard.learner.LrSchedule;
import io.tailguard.learner.SupervisedTrainer;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import io.tailguard.model.tokenizer.CharTokenizer;
import io.tailguard.rollout.generation.*;
import io.tailguard.rollout.tasks.*;
import org.junit.jupiter.api.Test;

import java.util.*;

class PretrainExperiment {
    static int[] cat(int a, int[] b) { int[] r = new int[b.length + 1]; r[0] = a; System.arraycopy(b, 0, r, 1, b.length); return r; }
    static int[] app(int[] b, int a) { int[] r = Arrays.copyOf(b, b.length + 1); r[b.length] = a; return r; }
    /** kv-recall body with query lines "?key=value" repeating earlier pairs, so every doc drills retrieval. */
    static String practiceDoc(String text, Random r) {
        String[] lines = text.split("\n");
        StringBuilder sb = new StringBuilder(lines[0]).append('\n');
        List<String> seen = new ArrayList<>();
        for (int i = 1; i < lines.length - 1; i++) {
            sb.append(lines[i]).append('\n');
            seen.add(lines[i]);
            if (seen.size() > 3 && r.nextDouble() < 0.3) {
                sb.append('?').append(seen.get(r.nextInt(seen.size() - 1))).append('\n');
            }
        }
        return sb.toString();
    }

    @Test
    void run() {
        String taskName = System.getProperty("exp.task", "kv-recall");
        int ctx = Integer.getInteger("exp.ctx", 256);
        int steps = Integer.getInteger("exp.steps", 300);
        int batch = Integer.getInteger("exp.batch", 16);
        double lr = Double.parseDouble(System.getProperty("exp.lr", "3e-3"));
        CharTokenizer tok = CharTokenizer.standard();
        ModelConfig c = ModelConfig.preset("tiny", tok.vocabSize(), tok.eosId());
        Task task = Tasks.builtin(taskName, ctx);
        try (Qwen3Model model = Qwen3Model.create(c, RandomInit.weights(c, 0, 0.02, 0), Device.cpu());
             SupervisedTrainer tr = new SupervisedTrainer(model, new LrSchedule(lr, 30, steps, 0.1), AdamW.Options.defaults(), batch)) {
            long t0 = System.nanoTime();
            long idx = 0;
            for (int s = 1; s <= steps; s++) {
                List<int[]> ps = new ArrayList<>(), cs = new ArrayList<>();
                int practice = Integer.getInteger("exp.practice", 0);
                for (int i = 0; i < practice; i++) {
                    Task tk = Boolean.getBoolean("exp.mix") ? Tasks.builtin(taskName, 64 + (int) ((idx * 7919) % (ctx - 63))) : task;
                    Prompt p = tk.prompt(1, idx++);
                    ps.add(new int[] {tok.bosId()});
                    cs.add(tok.encode(practiceDoc(p.text(), new Random(idx))));
                }
                for (int i = practice; i < batch; i++) {
                    Task tk = Boolean.getBoolean("exp.mix") ? Tasks.builtin(taskName, 64 + (int) ((idx * 7919) % (ctx - 63))) : task;
                    Prompt p = tk.prompt(1, idx++);
                    ps.add(cat(tok.bosId(), tok.encode(p.text())));
                    cs.add(app(tok.encode(tk.solution(p).orElseThrow()), tok.eosId()));
                }
                var st = tr.step(ps, cs);
                if (s % 25 == 0) System.out.printf("step %d loss %.4f lr %.2g norm %.2f %.1fs%n", s, st.loss(), st.lr(), st.gradNorm(), (System.nanoTime() - t0) / 1e9);
            }
            tr.close();
            int n = 64, ok = 0;
            List<int[]> ps = new ArrayList<>(); List<Prompt> pr = new ArrayList<>();
            for (int i = 0; i < n; i++) { Prompt p = task.prompt(999, i); pr.add(p); ps.add(cat(tok.bosId(), tok.encode(p.text()))); }
            var res = new Generator(model).generate(new GenerationRequest(ps, 40, SamplingParams.greedy(), Set.of(tok.eosId()), 0));
            for (int i = 0; i < n; i++) {
                int[] out = res.sequences().get(i).outputIds();
                int end = out.length; for (int j = 0; j < out.length; j++) if (out[j] == tok.eosId()) { end = j; break; }
                if (task.verify(pr.get(i), tok.decode(Arrays.copyOf(out, end))).reward() == 1) ok++;
                if (i < 3) System.out.println("got: " + tok.decode(Arrays.copyOf(out, end)).replace("\n", "\\n") + " | want " + task.solution(pr.get(i)).get().replace("\n", "\\n"));
            }
            System.out.printf("%s ctx %d steps %d: pass@1 %.3f, %.1fs%n", taskName, ctx, steps, ok / (double) n, (System.nanoTime() - t0) / 1e9);
        }
    }
}
