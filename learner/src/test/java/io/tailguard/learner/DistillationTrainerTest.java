package io.tailguard.learner;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import io.tailguard.model.lora.LoraAdapter;
import io.tailguard.model.lora.LoraConfig;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DistillationTrainerTest {
    private static List<int[]> sequences(int n, long seed) {
        Random r = new Random(seed);
        List<int[]> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int[] s = new int[6 + r.nextInt(6)]; // ragged: padding must not count
            for (int j = 0; j < s.length; j++) {
                s[j] = r.nextInt(SupervisedTrainerTest.CONFIG.vocabSize());
            }
            out.add(s);
        }
        return out;
    }

    /** Mean over next-token positions of KL(teacher ‖ student), one sequence at a time, in double on the host. */
    private static double klReference(Qwen3Model teacher, Qwen3Model student, List<int[]> seqs) {
        double sum = 0;
        long n = 0;
        int v = teacher.config().vocabSize();
        try (NDManager m = NDManager.newBaseManager()) {
            for (int[] s : seqs) {
                long[] ids = new long[s.length - 1];
                for (int j = 0; j < ids.length; j++) {
                    ids[j] = s[j];
                }
                float[] a = teacher.forward(m.create(ids, new Shape(1, ids.length))).toFloatArray();
                float[] b = student.forward(m.create(ids, new Shape(1, ids.length))).toFloatArray();
                for (int t = 0; t < ids.length; t++) {
                    double[] lp = logSoftmax(a, t * v, v);
                    double[] lq = logSoftmax(b, t * v, v);
                    for (int k = 0; k < v; k++) {
                        sum += Math.exp(lp[k]) * (lp[k] - lq[k]);
                    }
                    n++;
                }
            }
        }
        return sum / n;
    }

    private static double[] logSoftmax(float[] x, int off, int v) {
        double max = Double.NEGATIVE_INFINITY;
        for (int k = 0; k < v; k++) {
            max = Math.max(max, x[off + k]);
        }
        double z = 0;
        for (int k = 0; k < v; k++) {
            z += Math.exp(x[off + k] - max);
        }
        double[] out = new double[v];
        for (int k = 0; k < v; k++) {
            out[k] = x[off + k] - max - Math.log(z);
        }
        return out;
    }

    @Test
    void aStepsLossIsTheMeanKlAndDistillingALoraPullsTheStudentToTheTeacher() {
        var c = SupervisedTrainerTest.CONFIG;
        try (Qwen3Model teacher = Qwen3Model.create(c, RandomInit.weights(c, 1, 0.3, 0.1), Device.cpu());
             Qwen3Model student = Qwen3Model.create(c, RandomInit.weights(c, 2, 0.3, 0.1), Device.cpu());
             LoraAdapter lora = LoraAdapter.create(student, new LoraConfig(4, 8, LoraConfig.ALL_LINEAR), 3)) {
            student.attach(lora);
            List<int[]> data = sequences(8, 5);
            Map<String, float[]> base = student.hostWeights();
            double before = klReference(teacher, student, data);
            double first;
            double last = Double.NaN;
            try (DistillationTrainer d = new DistillationTrainer(student, teacher, lora.parameters(),
                    new LrSchedule(1e-2, 5, 80, 0.1), AdamW.Options.defaults())) {
                first = d.step(data).loss();
                for (int s = 1; s < 80; s++) {
                    last = d.step(data).loss();
                }
            }
            assertEquals(before, first, 1e-4 * before, "the first step's loss is the KL before it");
            double after = klReference(teacher, student, data);
            assertEquals(after, last, 0.2 * after + 1e-4, "the last step's loss is about the KL it leaves");
            assertTrue(after < 0.7 * before, "KL " + before + " -> " + after);
            Map<String, float[]> now = student.hostWeights();
            for (String name : base.keySet()) {
                assertArrayEquals(base.get(name), now.get(name), 0f, name);
            }
        }
    }

    @Test
    void aStudentEqualToItsTeacherHasZeroLoss() {
        var c = SupervisedTrainerTest.CONFIG;
        try (Qwen3Model teacher = Qwen3Model.create(c, RandomInit.weights(c, 1, 0.3, 0.1), Device.cpu());
             Qwen3Model student = Qwen3Model.create(c, RandomInit.weights(c, 1, 0.3, 0.1), Device.cpu());
             LoraAdapter lora = LoraAdapter.create(student, new LoraConfig(2, 4, LoraConfig.ALL_LINEAR), 3);
             DistillationTrainer d = new DistillationTrainer(student, teacher, lora.parameters(),
                     new LrSchedule(1e-3, 0, 1, 0.1), AdamW.Options.defaults())) {
            student.attach(lora);
            assertEquals(0.0, d.step(sequences(3, 9)).loss(), 1e-6);
        }
    }
}
