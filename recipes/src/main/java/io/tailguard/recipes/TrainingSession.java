package io.tailguard.recipes;

import io.tailguard.learner.AdamW;
import io.tailguard.learner.DistillSparse;
import io.tailguard.learner.GrpoLearner;
import io.tailguard.learner.GrpoObjective;
import io.tailguard.learner.LearnerCheckpoint;
import io.tailguard.learner.LrSchedule;
import io.tailguard.model.ForwardMask;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.lora.LoraAdapter;
import io.tailguard.rollout.sparse.BlockTopKMask;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.worker.RolloutEngine;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * What one training run updates, composed once for the synchronous loop and for the learner actor:
 * the policy's GRPO + TIS learner (AdamW, a learning rate warmed up over warmupSteps and constant
 * to totalSteps) and, while DistillSparse is on, the sparse actor's LoRA with its own trainer and
 * AdamW (docs/algorithms.md, DistillSparse). The session also turns scored trajectories into the
 * learner's samples and saves and restores the learner checkpoint (weights, both optimizers'
 * moments, the step), so a resumed run continues exactly.
 *
 * <p>Not thread-safe; the caller owns the model and closes the session before it.
 */
public final class TrainingSession implements AutoCloseable {
    /** The policy update: G samples per prompt, micro-batches of sequences, peak rate, warm-up and run length. */
    public record Options(int groupSize, int microBatch, double lr, int warmupSteps, int totalSteps) {}

    /**
     * DistillSparse's update of the LoRA: its peak rate (same warm-up and run length as the policy),
     * the KL weight λ, the PPO weight (published 1) and the penalty.
     */
    public record Distill(double lr, double klWeight, double ppoWeight, DistillSparse.Divergence divergence) {}

    private final Qwen3Model model;
    private final Options o;
    private final GrpoLearner learner;
    private LoraAdapter lora;
    private DistillSparse distiller;
    /** The schedule DistillSparse's mask follows (that of the newest rollouts it distils). */
    private Schedule distillSchedule = Schedule.dense();

    public TrainingSession(Qwen3Model model, Options options) {
        this.model = model;
        this.o = options;
        this.learner = new GrpoLearner(model, options.groupSize(), options.microBatch(), GrpoObjective.Options.defaults(),
                new LrSchedule(options.lr(), options.warmupSteps(), options.totalSteps(), 1.0), AdamW.Options.defaults());
    }

    /**
     * DistillSparse on with {@code adapter} (fresh, or loaded from a learner checkpoint): attached to
     * the model switched off (the policy update and the dense scoring ignore it; the sparse actor
     * merges it while it samples) and trained by its own DistillSparse from the next step on.
     */
    public void startDistill(LoraAdapter adapter, Distill d) {
        if (distiller != null) {
            throw new IllegalStateException("DistillSparse is already on");
        }
        lora = adapter;
        model.attach(lora);
        lora.setEnabled(false);
        ForwardMask.Factory mask = lengths -> BlockTopKMask.factory(distillSchedule).forPrompts(lengths);
        distiller = new DistillSparse(model, lora, mask, o.groupSize(),
                new LrSchedule(d.lr(), o.warmupSteps(), o.totalSteps(), 1.0),
                new DistillSparse.Options(d.klWeight(), d.ppoWeight(), d.divergence(), GrpoObjective.Options.defaults(),
                        o.microBatch()));
    }

    /** DistillSparse off: the trainer closed, the LoRA closed and detached. */
    public void stopDistill() {
        if (distiller != null) {
            distiller.close();
            distiller = null;
        }
        if (lora != null) {
            lora.close();
            lora = null;
        }
    }

    public boolean distilling() {
        return distiller != null;
    }

    /** The sparse actor's LoRA while DistillSparse is on, else null. */
    public LoraAdapter lora() {
        return lora;
    }

    /** Policy updates so far (the step of the last report). */
    public int steps() {
        return learner.steps();
    }

    /** Updates the policy's AdamW has taken (recorded in the trainer state). */
    public long optimizerSteps() {
        return learner.optimizer().steps();
    }

    public double peakLr() {
        return learner.lrSchedule().peak();
    }

    /** A new peak rate from the next step on, with the same warm-up shape. */
    public void setPeakLr(double peak) {
        learner.setPeakLr(peak);
    }

    /** One GRPO + TIS update of the policy on consecutive groups of G samples. */
    public GrpoLearner.Report policyStep(List<GrpoLearner.Sample> samples) {
        return learner.step(samples);
    }

    /**
     * One DistillSparse update of the LoRA on the same samples, with the sparse actor's attention
     * under {@code schedule} (the one they were rolled out with). Only while distilling.
     */
    public DistillSparse.Report distillStep(List<GrpoLearner.Sample> samples, Schedule schedule) {
        if (distiller == null) {
            throw new IllegalStateException("DistillSparse is off");
        }
        distillSchedule = schedule;
        return distiller.step(samples);
    }

    /** The learner's samples of a rollout: π_inf is the sampler's log-probs (the learner computes π_old). */
    static List<GrpoLearner.Sample> samples(List<RolloutEngine.Trajectory> trajectories) {
        List<GrpoLearner.Sample> out = new ArrayList<>(trajectories.size());
        for (RolloutEngine.Trajectory t : trajectories) {
            out.add(new GrpoLearner.Sample(t.promptIds(), t.outputIds(), t.behaviourLogprobs(), t.reward()));
        }
        return out;
    }

    /**
     * Writes the learner checkpoint to {@code dir}: weights, the policy's AdamW, {@code state}, and
     * while distilling the LoRA (the folder lora) with its AdamW.
     */
    public void save(Path dir, LearnerCheckpoint.TrainerState state, String tokenizerJson, long version, String parent) {
        save(dir, state, tokenizerJson, version, parent, java.util.Map.of());
    }

    /** As above, with the caller's files (plain names) written in the same atomic step. */
    public void save(Path dir, LearnerCheckpoint.TrainerState state, String tokenizerJson, long version, String parent,
                     java.util.Map<String, byte[]> callerFiles) {
        LearnerCheckpoint.save(dir, model, learner.optimizer(), state, tokenizerJson, version, parent, lora,
                distiller == null ? null : distiller.optimizer(), callerFiles);
    }

    /** Restores the policy's AdamW from the learner checkpoint in {@code dir}; the next update is its step + 1. */
    public LearnerCheckpoint.TrainerState restore(Path dir) {
        LearnerCheckpoint.TrainerState st = LearnerCheckpoint.restore(dir, learner.optimizer());
        learner.resumeAt((int) st.step());
        return st;
    }

    /**
     * Restores the LoRA's weights and AdamW from the learner checkpoint in {@code dir}; DistillSparse's
     * next update is {@code step} + 1.
     */
    public void restoreDistill(Path dir, int step) {
        LearnerCheckpoint.restoreLora(dir, lora, distiller.optimizer());
        distiller.resumeAt(step);
    }

    /** As {@link #restoreDistill(Path, int)}, continuing at the update count the restored AdamW holds. */
    public void restoreDistill(Path dir) {
        LearnerCheckpoint.restoreLora(dir, lora, distiller.optimizer());
        distiller.resumeAt((int) distiller.optimizer().steps());
    }

    /**
     * Closes the trainers. A LoRA stays attached to the model (the synchronous loop still rolls out
     * with it after its last update); {@link #stopDistill()} drops it.
     */
    @Override
    public void close() {
        if (distiller != null) {
            distiller.close();
            distiller = null;
        }
        learner.close();
    }
}
