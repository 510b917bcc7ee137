package io.tailguard.learner;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import io.tailguard.model.GradientCollectors;
import io.tailguard.model.Qwen3Model;

import java.util.List;
import java.util.Map;

/**
 * Teacher-forced distillation: the loss of a step is the mean over every next-token position of
 * every sequence of KL(teacher ‖ student) = Σ_v p_T(v) (log p_T(v) − log p_S(v)), the teacher's
 * distributions computed once per step without gradients. Trains only {@code trainable} (the A and B
 * of a LoRA attached to the student, say). Used to recover a compressed model towards the original:
 * its objective is the KL that compression reports. Holds the JVM's one GradientCollector only while
 * a step runs.
 */
public final class DistillationTrainer implements AutoCloseable {
    private final Qwen3Model student;
    private final Qwen3Model teacher;
    private final Map<String, NDArray> params;
    private final LrSchedule schedule;
    private final AdamW optimizer;
    private int step;

    public DistillationTrainer(Qwen3Model student, Qwen3Model teacher, Map<String, NDArray> trainable, LrSchedule schedule,
                               AdamW.Options options) {
        if (trainable.isEmpty()) {
            throw new IllegalArgumentException("nothing to train");
        }
        if (student.config().vocabSize() != teacher.config().vocabSize()) {
            throw new IllegalArgumentException("teacher and student vocabularies differ: " + teacher.config().vocabSize()
                    + " vs " + student.config().vocabSize());
        }
        this.student = student;
        this.teacher = teacher;
        this.params = trainable;
        this.schedule = schedule;
        Gradients.track(params, true);
        this.optimizer = new AdamW(params, options, student.manager());
    }

    /** After earlier steps elsewhere: the next step is step + 1 (the learning rate follows). */
    public void resumeAt(int step) {
        if (step < 0) {
            throw new IllegalArgumentException("step must be >= 0, got " + step);
        }
        this.step = step;
    }

    /** One update on the sequences (each ≥ 2 tokens; every position but the last is a target); returns the step's mean KL. */
    public SupervisedTrainer.StepStats step(List<int[]> sequences) {
        int b = sequences.size();
        int t = 0;
        long tokens = 0;
        for (int[] s : sequences) {
            if (s.length < 2) {
                throw new IllegalArgumentException("a sequence of " + s.length + " tokens has no next token to distil");
            }
            t = Math.max(t, s.length - 1);
            tokens += s.length - 1;
        }
        long[] input = new long[b * t];
        float[] mask = new float[b * t];
        for (int i = 0; i < b; i++) {
            int[] s = sequences.get(i);
            for (int j = 0; j < s.length - 1; j++) {
                input[i * t + j] = s[j];
                mask[i * t + j] = 1f;
            }
        }
        Gradients.zero(params);
        double loss;
        try (NDManager m = student.manager().newSubManager()) {
            NDArray ids = m.create(input, new Shape(b, t));
            NDArray teacherLogp = teacher.forward(ids).logSoftmax(-1);             // [b, t, V], no gradient
            NDArray teacherP = teacherLogp.exp();
            try (GradientCollector gc = GradientCollectors.exclusive()) {
                NDArray studentLogp = student.forward(ids).logSoftmax(-1);
                NDArray perPosition = teacherP.mul(teacherLogp.sub(studentLogp)).sum(new int[] {-1}); // [b, t]
                NDArray l = perPosition.mul(m.create(mask, new Shape(b, t))).sum().div((float) tokens);
                gc.backward(l);
                loss = l.getFloat();
            }
        }
        step++;
        double lr = schedule.at(step);
        double norm = optimizer.step(lr);
        return new SupervisedTrainer.StepStats(step, loss, lr, norm, tokens);
    }

    @Override
    public void close() {
        optimizer.close();
        Gradients.track(params, false);
    }
}
