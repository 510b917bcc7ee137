package io.tailguard.recipes;

import io.tailguard.learner.LearnerCheckpoint;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.tasks.TaskSpec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * When a run of the synchronous loop ({@link SyncTrainer}) may continue a learner checkpoint: the
 * checkpoint is of the run's kind, has its seed, a step within its steps, the data cursor of that
 * step at its prompts per step, and the run's settings that shape the steps. A resumed run then
 * computes the steps the uninterrupted run would have.
 *
 * <p>Bad input is an IllegalArgumentException whose message starts with the parameter it is about
 * (resume, seed, steps, prompts, task, dataset, max-new-tokens, chat-template, context, group, lr, micro-batch, lora-rank, lora-alpha,
 * lora-targets, lora-lr, distill-kl, distill-divergence, distill-ppo), or with "the schedule".
 */
public final class SyncResume {
    /** The derived settings' keys in the trainer state; the others are "--" and the parameter's name. */
    static final String SCHEDULE = "schedule";
    static final String WARMUP = "warm-up steps";

    private SyncResume() {
    }

    /**
     * The settings that shape the steps besides the seed and the prompts per step (which the trainer
     * state holds anyway), recorded in the learner checkpoint so that a resume can refuse different
     * ones. The step count itself may grow (the rate is constant after the warm-up) as long as the
     * warm-up stays the same. The keys are those checkpoints have always recorded: the command line's
     * spelling of each parameter ("--lr"), and "schedule" and "warm-up steps" for the derived ones.
     *
     * @param distill null without DistillSparse
     */
    public static Map<String, String> settings(TaskSpec task, int context, Schedule schedule, SyncTrainer.Options o,
                                               SyncTrainer.Distill distill) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("--task", task.name());
        if (task.isDataset()) {
            // the file's contents, not its path: a resume must read the same records in the same order
            m.put("--dataset", "sha256:" + io.tailguard.rollout.tasks.DatasetTask.sha256(task.dataset()));
            m.put("--max-new-tokens", Integer.toString(task.maxNewTokens()));
        }
        if (task.chat() != null) {
            // the system prompt's text too: a resume with another one would render other prompts
            m.put("--chat-template", "on" + (task.chat().systemPrompt() == null ? "" : ", system prompt " + task.chat().systemPrompt())
                    + (task.chat().thinking() == null ? "" : ", enable-thinking " + task.chat().thinking()));
        }
        // the task's knobs only when set, so a checkpoint from before they existed resumes as it did
        if (task.steps() != 0) {
            m.put("--task-steps", Integer.toString(task.steps()));
        }
        if (task.reward() != TaskSpec.Reward.EXACT) {
            m.put("--reward", task.reward().toString());
        }
        m.put("--context", Integer.toString(context));
        m.put(SCHEDULE, schedule.isDense() ? "dense" : schedule.toString());
        m.put("--group", Integer.toString(o.groupSize()));
        m.put("--lr", Double.toString(o.lr()));
        m.put("--micro-batch", Integer.toString(o.microBatch()));
        m.put(WARMUP, Integer.toString(o.warmupSteps()));
        if (distill != null) {
            m.put("--lora-rank", Integer.toString(distill.lora().rank()));
            m.put("--lora-alpha", Double.toString(distill.lora().alpha()));
            m.put("--lora-targets", String.join(",", distill.lora().targetModules()));
            m.put("--lora-lr", Double.toString(distill.lr()));
            m.put("--distill-kl", Double.toString(distill.klWeight()));
            m.put("--distill-divergence", distill.divergence().label());
            m.put("--distill-ppo", Double.toString(distill.ppoWeight()));
        }
        return m;
    }

    /**
     * The step of the learner checkpoint in {@code out}, which a run with these options (and
     * DistillSparse or not) and these {@link #settings} can continue; else an
     * IllegalArgumentException naming the parameter that differs and the file. A setting the
     * checkpoint did not record is not checked.
     */
    public static int step(Path out, SyncTrainer.Options o, boolean distill, Map<String, String> settings) {
        if (!LearnerCheckpoint.exists(out)) {
            throw new IllegalArgumentException("resume: " + out + " holds no learner checkpoint (" + LearnerCheckpoint.STATE
                    + " and " + LearnerCheckpoint.OPTIMIZER + ")");
        }
        LearnerCheckpoint.TrainerState st = LearnerCheckpoint.state(out);
        Path f = out.resolve(LearnerCheckpoint.STATE);
        String kind = SyncTrainer.kind(distill);
        if (!kind.equals(st.kind())) {
            throw new IllegalArgumentException("resume: " + f + " is a " + st.kind() + " checkpoint, but this run is " + kind
                    + (distill ? " (distill)" : " (no distill)"));
        }
        if (st.seed() != o.seed()) {
            throw new IllegalArgumentException("seed " + o.seed() + " differs from the seed " + st.seed() + " in " + f);
        }
        if (st.step() < 0 || st.step() > o.steps()) {
            throw new IllegalArgumentException("steps " + o.steps() + " is below the step " + st.step() + " in " + f);
        }
        if (st.dataCursor() != st.step() * o.promptsPerStep()) {
            throw new IllegalArgumentException("prompts " + o.promptsPerStep() + " differs from the run in " + f
                    + " (data cursor " + st.dataCursor() + " after step " + st.step() + ")");
        }
        for (Map.Entry<String, String> e : settings.entrySet()) {
            String was = st.options().get(e.getKey());
            if (was != null && !was.equals(e.getValue())) {
                throw new IllegalArgumentException(switch (e.getKey()) {
                    case WARMUP -> "steps " + o.steps() + " gives " + e.getValue() + " warm-up steps, the run in " + f
                            + " had " + was;
                    case SCHEDULE -> "the schedule (" + e.getValue() + ") differs from the run's in " + f + " (" + was + ")";
                    default -> e.getKey().replaceFirst("^--", "") + " " + e.getValue() + " differs from " + was + " in " + f;
                });
            }
        }
        if (distill && !Files.isRegularFile(out.resolve(LearnerCheckpoint.LORA_OPTIMIZER))) {
            throw new IllegalArgumentException("resume with distill: " + out.resolve(LearnerCheckpoint.LORA_OPTIMIZER)
                    + " does not exist (the LoRA's optimizer state; checkpoints written before it cannot resume DistillSparse)");
        }
        return (int) st.step();
    }
}
