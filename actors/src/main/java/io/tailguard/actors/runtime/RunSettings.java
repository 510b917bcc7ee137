package io.tailguard.actors.runtime;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValue;
import io.tailguard.rollout.sparse.BudgetController;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.tasks.TaskSpec;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The runtime's configuration, parsed once into typed records and validated: a key this version
 * does not know, a wrong type or a value out of range fails with the key's full path and the reason
 * ({@link IllegalArgumentException}, exit 2 at the command line). The defaults and the meaning of
 * every key are in actors' reference.conf. adapt: tailguard.controller.adapt, whether the budget
 * controller changes the schedule (off: the start schedule is held, its tails still measured).
 */
public record RunSettings(Train train, Rollout rollout, BudgetController.Settings controller, Duration window,
                          String startSchedule, Set<Integer> denseLayers, Buffer buffer, LearnerSettings learner, Metrics metrics, Admin admin, Compression compression,
                          Bootstrap bootstrap, boolean adapt, Bounds bounds) {

    /**
     * task: the built-in task with its knobs (tailguard.train.task, task-steps, reward), or the dataset
     * task with its file and completion budget (dataset, max-new-tokens), checked at parse; its chat
     * format is set by {@link #withCheckpoint} (chat: the options it is chosen by). evalEvery: held-out
     * pass@1 every this many learner steps besides the start and the end (0: only those two).
     * heldOut: a dataset task's held-out file (tailguard.train.held-out), or null. evalHoldsRollouts:
     * whether leasing pauses while the learner evaluates (tailguard.train.eval-holds-rollouts).
     * samplingSeed: what each lease's sampling seed is drawn from (tailguard.train.sampling-seed; by
     * default the run seed); the prompts and their order follow seed alone.
     */
    public record Train(String checkpoint, TaskSpec task, int contextMin, int contextMax, int steps, long seed, Path out,
                        int evalN, long evalSeed, Duration maxTime, String compareSchedule, int evalEvery, Chat chat,
                        Path heldOut, boolean evalHoldsRollouts, long samplingSeed) {

        /**
         * The task held-out pass@1 is measured on: a built-in task itself (its prompts of eval-seed are
         * the split), a dataset task's held-out file (same kind, budget and chat format), or null: a
         * dataset task without one is not evaluated, never on its training records.
         */
        public TaskSpec heldOutTask() {
            if (!task.isDataset()) {
                return task;
            }
            return heldOut == null ? null
                    : new TaskSpec(task.name(), 0, TaskSpec.Reward.EXACT, heldOut, task.maxNewTokens(), task.chat());
        }

        /** Tokens a completion may add beyond its prompt at the least (tasks with short answers). */
        static final int MIN_GENERATION = 64;

        /**
         * The longest sequence a rollout of this run reaches: context-max plus the most tokens a
         * completion may be given there (its worked solution's length with the generation margin,
         * {@link io.tailguard.rollout.tasks.TaskFormat#maxNewTokens}, over a few prompts, counted in
         * characters, which no tokenizer exceeds), at least {@link #MIN_GENERATION}. The controller's
         * position bins reach this far, so a long completion's positions have bins of their own.
         */
        public int longestSequence() {
            io.tailguard.rollout.tasks.Task t = task.at(contextMax);
            if (task.isDataset()) {
                // a record keeps its own length: its characters bound its tokens (no tokenizer here)
                int longest = contextMax;
                for (io.tailguard.rollout.tasks.Prompt p : ((io.tailguard.rollout.tasks.DatasetTask) t).prompts()) {
                    longest = Math.max(longest, p.text().length());
                }
                return longest + task.maxNewTokens();
            }
            io.tailguard.model.tokenizer.CharTokenizer chars = io.tailguard.model.tokenizer.CharTokenizer.standard();
            int most = MIN_GENERATION;
            for (int i = 0; i < 4; i++) {
                most = Math.max(most, io.tailguard.rollout.tasks.TaskFormat.maxNewTokens(t, t.prompt(seed, i), chars, MIN_GENERATION));
            }
            return contextMax + most;
        }
    }

    /**
     * tailguard.train.chat-template, system-prompt (null: none) and enable-thinking (null: the
     * template's default): how {@link #withCheckpoint} chooses the prompts' chat format.
     */
    public record Chat(io.tailguard.model.tokenizer.ChatFormat.Mode mode, String systemPrompt, Boolean thinking) {}

    /**
     * These settings with the task's chat format chosen for the run's starting checkpoint {@code start}
     * (auto: a dataset task on a checkpoint with a template); every node applies it to the same
     * checkpoint, so all render prompts alike.
     *
     * @throws IllegalArgumentException naming the key: chat-template on for a checkpoint without a
     *                                  template, or a system prompt / thinking switch with no template applied
     */
    public RunSettings withCheckpoint(Path start) {
        java.util.Optional<io.tailguard.model.tokenizer.ChatFormat> f;
        try {
            f = io.tailguard.model.tokenizer.ChatFormat.choose(train.chat().mode(), start, train.task().isDataset(),
                    train.chat().systemPrompt(), train.chat().thinking());
        } catch (IllegalArgumentException e) {
            // ChatFormat names the part as the key does ("chat-template: ...")
            throw new IllegalArgumentException("tailguard.train." + e.getMessage(), e);
        }
        Train t = train;
        Train with = new Train(t.checkpoint(), t.task().withChat(f.orElse(null)), t.contextMin(), t.contextMax(), t.steps(),
                t.seed(), t.out(), t.evalN(), t.evalSeed(), t.maxTime(), t.compareSchedule(), t.evalEvery(), t.chat(), t.heldOut(),
                t.evalHoldsRollouts(), t.samplingSeed());
        return new RunSettings(with, rollout, controller, window, startSchedule, denseLayers, buffer, learner, metrics, admin,
                compression, bootstrap, adapt, bounds);
    }

    /** tailguard.learner.threads / tailguard.rollout.threads = auto, before {@link #withThreadSplit} resolves it. */
    public static final int AUTO_THREADS = -1;

    /**
     * These settings with the thread caps that say auto resolved for a node running these roles
     * with this many threads in all: where the learner and rollout workers share the node, the
     * learner takes half of them and the workers share the rest (each at least one); where they do
     * not, auto is no cap (0). Caps given as numbers stay.
     */
    public RunSettings withThreadSplit(Set<String> roles, int processors) {
        boolean shared = roles.contains("learner") && roles.contains("rollout") && rollout.workers() > 0;
        int learnerShare = shared ? Math.max(1, processors / 2) : 0;
        int workerShare = shared ? Math.max(1, (processors - learnerShare) / rollout.workers()) : 0;
        int l = learner.threads() == AUTO_THREADS ? learnerShare : learner.threads();
        int w = rollout.threads() == AUTO_THREADS ? workerShare : rollout.threads();
        if (l == learner.threads() && w == rollout.threads()) {
            return this;
        }
        Rollout r = rollout;
        Rollout ro = new Rollout(r.workers(), r.promptsPerLease(), r.groupSize(), r.temperature(), r.shadowFraction(),
                r.scoreFraction(), r.leaseTimeout(), r.speedupEvery(), w, r.kvCache(), r.packedActivations(), r.kvCacheChosen());
        LearnerSettings x = learner;
        LearnerSettings le = new LearnerSettings(x.groupsPerStep(), x.lr(), x.warmupSteps(), x.microBatch(), x.publishEvery(),
                x.checkpointEvery(), x.distill(), x.distillKl(), x.distillPpo(), x.distillDivergence(), l);
        return new RunSettings(train, ro, controller, window, startSchedule, denseLayers, buffer, le, metrics, admin,
                compression, bootstrap, adapt, bounds);
    }

    /**
     * speedupEvery: every how many sparse leases a worker measures the rollout speedup in the run (0:
     * never); scoreFraction: the share of a lease's trajectories scored densely for α; threads: the
     * cap on a worker's native calls' threads (0: none); kvCache: the element type of the workers'
     * KV caches, FLOAT32 or FLOAT16 (FLOAT32 when chosen); kvCacheChosen: every rollout option is
     * also offered on a float16 cache and the controller chooses (kv-cache = choose); packedActivations: what a packed quantized option's products
     * multiply with (INT8: activations rounded to 8 bits per sequence).
     */
    public record Rollout(int workers, int promptsPerLease, int groupSize, double temperature, double shadowFraction,
                          double scoreFraction, Duration leaseTimeout, int speedupEvery, int threads,
                          ai.djl.ndarray.types.DataType kvCache, io.tailguard.model.PackedLinear.Activations packedActivations,
                          boolean kvCacheChosen) {}

    public record Buffer(int staleness, int maxGroups) {}

    /**
     * distill: DistillSparse on (a LoRA for the sparse actor, trained after each step and published
     * with it), with the LoRA's loss: KL weight, PPO weight and penalty (train-sync's --distill-kl,
     * --distill-ppo, --distill-divergence).
     */
    public record LearnerSettings(int groupsPerStep, double lr, int warmupSteps, int microBatch, int publishEvery,
                                  int checkpointEvery, boolean distill, double distillKl, double distillPpo,
                                  io.tailguard.learner.DistillSparse.Divergence distillDivergence, int threads) {}

    public record Metrics(String host, int port) {}

    /**
     * How far failures and messages may go before the run says so. stateWriteAttempts: tries of one
     * write of the controller's files (the first and its retries), stateWriteBackoff: the wait before
     * the first retry (doubling after each); maxStateWriteFailures: writes (each after its retries)
     * that may fail in a row before the run stops; maxCompressionFailures: compression jobs that may
     * fail in a row before the run stops; maxMessageBytes: the largest message that crosses nodes
     * (serialized; a larger one is dropped, logged and counted); maxOversizedLeases: leases whose
     * trajectories are over maxMessageBytes that may come in a row before the run stops.
     */
    public record Bounds(int stateWriteAttempts, Duration stateWriteBackoff, int maxStateWriteFailures, int maxCompressionFailures,
                         long maxMessageBytes, int maxOversizedLeases) {}

    public record Admin(String host, int port, String token) {}

    /**
     * The compression worker's settings, and the compressed rollout option's (live-tunable): rollout
     * on or off, the minority option's share of leases, the most versions the compressed weights may
     * lag the policy.
     */
    public record Compression(int every, io.tailguard.compression.Method method, int bits, int calibration, int heldOut,
                              boolean rollout, double probeShare, int maxLag, io.tailguard.recipes.VnmCompression.Settings vnm) {
        /** What a compressed version's values take: {@code bits}, or 32 for V:N:M (its kept values are F32). */
        public static final int VNM_VALUE_BITS = 32;

        public io.tailguard.rollout.sparse.ApproximationBudget.Settings guard() {
            return new io.tailguard.rollout.sparse.ApproximationBudget.Settings(rollout, probeShare, maxLag);
        }

        /**
         * The method as metrics, logs, announcements and directory names give it: yaqa_b, yaqa_a, ldlq,
         * rtn, or for V:N:M (method null, vnm set) vnm_V_N_M, e.g. vnm_64_2_5.
         */
        public String label() {
            if (vnm != null) {
                io.tailguard.compression.VnmPattern p = vnm.pattern();
                return "vnm_" + p.v() + "_" + p.n() + "_" + p.m();
            }
            return method.name().toLowerCase(java.util.Locale.ROOT);
        }

        /** Bits of a stored weight value: {@code bits}, or {@link #VNM_VALUE_BITS} for V:N:M. */
        public int valueBits() {
            return vnm != null ? VNM_VALUE_BITS : bits;
        }
    }

    /** How a `node` finds the cluster: tailguard.cluster.bootstrap. */
    public enum Bootstrap {
        /** join pekko.cluster.seed-nodes */
        SEED_NODES("seed-nodes"),
        /** Pekko Management Cluster Bootstrap over Kubernetes-API discovery */
        KUBERNETES_API("kubernetes-api");

        final String key;

        Bootstrap(String key) {
            this.key = key;
        }

        @Override
        public String toString() {
            return key;
        }
    }

    /** {@code tailguard.controller.schedule = calibrate}: `train` calibrates on the warm start first. */
    public static final String CALIBRATE = "calibrate";

    /** The sections a user may set, each checked against reference.conf for unknown keys. */
    static final List<String> SECTIONS = List.of("tailguard.train", "tailguard.rollout", "tailguard.controller",
            "tailguard.buffer", "tailguard.learner", "tailguard.metrics", "tailguard.admin", "tailguard.management",
            "tailguard.compression", "tailguard.cluster");

    /** Parses and validates; {@code where} names the source in messages (a file, "--set"). */
    public static RunSettings parse(Config c, String where) {
        try {
            checkUnknownKeys(c, where);
            Chat chat = chatTemplate(c);
            TaskSpec task = task(c);
            Train t = new Train(c.getString("tailguard.train.checkpoint"), task,
                    positive(c, "tailguard.train.context-min"), positive(c, "tailguard.train.context-max"),
                    positive(c, "tailguard.train.steps"), c.getLong("tailguard.train.seed"),
                    Path.of(c.getString("tailguard.train.out")), atLeast(c, "tailguard.train.eval-n", 0),
                    c.getLong("tailguard.train.eval-seed"), Duration.ofSeconds(atLeast(c, "tailguard.train.max-seconds", 0)),
                    c.getString("tailguard.train.compare-schedule"), atLeast(c, "tailguard.train.eval-every", 0), chat,
                    heldOut(c, task), onOff("tailguard.train.eval-holds-rollouts", c.getString("tailguard.train.eval-holds-rollouts")),
                    samplingSeed(c));
            if (t.contextMax() < t.contextMin()) {
                throw new IllegalArgumentException("tailguard.train.context-max: must be >= context-min " + t.contextMin()
                        + ", got " + t.contextMax());
            }
            Rollout r = new Rollout(atLeast(c, "tailguard.rollout.workers", 0), positive(c, "tailguard.rollout.prompts-per-lease"),
                    atLeast(c, "tailguard.rollout.group-size", 2), positiveDouble(c, "tailguard.rollout.temperature"),
                    unit(c, "tailguard.rollout.shadow-fraction"), scoreFraction(c),
                    positiveDuration(c, "tailguard.rollout.lease-timeout"),
                    atLeast(c, "tailguard.rollout.speedup-every", 0), threads(c, "tailguard.rollout.threads"),
                    kvCache(c).orElse(ai.djl.ndarray.types.DataType.FLOAT32), packedActivations(c), kvCache(c).isEmpty());
            BudgetController.Settings ctl = controller(c, t.longestSequence());
            Duration window = positiveDuration(c, "tailguard.controller.window");
            Buffer b = new Buffer((Integer) LiveKey.STALENESS.from(c), positive(c, "tailguard.buffer.max-groups"));
            LearnerSettings l = new LearnerSettings(positive(c, "tailguard.learner.groups-per-step"),
                    (Double) LiveKey.LR.from(c), atLeast(c, "tailguard.learner.warmup-steps", 0),
                    positive(c, "tailguard.learner.micro-batch"), positive(c, "tailguard.learner.publish-every"),
                    positive(c, "tailguard.learner.checkpoint-every"),
                    (Boolean) LiveKey.DISTILL.from(c),
                    nonNegativeDouble(c, "tailguard.learner.distill-kl"), nonNegativeDouble(c, "tailguard.learner.distill-ppo"),
                    divergence(c, "tailguard.learner.distill-divergence"), threads(c, "tailguard.learner.threads"));
            int port = atLeast(c, "tailguard.metrics.port", 0);
            if (port > 65535) {
                throw new IllegalArgumentException("tailguard.metrics.port: must be in [0, 65535], got " + port);
            }
            int adminPort = atLeast(c, "tailguard.admin.port", 0);
            if (adminPort > 65535) {
                throw new IllegalArgumentException("tailguard.admin.port: must be in [0, 65535], got " + adminPort);
            }
            return new RunSettings(t, r, ctl, window, c.getString("tailguard.controller.schedule"), denseLayers(c), b, l,
                    new Metrics(c.getString("tailguard.metrics.host"), port),
                    new Admin(c.getString("tailguard.admin.host"), adminPort, AdminToken.of(c)),
                    compression(c), bootstrap(c), onOff("tailguard.controller.adapt", c.getString("tailguard.controller.adapt")),
                    bounds(c));
        } catch (ConfigException e) {
            throw new IllegalArgumentException(where + ": " + e.getMessage(), e);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(origin(c, e.getMessage(), where) + ": " + e.getMessage(), e);
        }
    }

    /**
     * Where the value a refusal names came from: a message "key: ..." whose key was set by a command
     * line {@code --set} names that (its origin description), not the configuration file; else where.
     */
    static String origin(Config c, String message, String where) {
        int colon = message == null ? -1 : message.indexOf(": ");
        if (colon > 0) {
            String key = message.substring(0, colon);
            try {
                if (key.startsWith("tailguard.") && c.hasPath(key)) {
                    String from = c.getValue(key).origin().description();
                    if (from != null && from.startsWith("--set ")) {
                        return from.replaceFirst(": [0-9]+$", "");   // without its line number
                    }
                }
            } catch (ConfigException e) {
                return where; // not a path after all
            }
        }
        return where;
    }

    /**
     * {@link #parse(Config, String)} with the rules that depend on what this process hosts ({@code
     * roles}), so that they too fail before any work: the controller's node serves the admin endpoint
     * (tailguard.admin.port > 0), and bound to an address that is not loopback it needs
     * tailguard.admin.token (the endpoint can change the run). A node without the controller serves
     * none, so needs no token.
     */
    public static RunSettings parse(Config c, String where, Set<String> roles) {
        RunSettings s = parse(c, where);
        try {
            if (roles.contains("controller") && s.admin().port() > 0) {
                requireAdminToken(s.admin());
            }
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(where + ": " + e.getMessage(), e);
        }
        return s;
    }

    static void requireAdminToken(Admin a) {
        boolean loopback;
        try {
            loopback = java.net.InetAddress.getByName(a.host()).isLoopbackAddress();
        } catch (java.io.IOException e) {
            throw new IllegalArgumentException("tailguard.admin.host: cannot resolve \"" + a.host() + "\"", e);
        }
        if (!loopback && (a.token() == null || a.token().isBlank())) {
            throw new IllegalArgumentException("tailguard.admin.token (or tailguard.admin.token-file): required when tailguard.admin.host (" + a.host()
                    + ") is not a loopback address and tailguard.admin.port (" + a.port() + ") is not 0");
        }
    }

    /**
     * tailguard.train.task with its knobs task-steps and reward; a bad one names its key (an unknown
     * task, a negative or misspelt value, or a knob the task does not take).
     */
    static TaskSpec task(Config c) {
        String p = "tailguard.train.";
        int steps = c.getInt(p + "task-steps");
        String file = c.getString(p + "dataset");
        if (file.isBlank() && io.tailguard.rollout.tasks.Tasks.datasetNames().contains(c.getString(p + "task"))) {
            throw new IllegalArgumentException(p + "dataset: task " + c.getString(p + "task") + " needs its JSON-lines file");
        }
        TaskSpec spec;
        try {
            spec = new TaskSpec(c.getString(p + "task"), steps, TaskSpec.Reward.parse(c.getString(p + "reward")),
                    file.isBlank() ? null : Path.of(file), c.getInt(p + "max-new-tokens"), null);
        } catch (IllegalArgumentException e) {
            // TaskSpec names the part as the key does ("task-steps: ...")
            throw new IllegalArgumentException(p + e.getMessage(), e);
        }
        if (spec.isDataset()) {
            readable(p + "dataset", spec);
        }
        return spec;
    }

    /** A dataset task's file read once, so that a missing or empty one fails at parse, naming its key. */
    private static void readable(String key, TaskSpec spec) {
        try {
            spec.at(0);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(key + ": " + e.getMessage(), e);
        }
    }

    /**
     * tailguard.train.held-out: a dataset task's held-out file of the same kind (read once here), or
     * null when blank; refused for a built-in task (its held-out prompts are eval-seed's) and when it
     * is the training file itself (same sha256).
     */
    static Path heldOut(Config c, TaskSpec task) {
        String key = "tailguard.train.held-out";
        String v = c.getString(key);
        if (v.isBlank()) {
            return null;
        }
        if (!task.isDataset()) {
            throw new IllegalArgumentException(key + ": task " + task.name() + " is built in; its held-out prompts are "
                    + "those of tailguard.train.eval-seed, and held-out files apply to dataset tasks");
        }
        Path file = Path.of(v);
        readable(key, TaskSpec.dataset(task.name(), file, task.maxNewTokens()));
        if (io.tailguard.rollout.tasks.DatasetTask.sha256(file).equals(io.tailguard.rollout.tasks.DatasetTask.sha256(task.dataset()))) {
            throw new IllegalArgumentException(key + ": " + file + " is the training file (tailguard.train.dataset, same sha256); "
                    + "held-out pass@1 must not be measured on training records");
        }
        return file;
    }

    /**
     * tailguard.train.chat-template, system-prompt and enable-thinking, each checked for its form here;
     * whether a template applies depends on the checkpoint ({@link #withCheckpoint}), where "on" for a
     * checkpoint without one, or a system prompt or thinking switch that no template would use, is
     * refused naming its key rather than ignored.
     */
    static Chat chatTemplate(Config c) {
        String p = "tailguard.train.";
        try {
            io.tailguard.model.tokenizer.ChatFormat.Mode mode = io.tailguard.model.tokenizer.ChatFormat.Mode.parse(c.getString(p + "chat-template"));
            Boolean thinking = io.tailguard.model.tokenizer.ChatFormat.parseThinking(c.getString(p + "enable-thinking"));
            String system = c.getString(p + "system-prompt");
            return new Chat(mode, system.isEmpty() ? null : system, thinking);
        } catch (IllegalArgumentException e) {
            // the messages name the part as the key does ("chat-template: ...")
            throw new IllegalArgumentException(p + e.getMessage(), e);
        }
    }

    /**
     * tailguard.cluster.bootstrap, checked against the keys it depends on: Cluster Bootstrap gives up
     * (and the member waits forever) when seed nodes are configured, and it probes the other members
     * through Pekko Management, so that must run.
     */
    static Bootstrap bootstrap(Config c) {
        String key = "tailguard.cluster.bootstrap";
        String v = c.getString(key).strip();
        Bootstrap b = java.util.Arrays.stream(Bootstrap.values()).filter(x -> x.key.equals(v)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException(key + ": must be seed-nodes or kubernetes-api, got \"" + v + "\""));
        if (b == Bootstrap.KUBERNETES_API) {
            if (c.hasPath("pekko.cluster.seed-nodes") && !c.getStringList("pekko.cluster.seed-nodes").isEmpty()) {
                throw new IllegalArgumentException("pekko.cluster.seed-nodes: must be empty with " + key + " = kubernetes-api, got "
                        + c.getStringList("pekko.cluster.seed-nodes"));
            }
            if (!onOff("tailguard.management.enabled", c.getString("tailguard.management.enabled"))) {
                throw new IllegalArgumentException("tailguard.management.enabled: must be on with " + key
                        + " = kubernetes-api (members probe each other on the management port)");
            }
        }
        return b;
    }

    static Compression compression(Config c) {
        int bits = c.getInt("tailguard.compression.bits");
        if (bits < 2 || bits > 8) {
            throw new IllegalArgumentException("tailguard.compression.bits: must be in [2, 8], got " + bits);
        }
        boolean rollout = (Boolean) LiveKey.COMPRESSION_ROLLOUT.from(c);
        double share = (Double) LiveKey.PROBE_SHARE.from(c);
        int maxLag = (Integer) LiveKey.MAX_LAG.from(c);
        int every = atLeast(c, "tailguard.compression.every", 0);
        if (every == 0 && rollout) {
            throw new IllegalArgumentException("tailguard.compression.every: 0 never compresses, so the compressed rollout "
                    + "option (tailguard.compression.rollout = on) would have nothing to offer; set every >= 1");
        }
        String method = c.getString("tailguard.compression.method");
        boolean pruning = method.equals(CompressionWorker.VNM);
        return new Compression(every, pruning ? null : CompressionWorker.parseMethod(method), bits,
                positive(c, "tailguard.compression.calibration"), positive(c, "tailguard.compression.held-out"),
                rollout, share, maxLag, pruning ? vnm(c) : null);
    }

    /** tailguard.compression.vnm, read when the method is vnm (`compress vnm`'s flags under the same names). */
    static io.tailguard.recipes.VnmCompression.Settings vnm(Config c) {
        String k = "tailguard.compression.vnm.";
        String pattern = c.getString(k + "pattern");
        if (pattern.isBlank()) {
            throw new IllegalArgumentException(k + "pattern: tailguard.compression.method = vnm needs a pattern, V:N:M (e.g. 64:2:5) or 2:4");
        }
        io.tailguard.compression.VnmPattern p;
        try {
            p = io.tailguard.compression.VnmPattern.parse(pattern);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(k + "pattern: " + e.getMessage());
        }
        io.tailguard.recipes.VnmCompression.Settings v = new io.tailguard.recipes.VnmCompression.Settings(p,
                io.tailguard.recipes.VnmCompression.Settings.parseScore(k + "score:", c.getString(k + "score")),
                c.getInt(k + "permute-rounds"), c.getInt(k + "recovery-steps"),
                io.tailguard.recipes.VnmCompression.Settings.parseKlLoss(k + "recovery-loss:", c.getString(k + "recovery-loss")),
                c.getInt(k + "recovery-batch"), c.getDouble(k + "recovery-lr"), c.getInt(k + "lora-rank"),
                c.getDouble(k + "lora-alpha"), c.getInt(k + "remask-every"));
        v.problem(name -> k + name + ":").ifPresent(why -> {
            throw new IllegalArgumentException(why);
        });
        return v;
    }

    /**
     * Whether the compression settings fit the model the run starts from (V:N:M's V must divide every
     * layer's rows); an error naming the key if not. The model's shape is known only once its
     * checkpoint is found, so the commands call this before any work.
     */
    public static void checkModel(Compression c, io.tailguard.model.ModelConfig model) {
        if (c.vnm() != null) {
            c.vnm().pattern().misfit(model).ifPresent(why -> {
                throw new IllegalArgumentException("tailguard.compression.vnm.pattern: " + why);
            });
        }
    }

    /** Smallest and largest tailguard.cluster.max-message-size: Artery's ordinary frame, and half of what its frame size (an int) can hold. */
    static final long MIN_MESSAGE = 4L << 20;
    static final long MAX_MESSAGE = 1L << 30;

    static Bounds bounds(Config c) {
        long message = c.getBytes("tailguard.cluster.max-message-size");
        if (message < MIN_MESSAGE || message > MAX_MESSAGE) {
            throw new IllegalArgumentException("tailguard.cluster.max-message-size: must be in [4 MiB, 1 GiB], got " + message + " bytes");
        }
        return new Bounds(positive(c, "tailguard.controller.state-write-attempts"),
                positiveDuration(c, "tailguard.controller.state-write-backoff"),
                positive(c, "tailguard.controller.max-state-write-failures"), positive(c, "tailguard.compression.max-failures"), message,
                positive(c, "tailguard.cluster.max-oversized-leases"));
    }

    /** Shared with live tuning: the minority rollout option's share of leases, in (0, 0.5]. */
    static double probeShare(String key, double v) {
        if (!(v > 0 && v <= 0.5)) {
            throw new IllegalArgumentException(key + ": must be in (0, 0.5], got " + v);
        }
        return v;
    }

    /**
     * The controller's settings, its live keys read as {@link LiveKey} declares them (also what live tuning
     * re-parses); {@code maxContext} is the run's longest sequence ({@link Train#longestSequence}).
     */
    static BudgetController.Settings controller(Config c, int maxContext) {
        String p = "tailguard.controller.";
        try {
            return new BudgetController.Settings((Double) LiveKey.TAU.from(c), (Double) LiveKey.MARGIN.from(c),
                    (Double) LiveKey.HYSTERESIS.from(c), (Long) LiveKey.MIN_TOKENS.from(c), (Integer) LiveKey.KEEP_WINDOWS.from(c),
                    (Integer) LiveKey.MIN_BUDGET.from(c), (Integer) LiveKey.MAX_BUDGET.from(c), (Double) LiveKey.LADDER_RATIO.from(c),
                    (Integer) LiveKey.BIN_WIDTH.from(c), maxContext, (Double) LiveKey.SEQUENCE_TAU.from(c),
                    (Long) LiveKey.MIN_SEQUENCES.from(c));
        } catch (IllegalArgumentException e) {
            // BudgetController names the key without its section
            String m = e.getMessage();
            throw new IllegalArgumentException(m.startsWith("tailguard.") ? m : p + m, e);
        }
    }

    /**
     * {@code tailguard.controller.dense-layers}: the layers that always attend densely in the schedules
     * the run makes itself (its calibration at start, a dense start); a named schedule file carries
     * its own.
     */
    static Set<Integer> denseLayers(Config c) {
        String key = "tailguard.controller.dense-layers";
        List<Integer> layers;
        try {
            layers = c.getIntList(key);
        } catch (ConfigException.WrongType e) {
            throw new IllegalArgumentException(key + ": must be a list of layer indices, e.g. [0, 1]", e);
        }
        try {
            return Schedule.denseLayerSet(layers.stream().mapToInt(Integer::intValue).toArray());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("tailguard.controller." + e.getMessage(), e);
        }
    }

    /** tailguard.train.sampling-seed: "" is the run seed (tailguard.train.seed), else an integer. */
    static long samplingSeed(Config c) {
        String key = "tailguard.train.sampling-seed";
        String v = c.getString(key).trim();
        if (v.isEmpty()) {
            return c.getLong("tailguard.train.seed");
        }
        try {
            return Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(key + ": must be an integer or \"\" (the run seed), got \"" + v + "\"");
        }
    }

    /** Every key a user set under a known section must exist in the reference configuration. */
    static void checkUnknownKeys(Config c, String where) {
        Config reference = ConfigFactory.defaultReference();
        for (String section : SECTIONS) {
            if (!c.hasPath(section)) {
                continue;
            }
            Set<String> known = new TreeSet<>();
            for (Map.Entry<String, ConfigValue> e : reference.getConfig(section).entrySet()) {
                known.add(e.getKey());
            }
            for (Map.Entry<String, ConfigValue> e : c.getConfig(section).entrySet()) {
                if (!known.contains(e.getKey())) {
                    throw new IllegalArgumentException(section + "." + e.getKey() + ": unknown key (known: "
                            + String.join(", ", known) + ")");
                }
            }
        }
    }

    private static int positive(Config c, String key) {
        return atLeast(c, key, 1);
    }

    private static int atLeast(Config c, String key, int min) {
        return atLeast(key, c.getInt(key), min);
    }

    private static double positiveDouble(Config c, String key) {
        return positiveDouble(key, c.getDouble(key));
    }

    private static double nonNegativeDouble(Config c, String key) {
        double v = c.getDouble(key);
        if (!(v >= 0) || Double.isInfinite(v)) {
            throw new IllegalArgumentException(key + ": must be a number >= 0, got " + v);
        }
        return v;
    }

    private static io.tailguard.learner.DistillSparse.Divergence divergence(Config c, String key) {
        try {
            return io.tailguard.learner.DistillSparse.Divergence.parse(c.getString(key));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(key + ": " + e.getMessage());
        }
    }

    /** Shared with live tuning, so a file and a `tune` refuse a value with the same words. */
    static double positiveDouble(String key, double v) {
        if (!(v > 0) || Double.isInfinite(v)) {
            throw new IllegalArgumentException(key + ": must be a positive number, got " + v);
        }
        return v;
    }

    static int atLeast(String key, int v, int min) {
        if (v < min) {
            throw new IllegalArgumentException(key + ": must be >= " + min + ", got " + v);
        }
        return v;
    }

    /** A thread cap: an integer >= 0 (0: none) or auto ({@link #AUTO_THREADS}, resolved by {@link #withThreadSplit}). */
    private static int threads(Config c, String key) {
        if ("auto".equals(c.getValue(key).unwrapped())) {
            return AUTO_THREADS;
        }
        try {
            int v = c.getInt(key);
            if (v >= 0) {
                return v;
            }
        } catch (com.typesafe.config.ConfigException.WrongType e) {
            // named below
        }
        throw new IllegalArgumentException(key + ": must be auto or an integer >= 0, got " + c.getValue(key).render());
    }

    /** on|off (HOCON's true|false too). */
    static boolean onOff(String key, String v) {
        return switch (v.strip().toLowerCase(java.util.Locale.ROOT)) {
            case "on", "true" -> true;
            case "off", "false" -> false;
            default -> throw new IllegalArgumentException(key + ": must be on or off, got \"" + v + "\"");
        };
    }

    private static double unit(Config c, String key) {
        double v = c.getDouble(key);
        if (!(v >= 0 && v <= 1)) {
            throw new IllegalArgumentException(key + ": must be in [0, 1], got " + v);
        }
        return v;
    }

    /** tailguard.rollout.kv-cache: float32 or float16, or choose (empty: the controller chooses per option). */
    private static java.util.Optional<ai.djl.ndarray.types.DataType> kvCache(Config c) {
        return oneOf(c, "tailguard.rollout.kv-cache", java.util.Map.of("float32",
                java.util.Optional.of(ai.djl.ndarray.types.DataType.FLOAT32), "float16",
                java.util.Optional.of(ai.djl.ndarray.types.DataType.FLOAT16), "choose", java.util.Optional.empty()));
    }

    /** tailguard.rollout.packed-activations: float32 or int8. */
    private static io.tailguard.model.PackedLinear.Activations packedActivations(Config c) {
        return oneOf(c, "tailguard.rollout.packed-activations", java.util.Map.of("float32",
                io.tailguard.model.PackedLinear.Activations.FLOAT32, "int8", io.tailguard.model.PackedLinear.Activations.INT8));
    }

    /** The value a key's word names, or a refusal naming the key and the words it takes (in sorted order). */
    private static <T> T oneOf(Config c, String key, java.util.Map<String, T> words) {
        String v = c.getString(key).strip();
        T t = words.get(v);
        if (t == null) {
            java.util.List<String> w = new java.util.ArrayList<>(new java.util.TreeSet<>(words.keySet()));
            String last = w.remove(w.size() - 1);
            throw new IllegalArgumentException(key + ": must be " + (w.isEmpty() ? "" : String.join(", ", w) + " or ") + last
                    + ", got '" + v + "'");
        }
        return t;
    }

    private static double scoreFraction(Config c) {
        String key = "tailguard.rollout.score-fraction";
        double v = c.getDouble(key);
        if (!(v > 0 && v <= 1)) {
            throw new IllegalArgumentException(key + ": must be in (0, 1], got " + v);
        }
        return v;
    }

    private static Duration positiveDuration(Config c, String key) {
        Duration d = c.getDuration(key);
        if (d.isNegative() || d.isZero()) {
            throw new IllegalArgumentException(key + ": must be a positive duration, got " + d);
        }
        return d;
    }
}
