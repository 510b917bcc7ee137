package io.tailguard.actors.runtime;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.Gauge;
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import io.prometheus.metrics.instrumentation.jvm.JvmMetrics;
import io.prometheus.metrics.model.registry.PrometheusRegistry;

import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * The Prometheus series of one node (docs/architecture.md, metrics), served as text on /metrics. Actors hold
 * this object and update it; the client's metric types are thread-safe, so no actor shares other
 * state through it. Names start with tailguard_; units are in the names.
 */
final class NodeMetrics implements AutoCloseable {
    private final PrometheusRegistry registry = new PrometheusRegistry();
    private HTTPServer server;

    // rollout
    final Counter rolloutTokens = Counter.builder().name("tailguard_rollout_tokens_total")
            .help("Generated rollout tokens").labelNames("mode").register(registry);
    final Gauge rolloutTokensPerSecond = Gauge.builder().name("tailguard_rollout_tokens_per_second")
            .help("Decode throughput of the last lease, per worker").labelNames("worker").register(registry);
    final Counter rolloutSeconds = Counter.builder().name("tailguard_rollout_seconds_total")
            .help("Rollout generation seconds by phase (prefill, decode), over all leases").labelNames("phase").register(registry);
    final Gauge rolloutDecodeFraction = Gauge.builder().name("tailguard_rollout_decode_fraction")
            .help("Share of the last lease's rollout seconds (prefill and decode) spent decoding").register(registry);
    final Gauge measuredSpeedup = Gauge.builder().name("tailguard_measured_rollout_speedup")
            .help("Dense over live-schedule decode seconds of the last lease that measured it (the same tokens, alternating step by step)")
            .register(registry);
    final Gauge measuredSpeedupPredicted = Gauge.builder().name("tailguard_measured_rollout_speedup_predicted")
            .help("The cost model's dense over live-schedule decode speedup for the same steps as tailguard_measured_rollout_speedup")
            .register(registry);
    final Counter trajectories = Counter.builder().name("tailguard_trajectories_total")
            .help("Trajectories rolled out").register(registry);
    final Gauge policyVersionLoaded = Gauge.builder().name("tailguard_worker_policy_version")
            .help("Policy version a worker rolls out with").labelNames("worker").register(registry);
    final Gauge workerLora = Gauge.builder().name("tailguard_worker_lora")
            .help("1 while a worker's sparse actor samples with the policy version's DistillSparse LoRA, else 0").labelNames("worker").register(registry);
    final Counter hotSwaps = Counter.builder().name("tailguard_policy_swaps_total")
            .help("Policy versions loaded by workers").labelNames("worker").register(registry);
    // controller
    final Gauge alphaP5 = Gauge.builder().name("tailguard_alpha_p5")
            .help("p5 of the acceptance rate α per position bin, at the bin's budget (kept windows)").labelNames("bin").register(registry);
    final Gauge budget = Gauge.builder().name("tailguard_kv_budget_tokens")
            .help("KV budget per position bin").labelNames("bin").register(registry);
    final Gauge scheduleVersion = Gauge.builder().name("tailguard_schedule_version")
            .help("Current schedule version").register(registry);
    final Counter scheduleChanges = Counter.builder().name("tailguard_schedule_changes_total")
            .help("Budget changes by direction").labelNames("direction").register(registry);
    final Gauge tau = Gauge.builder().name("tailguard_tau").help("Target p5 α").register(registry);
    final Gauge settingsVersion = Gauge.builder().name("tailguard_settings_version")
            .help("Live settings version: one more per accepted tune or config-file edit").register(registry);
    final Gauge predictedSpeedup = Gauge.builder().name("tailguard_predicted_rollout_speedup")
            .help("Cost-model decode speedup of the current schedule over dense at the run's contexts").register(registry);
    final Counter leases = Counter.builder().name("tailguard_leases_total")
            .help("Leases by outcome").labelNames("outcome").register(registry);
    final Gauge leasesOpen = Gauge.builder().name("tailguard_leases_open").help("Leases in flight").register(registry);
    final Counter stateWriteFailures = Counter.builder().name("tailguard_state_write_failures_total")
            .help("Writes of the controller's files (state.json, schedule.conf) that failed, each after its retries").register(registry);
    // buffer
    final Gauge bufferGroups = Gauge.builder().name("tailguard_buffer_groups")
            .help("Complete groups waiting for the learner").register(registry);
    final Counter groupsDropped = Counter.builder().name("tailguard_groups_dropped_total")
            .help("Groups not trained on, by reason").labelNames("reason").register(registry);
    final Gauge staleness = Gauge.builder().name("tailguard_staleness_versions")
            .help("Policy versions between the learner and the trajectories of its last batch (max)").register(registry);
    final Gauge stalenessBound = Gauge.builder().name("tailguard_buffer_staleness_bound")
            .help("Staleness bound of the trajectory buffer (live-tunable)").register(registry);
    // the run's groups, lossless (the learner node's buffer: the journal and the learner's checkpointed ledger)
    /** The run's group counts: completed = trained + dropped stale (per length bin) + buffered. */
    record TrajectoryCounts(long completed, long trained, long buffered, long[] droppedStaleByBin) {}

