package io.tailguard.actors.runtime;

import com.esotericsoftware.kryo.Kryo;
import io.tailguard.rollout.tasks.Prompt;

import java.util.List;

/**
 * Every class that may cross nodes, with a fixed Kryo id (the order below; append only, so nodes of
 * one version agree). Registration is required: an unlisted class is refused when sent.
 */
final class WireRegistry {
    private static final int FIRST_ID = 100;

    static final List<Class<?>> CLASSES = List.of(
            // field types
            int[].class, long[].class, float[].class, double[].class, byte[].class, String[].class,
            Prompt.class, Prompt[].class,
            // shared
            ScheduleSpec.class, PolicyPublished.class,
            // controller
            Controller.RequestWork.class, Controller.LeaseDone.class, Controller.TailReport.class,
            Controller.BufferDepth.class, Controller.Tune.class, Controller.TuneResult.class,
            Controller.GetStatus.class, ControllerStatus.class,
            // worker
            RolloutWorker.Work.class, RolloutWorker.NoWork.class,
            // buffer
            TrajectoryBuffer.Sample.class, TrajectoryBuffer.Sample[].class, TrajectoryBuffer.GroupResult.class,
            TrajectoryBuffer.GroupResult[].class, TrajectoryBuffer.Trajectories.class, TrajectoryBuffer.NextBatch.class,
            TrajectoryBuffer.Batch.class,
            // observer
            RunObserver.Step.class, RunObserver.Window.class, RunObserver.Evaluated.class, RunObserver.Finished.class,
            RunObserver.Compressed.class,
            // live settings (appended: ids stay fixed)
            LiveSettings.class, Controller.WantSettings.class, ScheduleSpec[].class,
            // the compressed rollout option (appended: ids stay fixed)
            CompressedPublished.class, ControllerStatus.CompressedOption.class, RunObserver.OptionWindow.class,
            // the status as a record of records (appended: ids stay fixed)
            ControllerStatus.Schedule.class, ControllerStatus.Run.class, TuningBook.Tuned.class, TuningBook.Tuned[].class,
            // the rollout speedup measured in the run (appended: ids stay fixed)
            RunObserver.Rollout.class, Controller.RolloutTimed.class,
            // the controller's failed file writes in the status (appended: ids stay fixed)
            ControllerStatus.Failures.class, Controller.CompressionJobs.class,
            // the approximation budget's options in the status (appended: ids stay fixed)
            ControllerStatus.Approximation.class, ControllerStatus.Option.class, ControllerStatus.Option[].class,
            // a lease too large to deliver (appended: ids stay fixed)
            Controller.LeaseOversized.class,
            // the learner holds leasing while it evaluates (appended: ids stay fixed)
            Controller.HoldLeases.class);

    private WireRegistry() {
    }

    static void registerAll(Kryo kryo) {
        int id = FIRST_ID;
        for (Class<?> c : CLASSES) {
            kryo.register(c, id++);
        }
    }
}