    private volatile TrajectoryCounts trajectoryCounts;

    {
        io.prometheus.metrics.core.metrics.CounterWithCallback.builder().name("tailguard_trajectories_completed_total")
                .help("Groups completed in the run, each group id once: durable in the journal before their lease was acknowledged "
                        + "(run totals as of the learner's checkpoint; the learner node only)")
                .callback(cb -> {
                    TrajectoryCounts c = trajectoryCounts;
                    if (c != null) {
                        cb.call(c.completed());
                    }
                }).register(registry);
        io.prometheus.metrics.core.metrics.CounterWithCallback.builder().name("tailguard_trajectories_trained_total")
                .help("Completed groups the learner's weights were trained on (run total; a restarted learner goes back to its checkpoint's)")
                .callback(cb -> {
                    TrajectoryCounts c = trajectoryCounts;
                    if (c != null) {
                        cb.call(c.trained());
                    }
                }).register(registry);
        io.prometheus.metrics.core.metrics.CounterWithCallback.builder().name("tailguard_trajectories_dropped_stale_total")
                .help("Completed groups the staleness bound dropped, by length bin: the controller's position bin of the group's "
                        + "longest sequence (run total)")
                .labelNames("bin")
                .callback(cb -> {
                    TrajectoryCounts c = trajectoryCounts;
                    if (c != null) {
                        for (int b = 0; b < c.droppedStaleByBin().length; b++) {
                            cb.call(c.droppedStaleByBin()[b], Integer.toString(b));
                        }
                    }
                }).register(registry);
        io.prometheus.metrics.core.metrics.GaugeWithCallback.builder().name("tailguard_trajectories_buffered")
                .help("Completed groups neither trained nor dropped yet: in the buffer or in the learner's current step")
                .callback(cb -> {
                    TrajectoryCounts c = trajectoryCounts;
                    if (c != null) {
                        cb.call(c.buffered());
                    }
                }).register(registry);
    }

    /** The buffer's newest counts (read by the callbacks above). */
    void trajectoryCounts(TrajectoryCounts c) {
        trajectoryCounts = c;
    }

    // learner
    final Gauge policyVersion = Gauge.builder().name("tailguard_policy_version").help("Latest published policy version").register(registry);
    final Counter trainedGroups = Counter.builder().name("tailguard_trained_groups_total")
            .help("Groups the learner trained on, by the worker that rolled them out").labelNames("worker").register(registry);
    final Counter learnerSteps = Counter.builder().name("tailguard_learner_steps_total").help("Policy updates").register(registry);
    final Gauge learnerTokensPerSecond = Gauge.builder().name("tailguard_learner_tokens_per_second")
            .help("Training tokens per second of the last step").register(registry);
    final Gauge reward = Gauge.builder().name("tailguard_reward_mean").help("Mean reward of the last batch").register(registry);
    final Gauge passRate = Gauge.builder().name("tailguard_pass_rate").help("Share of the last batch's samples with reward 1").register(registry);
    final Gauge loss = Gauge.builder().name("tailguard_loss").help("GRPO + TIS loss of the last step").register(registry);
    final Gauge clipFraction = Gauge.builder().name("tailguard_clip_fraction").help("PPO-clipped token share").register(registry);
    final Gauge tisTruncated = Gauge.builder().name("tailguard_tis_truncated_fraction").help("TIS-truncated token share").register(registry);
    final Gauge kl = Gauge.builder().name("tailguard_kl").help("KL estimate between π_old and π_inf").labelNames("estimator").register(registry);
    final Gauge learnerLr = Gauge.builder().name("tailguard_learner_lr").help("Learning rate of the last step").register(registry);
    final Gauge learnerLrPeak = Gauge.builder().name("tailguard_learner_lr_peak")
            .help("Peak learning rate of the schedule (live-tunable)").register(registry);
    final Gauge learnerDistill = Gauge.builder().name("tailguard_learner_distill")
            .help("1 while DistillSparse trains and publishes the sparse actor's LoRA, else 0").register(registry);
    final Gauge distillLoss = Gauge.builder().name("tailguard_distill_loss")
            .help("DistillSparse loss L(phi) of the last LoRA update").register(registry);
    final Gauge distillKl = Gauge.builder().name("tailguard_distill_kl_k3")
            .help("DistillSparse mean k3(sparse+LoRA || dense) of the last LoRA update").register(registry);
    final Gauge distillKlFull = Gauge.builder().name("tailguard_distill_kl_full")
            .help("DistillSparse mean KL(dense || sparse+LoRA) over the vocabulary of the last LoRA update "
                    + "(NaN unless tailguard.learner.distill-divergence = full)").register(registry);
    final Counter distillSteps = Counter.builder().name("tailguard_distill_steps_total")
            .help("DistillSparse updates of the sparse actor's LoRA").register(registry);
    final Gauge passAt1 = Gauge.builder().name("tailguard_eval_pass_at_1").help("Held-out greedy pass@1").register(registry);
    // compression
    final Gauge compressionKl = Gauge.builder().name("tailguard_compression_kl")
            .help("KL(policy || compressed) per token on held-out prompts, last compressed version").labelNames("method", "bits").register(registry);
    final Gauge compressionBytes = Gauge.builder().name("tailguard_compression_bytes")
            .help("Bytes on disk of the compressed tensors").labelNames("method", "bits").register(registry);
    final Gauge compressionSeconds = Gauge.builder().name("tailguard_compression_seconds")
            .help("Seconds spent compressing the last version").labelNames("method", "bits").register(registry);
    final Gauge compressedVersion = Gauge.builder().name("tailguard_compressed_policy_version")
            .help("Last compressed policy version").register(registry);
    final Counter compressionFailures = Counter.builder().name("tailguard_compression_failures_total")
            .help("Compression jobs that failed").register(registry);
    // the compressed rollout option (controller; the worker's gauge on the rollout node)
    final Gauge optionAlphaP5 = Gauge.builder().name("tailguard_rollout_option_alpha_p5")
            .help("p5 of α per position bin and rollout option (plain, compressed), at the bin's budget over the kept windows")
            .labelNames("option", "bin").register(registry);
    final Counter optionLeases = Counter.builder().name("tailguard_rollout_option_leases_total")
            .help("Leases issued per rollout option (plain, compressed)").labelNames("option").register(registry);
    final Counter optionTokens = Counter.builder().name("tailguard_rollout_option_tokens_total")
            .help("Rollout tokens reported per rollout option (plain, compressed)").labelNames("option").register(registry);
    final Gauge compressedRolloutVersion = Gauge.builder().name("tailguard_compressed_rollout_version")
            .help("Compressed policy version the controller offers as a rollout option (-1: none)").register(registry);
    final Gauge compressedRolloutInUse = Gauge.builder().name("tailguard_compressed_rollout_in_use")
            .help("1 while the compressed option gets the bulk of the leases, else 0").register(registry);
    // the approximation budget: every option (a weight format with its own schedule) by its format's label
    final Gauge optionInUse = Gauge.builder().name("tailguard_rollout_option_in_use")
            .help("1 for the rollout option in use (plain, or a compressed format's label such as yaqa_b4 or vnm_64_2_5), else 0")
            .labelNames("format").register(registry);
    final Gauge optionPredictedSpeedup = Gauge.builder().name("tailguard_rollout_option_predicted_speedup")
            .help("Cost model's speedup of a rollout option (its weights' bytes under its schedule) over dense plain decode")
            .labelNames("format").register(registry);
    final Gauge optionTokensPerSecond = Gauge.builder().name("tailguard_rollout_option_tokens_per_second")
            .help("Measured generation tokens per second of a rollout option's leases over the kept windows (NaN: none)")
            .labelNames("format").register(registry);
    final Gauge optionSequenceAlpha = Gauge.builder().name("tailguard_rollout_option_sequence_alpha")
            .help("Sequence α of a rollout option over the kept windows: exp of minus the mean over scored trajectories of "
                    + "the sum of 1 − α over their tokens (NaN: not judged)")
            .labelNames("format").register(registry);
    final Gauge optionBudget = Gauge.builder().name("tailguard_rollout_option_kv_budget_tokens")
            .help("KV budget per position bin of a rollout option's schedule").labelNames("format", "bin").register(registry);
    final Gauge optionSpeedupVsPlain = Gauge.builder().name("tailguard_rollout_option_measured_speedup")
            .help("Measured generation tokens per second of the option in use over the plain policy's, over the kept windows (NaN: either had no lease)")
            .register(registry);
    final Gauge workerCompressedVersion = Gauge.builder().name("tailguard_worker_compressed_version")
            .help("Compressed version a worker holds for compressed leases (-1: none)").labelNames("worker").register(registry);
    // serialization
    {
        io.prometheus.metrics.core.metrics.CounterWithCallback.builder().name("tailguard_wire_frames_dropped_total")
                .help("Incoming frames dropped: corrupted, truncated or of an unknown type")
                .callback(cb -> cb.call(KryoSerializer.droppedFrames())).register(registry);
        io.prometheus.metrics.core.metrics.CounterWithCallback.builder().name("tailguard_wire_messages_oversized_total")
                .help("Outgoing messages not sent because they are over their size bound (tailguard.cluster.max-message-size for "
                        + "trajectories), by message type").labelNames("message")
                .callback(cb -> KryoSerializer.oversized().forEach((type, n) -> cb.call(n, type))).register(registry);
    }

    // cluster: members by status as this node sees them (set once the actor system exists)
    private volatile java.util.function.Supplier<java.util.Map<String, Integer>> members = java.util.Map::of;

    {
        io.prometheus.metrics.core.metrics.GaugeWithCallback.builder().name("tailguard_cluster_members")
                .help("Cluster members by status (up, joining, weakly-up, leaving, exiting, down, unreachable) as this node sees them")
                .labelNames("status")
                .callback(cb -> members.get().forEach((status, n) -> cb.call(n, status))).register(registry);
    }

    public NodeMetrics() {
        JvmMetrics.builder().register(registry);
        // a labelled family is exported only once a child exists: NaN (no value yet) until the first
        // step with a kept group, so dashboards and scrapes see the family from the start
        kl.labelValues("k1").set(Double.NaN);
        kl.labelValues("k3").set(Double.NaN);
        compressedRolloutVersion.set(-1);
        optionLeases.labelValues("plain");
        optionLeases.labelValues("compressed");
        optionTokens.labelValues("plain");
        optionTokens.labelValues("compressed");
        optionInUse.labelValues("plain").set(1);
        optionSpeedupVsPlain.set(Double.NaN);
    }

    /**
     * The compression families for the run's method and bits, NaN (no version compressed yet) until
     * the compression worker sets them, so dashboards and scrapes see them from the start on every
     * node, as {@code tailguard_kl}.
     */
    void compressionFamilies(String method, int bits) {
        compressionKl.labelValues(method, Integer.toString(bits)).set(Double.NaN);
        compressionBytes.labelValues(method, Integer.toString(bits)).set(Double.NaN);
        compressionSeconds.labelValues(method, Integer.toString(bits)).set(Double.NaN);
    }

    /** The controller's schedule, per-bin p5 α and settings, after every window and every change. */
    void controllerSchedule(io.tailguard.rollout.sparse.Schedule sched, double[] p5, double tauNow, double speedup, long settings) {
        int[] b = sched.budgets();
        for (int i = 0; i < b.length; i++) {
            budget.labelValues(Integer.toString(i)).set(b[i]);
            if (!Double.isNaN(p5[i])) {
                alphaP5.labelValues(Integer.toString(i)).set(p5[i]);
                optionAlphaP5.labelValues("plain", Integer.toString(i)).set(p5[i]);
            }
        }
        scheduleVersion.set(sched.version());
        tau.set(tauNow);
        predictedSpeedup.set(speedup);
        settingsVersion.set(settings);
    }

    /**
     * The rollout options after a window's decision: which is in use, each one's schedule, predicted
     * and measured speed; the compressed series of the compressed option in use, else of the newest offered.
     */
    void rolloutOptions(io.tailguard.rollout.sparse.ApproximationBudget.Decision d,
                        java.util.function.ToDoubleFunction<io.tailguard.rollout.sparse.ApproximationBudget.OptionState> speedup) {
        io.tailguard.rollout.sparse.ApproximationBudget.OptionState featured = null;
        double plainRate = Double.NaN;
        for (var o : d.options()) {
            optionInUse.labelValues(o.label()).set(o.inUse() ? 1 : 0);
            optionPredictedSpeedup.labelValues(o.label()).set(speedup.applyAsDouble(o));
            optionTokensPerSecond.labelValues(o.label()).set(o.tokensPerSecond());
            optionSequenceAlpha.labelValues(o.label()).set(o.sequenceAlpha());
            int[] b = o.schedule().budgets();
            for (int i = 0; i < b.length; i++) {
                optionBudget.labelValues(o.label(), Integer.toString(i)).set(b[i]);
            }
            if (o.version() < 0) {
                plainRate = o.tokensPerSecond();
            } else if (o.inUse() || featured == null || (!featured.inUse() && o.version() > featured.version())) {
                featured = o;
            }
        }
        optionSpeedupVsPlain.set(d.chosen().tokensPerSecond() / plainRate);
        compressedRolloutInUse.set(d.chosen().version() >= 0 ? 1 : 0);
        for (int i = 0; featured != null && i < featured.p5().length; i++) {
            // NaN where the compressed option has no tokens (a new version starts with none)
            optionAlphaP5.labelValues("compressed", Integer.toString(i)).set(featured.p5()[i]);
        }
    }

    /** Where {@code tailguard_cluster_members} reads its counts from. */
    void clusterMembers(java.util.function.Supplier<java.util.Map<String, Integer>> counts) {
        members = counts;
    }

    public PrometheusRegistry registry() {
        return registry;
    }

    /** Serves /metrics on host:port (port 0: off); returns the bound port (or 0). */
    public int serve(String host, int port) {
        if (port == 0) {
            return 0;
        }
        try {
            server = HTTPServer.builder().hostname(host).port(port).registry(registry).buildAndStart();
            return server.getPort();
        } catch (IOException e) {
            throw new UncheckedIOException("metrics: cannot listen on " + host + ":" + port + ": " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        if (server != null) {
            server.close();
        }
    }
}
