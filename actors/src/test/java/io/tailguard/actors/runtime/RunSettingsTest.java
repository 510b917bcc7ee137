package io.tailguard.actors.runtime;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.tailguard.rollout.tasks.TaskSpec;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RunSettingsTest {
    static Config with(String hocon) {
        return ConfigFactory.parseString(hocon).withFallback(ConfigFactory.load()).resolve();
    }

    @Test
    void aNonLoopbackAdminEndpointNeedsATokenOnTheControllersNodeOnly() {
        java.util.Set<String> controller = java.util.Set.of("controller", "rollout");
        String open = "tailguard.admin.host = \"0.0.0.0\"\n";
        assertEquals("run.conf: tailguard.admin.token (or tailguard.admin.token-file): required when tailguard.admin.host (0.0.0.0) is not a loopback address "
                + "and tailguard.admin.port (9401) is not 0", assertThrows(IllegalArgumentException.class,
                () -> RunSettings.parse(with(open), "run.conf", controller)).getMessage());
        // without the controller no endpoint is served; with port 0 none either; a token or loopback suffices
        assertEquals("0.0.0.0", RunSettings.parse(with(open), "run.conf", java.util.Set.of("rollout", "learner")).admin().host());
        assertEquals(0, RunSettings.parse(with(open + "tailguard.admin.port = 0"), "run.conf", controller).admin().port());
        assertEquals("s3cret", RunSettings.parse(with(open + "tailguard.admin.token = s3cret"), "run.conf", controller).admin().token());
        assertEquals("127.0.0.1", RunSettings.parse(with(""), "run.conf", controller).admin().host());
        assertEquals("::1", RunSettings.parse(with("tailguard.admin.host = \"::1\""), "run.conf", controller).admin().host());
    }

    @Test
    void theDefaultsParse() {
        RunSettings s = RunSettings.parse(with(""), "test");
        assertEquals(0.86, s.controller().tau());
        assertEquals(TaskSpec.of("kv-recall"), s.train().task());
        assertEquals(8, s.rollout().groupSize());
        assertEquals(8, s.rollout().speedupEvery());
    }

    /** The failure and message-size bounds: their defaults, and a value out of range names its key. */
    @Test
    void theBoundsParseAndRefuseValuesOutOfRange() {
        RunSettings.Bounds b = RunSettings.parse(with(""), "test").bounds();
        assertEquals(new RunSettings.Bounds(3, java.time.Duration.ofMillis(500), 5, 3, 32L * 1024 * 1024, 3), b);
        assertEquals(new RunSettings.Bounds(1, java.time.Duration.ofSeconds(2), 1, 7, 64L * 1024 * 1024, 9), RunSettings.parse(with(
                "tailguard.controller { state-write-attempts = 1, state-write-backoff = 2s, max-state-write-failures = 1 }\n"
                        + "tailguard.compression.max-failures = 7\ntailguard.cluster.max-message-size = 64 MiB\n"
                        + "tailguard.cluster.max-oversized-leases = 9"), "test").bounds());
        assertEquals("run.conf: tailguard.cluster.max-oversized-leases: must be >= 1, got 0", assertThrows(IllegalArgumentException.class,
                () -> RunSettings.parse(with("tailguard.cluster.max-oversized-leases = 0"), "run.conf")).getMessage());
        assertEquals("run.conf: tailguard.controller.state-write-attempts: must be >= 1, got 0", assertThrows(IllegalArgumentException.class,
                () -> RunSettings.parse(with("tailguard.controller.state-write-attempts = 0"), "run.conf")).getMessage());
        assertEquals("run.conf: tailguard.compression.max-failures: must be >= 1, got 0", assertThrows(IllegalArgumentException.class,
                () -> RunSettings.parse(with("tailguard.compression.max-failures = 0"), "run.conf")).getMessage());
        assertEquals("run.conf: tailguard.cluster.max-message-size: must be in [4 MiB, 1 GiB], got 1048576 bytes",
                assertThrows(IllegalArgumentException.class,
                        () -> RunSettings.parse(with("tailguard.cluster.max-message-size = 1 MiB"), "run.conf")).getMessage());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> RunSettings.parse(with("tailguard.controller.state-write-backoff = 0s"),
                "run.conf")).getMessage().contains("tailguard.controller.state-write-backoff: must be a positive duration"));
    }

    @Test
    void theSamplingSeedIsTheRunSeedUnlessGiven() {
        assertEquals(11, RunSettings.parse(with("tailguard.train.seed = 11"), "run.conf").train().samplingSeed());
        RunSettings s = RunSettings.parse(with("tailguard.train.seed = 11\ntailguard.train.sampling-seed = 11002"), "run.conf");
        assertEquals(11002, s.train().samplingSeed());
        assertEquals(11, s.train().seed(), "the prompts still follow the run seed");
        assertEquals("run.conf: tailguard.train.sampling-seed: must be an integer or \"\" (the run seed), got \"x\"",
                assertThrows(IllegalArgumentException.class,
                        () -> RunSettings.parse(with("tailguard.train.sampling-seed = x"), "run.conf")).getMessage());
    }

    @Test
    void speedupEveryIsANonNegativeLeaseCount() {
        assertEquals(0, RunSettings.parse(with("tailguard.rollout.speedup-every = 0"), "run.conf").rollout().speedupEvery());
        assertEquals(1, RunSettings.parse(with("tailguard.rollout.speedup-every = 1"), "run.conf").rollout().speedupEvery());
        assertEquals("run.conf: tailguard.rollout.speedup-every: must be >= 0, got -1", assertThrows(IllegalArgumentException.class,
                () -> RunSettings.parse(with("tailguard.rollout.speedup-every = -1"), "run.conf")).getMessage());
        assertEquals(0, RunSettings.parse(with(""), "run.conf").rollout().threads(), "no cap by default");
        assertEquals(1, RunSettings.parse(with("tailguard.rollout.threads = 1"), "run.conf").rollout().threads());
        assertEquals("run.conf: tailguard.rollout.threads: must be auto or an integer >= 0, got -2", assertThrows(IllegalArgumentException.class,
                () -> RunSettings.parse(with("tailguard.rollout.threads = -2"), "run.conf")).getMessage());
        assertEquals(0, RunSettings.parse(with(""), "run.conf").learner().threads());
        assertEquals(1, RunSettings.parse(with("tailguard.learner.threads = 1"), "run.conf").learner().threads());
        assertEquals("run.conf: tailguard.learner.threads: must be auto or an integer >= 0, got -1",
                assertThrows(IllegalArgumentException.class, () -> RunSettings.parse(with("tailguard.learner.threads = -1"),
                        "run.conf")).getMessage());
        assertEquals("run.conf: tailguard.rollout.threads: must be auto or an integer >= 0, got \"half\"",
                assertThrows(IllegalArgumentException.class, () -> RunSettings.parse(with("tailguard.rollout.threads = half"),
                        "run.conf")).getMessage());
        // auto: the learner takes half a node's threads where workers share the node, the workers the rest
        RunSettings auto = RunSettings.parse(with("tailguard.learner.threads = auto\ntailguard.rollout.threads = auto"), "run.conf");
        assertEquals(RunSettings.AUTO_THREADS, auto.learner().threads());
        java.util.Set<String> all = java.util.Set.of("controller", "learner", "rollout");
        assertEquals(1, auto.withThreadSplit(all, 2).learner().threads());
        assertEquals(1, auto.withThreadSplit(all, 2).rollout().threads());
        assertEquals(8, auto.withThreadSplit(all, 16).learner().threads());
        assertEquals(8, auto.withThreadSplit(all, 16).rollout().threads());
        assertEquals(1, auto.withThreadSplit(all, 1).rollout().threads(), "at least one each");
        RunSettings two = RunSettings.parse(with("tailguard.learner.threads = auto\ntailguard.rollout.threads = auto\n"
                + "tailguard.rollout.workers = 2"), "run.conf");
        assertEquals(8, two.withThreadSplit(all, 16).learner().threads());
        assertEquals(4, two.withThreadSplit(all, 16).rollout().threads());
        // a node without the other role: no cap
        assertEquals(0, auto.withThreadSplit(java.util.Set.of("rollout"), 16).rollout().threads());
        assertEquals(0, auto.withThreadSplit(java.util.Set.of("controller", "learner"), 16).learner().threads());
        // a number stays
        RunSettings mixed = RunSettings.parse(with("tailguard.learner.threads = 3\ntailguard.rollout.threads = auto"), "run.conf");
        assertEquals(3, mixed.withThreadSplit(all, 16).learner().threads());
        assertEquals(8, mixed.withThreadSplit(all, 16).rollout().threads());
        assertFalse(RunSettings.parse(with(""), "run.conf").train().evalHoldsRollouts());
        assertTrue(RunSettings.parse(with("tailguard.train.eval-holds-rollouts = on"), "run.conf").train().evalHoldsRollouts());
        assertEquals("run.conf: tailguard.train.eval-holds-rollouts: must be on or off, got \"sometimes\"",
                assertThrows(IllegalArgumentException.class, () -> RunSettings.parse(with("tailguard.train.eval-holds-rollouts = sometimes"),
                        "run.conf")).getMessage());
        assertEquals(0.25, RunSettings.parse(with(""), "run.conf").rollout().scoreFraction());
        assertEquals("run.conf: tailguard.rollout.score-fraction: must be in (0, 1], got 0.0", assertThrows(IllegalArgumentException.class,
                () -> RunSettings.parse(with("tailguard.rollout.score-fraction = 0"), "run.conf")).getMessage());
    }

    @Test
    void aBadValueGivenOnTheCommandLineIsReportedAsTheSetThatGaveIt() {
        com.typesafe.config.Config set = com.typesafe.config.ConfigFactory.parseString("tailguard.rollout.kv-cache = bf16",
                com.typesafe.config.ConfigParseOptions.defaults().setOriginDescription("--set tailguard.rollout.kv-cache=bf16"));
        assertEquals("--set tailguard.rollout.kv-cache=bf16: tailguard.rollout.kv-cache: must be choose, float16 or float32, got 'bf16'",
                assertThrows(IllegalArgumentException.class, () -> RunSettings.parse(set.withFallback(with("")), "run.conf")).getMessage());
        // the same value from the file names the file
        assertEquals("run.conf: tailguard.rollout.kv-cache: must be choose, float16 or float32, got 'bf16'",
                assertThrows(IllegalArgumentException.class,
                        () -> RunSettings.parse(with("tailguard.rollout.kv-cache = bf16"), "run.conf")).getMessage());
    }

    @Test
    void theKvCacheIsFloat32UnlessFloat16IsAsked() {
        assertEquals(ai.djl.ndarray.types.DataType.FLOAT32, RunSettings.parse(with(""), "run.conf").rollout().kvCache());
        assertEquals(ai.djl.ndarray.types.DataType.FLOAT16,
                RunSettings.parse(with("tailguard.rollout.kv-cache = float16"), "run.conf").rollout().kvCache());
        assertFalse(RunSettings.parse(with("tailguard.rollout.kv-cache = float16"), "run.conf").rollout().kvCacheChosen());
        // choose: every option also on a float16 cache, the controller picks; a worker's own cache is float32 then
        RunSettings chosen = RunSettings.parse(with("tailguard.rollout.kv-cache = choose"), "run.conf");
        assertTrue(chosen.rollout().kvCacheChosen());
        assertEquals(ai.djl.ndarray.types.DataType.FLOAT32, chosen.rollout().kvCache());
        assertEquals("run.conf: tailguard.rollout.kv-cache: must be choose, float16 or float32, got 'bfloat16'",
                assertThrows(IllegalArgumentException.class,
                        () -> RunSettings.parse(with("tailguard.rollout.kv-cache = bfloat16"), "run.conf")).getMessage());
        assertEquals(io.tailguard.model.PackedLinear.Activations.FLOAT32, RunSettings.parse(with(""), "run.conf").rollout().packedActivations());
        assertEquals(io.tailguard.model.PackedLinear.Activations.INT8,
                RunSettings.parse(with("tailguard.rollout.packed-activations = int8"), "run.conf").rollout().packedActivations());
        assertEquals("run.conf: tailguard.rollout.packed-activations: must be float32 or int8, got 'int4'",
                assertThrows(IllegalArgumentException.class,
                        () -> RunSettings.parse(with("tailguard.rollout.packed-activations = int4"), "run.conf")).getMessage());
    }

    @Test
    void badKeysAndValuesNameTheKeyAndTheReason() {
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
                () -> RunSettings.parse(with("tailguard.controller.tua = 0.9"), "run.conf"));
        assertTrue(unknown.getMessage().startsWith("run.conf: tailguard.controller.tua: unknown key"), unknown.getMessage());
        IllegalArgumentException tau = assertThrows(IllegalArgumentException.class,
                () -> RunSettings.parse(with("tailguard.controller.tau = 2"), "run.conf"));
        assertTrue(tau.getMessage().contains("tailguard.controller.tau: must be in (0, 1)"), tau.getMessage());
        IllegalArgumentException type = assertThrows(IllegalArgumentException.class,
                () -> RunSettings.parse(with("tailguard.rollout.group-size = many"), "run.conf"));
        assertTrue(type.getMessage().contains("group-size"), type.getMessage());
        IllegalArgumentException ctx = assertThrows(IllegalArgumentException.class,
                () -> RunSettings.parse(with("tailguard.train.context-max = 100\ntailguard.train.context-min = 200"), "run.conf"));
        assertTrue(ctx.getMessage().contains("context-max"), ctx.getMessage());
    }

    @Test
    void theTaskKnobsAreParsedAndCheckedAgainstTheTask() {
        RunSettings s = RunSettings.parse(with("tailguard.train.task = kv-trace\ntailguard.train.task-steps = 12\n"
                + "tailguard.train.reward = graded"), "run.conf");
        assertEquals(new TaskSpec("kv-trace", 12, TaskSpec.Reward.GRADED), s.train().task());
        assertEquals(TaskSpec.of("kv-trace"), RunSettings.parse(with("tailguard.train.task = kv-trace"), "run.conf").train().task());
        assertRefused("tailguard.train.task-steps = -1", "run.conf: tailguard.train.task-steps: must be >= 0 (0: the task's default), got -1");
        assertRefused("tailguard.train.reward = partial", "run.conf: tailguard.train.reward: must be exact or graded, got \"partial\"");
        assertRefused("tailguard.train.task-steps = 4", "run.conf: tailguard.train.task-steps: task kv-recall has a fixed completion; "
                + "steps apply to kv-trace, copy only");
        assertRefused("tailguard.train.reward = graded", "run.conf: tailguard.train.reward: task kv-recall has a fixed completion "
                + "and an exact reward; graded applies to kv-trace, copy only");
        assertRefused("tailguard.train.task = kv-recal", "run.conf: tailguard.train.task: unknown built-in task \"kv-recal\"; known: "
                + "kv-recall, pointer-chase, marked-sum, kv-trace, copy");
        IllegalArgumentException type = assertThrows(IllegalArgumentException.class,
                () -> RunSettings.parse(with("tailguard.train.task = kv-trace\ntailguard.train.task-steps = many"), "run.conf"));
        assertTrue(type.getMessage().startsWith("run.conf: ") && type.getMessage().contains("tailguard.train.task-steps"),
                type.getMessage());
    }

    @Test
    void chatTemplateKeysAreCheckedAndRefusedWhereNoTemplateApplies(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
            throws java.io.IOException {
        RunSettings.parse(with("tailguard.train.chat-template = off\ntailguard.train.enable-thinking = default"), "run.conf");
        assertRefused("tailguard.train.chat-template = maybe", "run.conf: tailguard.train.chat-template: must be auto, on or off, got \"maybe\"");
        assertRefused("tailguard.train.enable-thinking = yes",
                "run.conf: tailguard.train.enable-thinking: must be true, false or default, got \"yes\"");
        // whether a template applies is the checkpoint's to say
        java.nio.file.Path plain = java.nio.file.Files.createDirectories(dir.resolve("plain"));
        assertEquals("tailguard.train.chat-template: on, but checkpoint " + plain + " has no chat template (chat_template.jinja, "
                + "or key chat_template of tokenizer_config.json)", refusedAt(plain, "tailguard.train.chat-template = on"));
        assertTrue(refusedAt(plain, "tailguard.train.system-prompt = \"Be brief.\"").startsWith(
                "tailguard.train.system-prompt: no chat template applies (checkpoint " + plain + " has no chat template)"));
        assertTrue(refusedAt(plain, "tailguard.train.enable-thinking = false").startsWith("tailguard.train.enable-thinking: "));
        assertEquals(null, RunSettings.parse(with(""), "run.conf").withCheckpoint(plain).train().task().chat());
        // a checkpoint with a template: auto renders a dataset task's prompts through it, a built-in task's raw
        java.nio.file.Path chat = java.nio.file.Files.createDirectories(dir.resolve("chat"));
        java.nio.file.Files.writeString(chat.resolve("chat_template.jinja"),
                "{% for m in messages %}<{{ m.role }}>{{ m.content }}<end>\n{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}");
        java.nio.file.Path data = dir.resolve("math.jsonl");
        java.nio.file.Files.writeString(data, "{\"id\":\"a\",\"problem\":\"1+1=\",\"answer\":\"2\"}\n");
        RunSettings s = RunSettings.parse(with("tailguard.train.task = math\ntailguard.train.dataset = \"" + data
                + "\"\ntailguard.train.max-new-tokens = 16\ntailguard.train.system-prompt = \"Be brief.\""), "run.conf").withCheckpoint(chat);
        io.tailguard.rollout.tasks.Task t = s.train().task().at(0);
        assertEquals("<system>Be brief.<end>\n<user>1+1=<end>\n<assistant>", t.chat().orElseThrow().render(t.prompt(0, 0).text()));
        assertEquals(null, RunSettings.parse(with(""), "run.conf").withCheckpoint(chat).train().task().chat());
    }

    @Test
    void datasetKeysAreCheckedAtParse(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws java.io.IOException {
        java.nio.file.Path data = dir.resolve("math.jsonl");
        java.nio.file.Files.writeString(data, "{\"id\":\"a\",\"problem\":\"1+1=\",\"answer\":\"2\"}\n"
                + "{\"id\":\"b\",\"problem\":\"" + "9".repeat(300) + "+0=\",\"answer\":\"" + "9".repeat(300) + "\"}\n");
        String math = "tailguard.train.task = math\ntailguard.train.dataset = \"" + data + "\"\n";
        RunSettings s = RunSettings.parse(with(math + "tailguard.train.max-new-tokens = 16"), "run.conf");
        assertTrue(s.train().task().isDataset());
        assertEquals(null, s.train().heldOutTask(), "no held-out file: no held-out task, never the training records");
        // the longest record (303 characters) beyond context-max (256), plus the budget
        assertEquals(303 + 16, s.train().longestSequence());
        assertRefused(math, "run.conf: tailguard.train.max-new-tokens: dataset task math needs a completion budget >= 1 "
                + "(its records carry answers, not worked solutions), got 0");
        assertRefused("tailguard.train.max-new-tokens = 8", "run.conf: tailguard.train.max-new-tokens: task kv-recall is built in "
                + "and sizes each completion by its worked solution; max-new-tokens applies to dataset tasks (math, code)");
        assertRefused("tailguard.train.held-out = \"" + data + "\"", "run.conf: tailguard.train.held-out: task kv-recall is built in; "
                + "its held-out prompts are those of tailguard.train.eval-seed, and held-out files apply to dataset tasks");
        assertRefused(math + "tailguard.train.max-new-tokens = 16\ntailguard.train.held-out = \"" + data + "\"",
                "run.conf: tailguard.train.held-out: " + data + " is the training file (tailguard.train.dataset, same sha256); "
                        + "held-out pass@1 must not be measured on training records");
    }

    private static String refusedAt(java.nio.file.Path checkpoint, String hocon) {
        RunSettings s = RunSettings.parse(with(hocon), "run.conf");
        return assertThrows(IllegalArgumentException.class, () -> s.withCheckpoint(checkpoint)).getMessage();
    }

    @Test
    void evalEveryAndAdaptParseAndRefuseBadValues() {
        RunSettings d = RunSettings.parse(with(""), "test");
        assertEquals(20, d.train().evalEvery());
        assertTrue(d.adapt());
        RunSettings s = RunSettings.parse(with("tailguard.train.eval-every = 0\ntailguard.controller.adapt = off"), "run.conf");
        assertEquals(0, s.train().evalEvery());
        assertEquals(false, s.adapt());
        assertRefused("tailguard.train.eval-every = -1", "run.conf: tailguard.train.eval-every: must be >= 0, got -1");
        assertRefused("tailguard.controller.adapt = maybe", "run.conf: tailguard.controller.adapt: must be on or off, got \"maybe\"");
    }

    @Test
    void theControllersBinsReachTheEndOfTheLongestCompletion() {
        // copy at 512 with 46 steps: a span of 46 chunks of 8 = 368 symbols and "]"; with eos n = 370 tokens,
        // and the generation cap n + (n + 3) / 4 + 8 = 370 + 93 + 8 = 471
        RunSettings copy = RunSettings.parse(with("tailguard.train.task = copy\ntailguard.train.task-steps = 46\n"
                + "tailguard.train.context-min = 256\ntailguard.train.context-max = 512"), "run.conf");
        assertEquals(512 + 471, copy.train().longestSequence());
        assertEquals(512 + 471, copy.controller().maxContext());
        // kv-recall's answers are a few tokens: the least allowance, 64
        RunSettings recall = RunSettings.parse(with("tailguard.train.context-max = 256"), "run.conf");
        assertEquals(256 + 64, recall.controller().maxContext());
    }

    @Test
    void compressionEveryZeroNeverCompressesAndCannotFeedTheCompressedOption() {
        assertEquals(0, RunSettings.parse(with("tailguard.compression.every = 0"), "run.conf").compression().every());
        assertRefused("tailguard.compression.every = -1", "run.conf: tailguard.compression.every: must be >= 0, got -1");
        assertRefused("tailguard.compression.every = 0\ntailguard.compression.rollout = on",
                "run.conf: tailguard.compression.every: 0 never compresses, so the compressed rollout option "
                        + "(tailguard.compression.rollout = on) would have nothing to offer; set every >= 1");
    }

    private static void assertRefused(String hocon, String message) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RunSettings.parse(with(hocon), "run.conf"));
        assertEquals(message, e.getMessage());
    }

    @Test
    void kubernetesApiBootstrapNeedsManagementAndNoSeedNodes() {
        assertEquals(RunSettings.Bootstrap.SEED_NODES, RunSettings.parse(with(""), "test").bootstrap());
        String k8s = "tailguard.cluster.bootstrap = kubernetes-api\n";
        assertEquals(RunSettings.Bootstrap.KUBERNETES_API,
                RunSettings.parse(with(k8s + "tailguard.management.enabled = on"), "k8s.conf").bootstrap());
        IllegalArgumentException seeds = assertThrows(IllegalArgumentException.class, () -> RunSettings.parse(with(k8s
                + "tailguard.management.enabled = on\npekko.cluster.seed-nodes = [\"pekko://tailguard@10.0.0.1:25520\"]"), "k8s.conf"));
        assertEquals("k8s.conf: pekko.cluster.seed-nodes: must be empty with tailguard.cluster.bootstrap = kubernetes-api, got "
                + "[pekko://tailguard@10.0.0.1:25520]", seeds.getMessage());
        IllegalArgumentException management = assertThrows(IllegalArgumentException.class,
                () -> RunSettings.parse(with(k8s), "k8s.conf"));
        assertTrue(management.getMessage().startsWith("k8s.conf: tailguard.management.enabled: must be on with tailguard.cluster.bootstrap"),
                management.getMessage());
        IllegalArgumentException value = assertThrows(IllegalArgumentException.class,
                () -> RunSettings.parse(with("tailguard.cluster.bootstrap = dns"), "run.conf"));
        assertEquals("run.conf: tailguard.cluster.bootstrap: must be seed-nodes or kubernetes-api, got \"dns\"", value.getMessage());
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
                () -> RunSettings.parse(with("tailguard.cluster.seeds = 2"), "run.conf"));
        assertTrue(unknown.getMessage().startsWith("run.conf: tailguard.cluster.seeds: unknown key"), unknown.getMessage());
    }

    @Test
    void liveTuningValidatesAllOrNothing() {
        RunSettings s = RunSettings.parse(with(""), "test");
        LiveSettings live = new LiveSettings(3, 2, 2e-4, false);
        var p = LiveTuning.plan(s.controller(), live, s.compression().guard(), java.util.Map.of("tau", "0.9", "tailguard.controller.margin", "0.03"), 256);
        assertEquals(0.9, p.controller().tau());
        assertEquals(0.03, p.controller().margin());
        assertEquals(live, p.live());
        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
                () -> LiveTuning.plan(s.controller(), live, s.compression().guard(), java.util.Map.of("tau", "2"), 256));
        assertTrue(bad.getMessage().contains("tau"), bad.getMessage());
        IllegalArgumentException notTunable = assertThrows(IllegalArgumentException.class,
                () -> LiveTuning.plan(s.controller(), live, s.compression().guard(), java.util.Map.of("group-size", "4"), 256));
        assertTrue(notTunable.getMessage().contains("not live-tunable") && notTunable.getMessage().contains("lr, margin"),
                notTunable.getMessage());

        // the buffer's and learner's keys, by alias and by full name
        var q = LiveTuning.plan(s.controller(), live, s.compression().guard(), new java.util.LinkedHashMap<>(java.util.Map.of("lr", "5e-5",
                "tailguard.buffer.staleness", "1", "distill", "on")), 256);
        assertEquals(null, q.controller());
        assertEquals(new LiveSettings(3, 1, 5e-5, true), q.live());
        assertTrue(q.changes().contains("tailguard.learner.lr 2.0E-4 -> 5.0E-5"), q.changes().toString());
        assertTrue(q.changes().contains("tailguard.buffer.staleness 2 -> 1"), q.changes().toString());
        assertTrue(q.changes().contains("tailguard.learner.distill off -> on"), q.changes().toString());
        // a good controller key with a bad lr: refused as a whole, with the lr's reason
        java.util.Map<String, String> mixed = new java.util.LinkedHashMap<>();
        mixed.put("tau", "0.9");
        mixed.put("lr", "-1");
        IllegalArgumentException lr = assertThrows(IllegalArgumentException.class,
                () -> LiveTuning.plan(s.controller(), live, s.compression().guard(), mixed, 256));
        assertEquals("tailguard.learner.lr: must be a positive number, got -1.0", lr.getMessage());
        assertEquals("tailguard.buffer.staleness: must be >= 0, got -1", assertThrows(IllegalArgumentException.class,
                () -> LiveTuning.plan(s.controller(), live, s.compression().guard(), java.util.Map.of("staleness", "-1"), 256)).getMessage());
        assertEquals("tailguard.buffer.staleness: not a number: \"x\"", assertThrows(IllegalArgumentException.class,
                () -> LiveTuning.plan(s.controller(), live, s.compression().guard(), java.util.Map.of("staleness", "x"), 256)).getMessage());
        assertEquals("tailguard.learner.distill: must be on or off, got \"maybe\"", assertThrows(IllegalArgumentException.class,
                () -> LiveTuning.plan(s.controller(), live, s.compression().guard(), java.util.Map.of("distill", "maybe"), 256)).getMessage());
        // the same words from the file at start
        IllegalArgumentException file = assertThrows(IllegalArgumentException.class,
                () -> RunSettings.parse(with("tailguard.learner.distill = maybe"), "run.conf"));
        assertEquals("run.conf: tailguard.learner.distill: must be on or off, got \"maybe\"", file.getMessage());
        assertTrue(RunSettings.parse(with("tailguard.learner.distill = on"), "run.conf").learner().distill());
        RunSettings.LearnerSettings d = RunSettings.parse(with("tailguard.learner { distill-kl = 1, distill-ppo = 0, distill-divergence = full }"),
                "run.conf").learner();
        assertEquals(1.0, d.distillKl());
        assertEquals(0.0, d.distillPpo());
        assertEquals(io.tailguard.learner.DistillSparse.Divergence.FULL, d.distillDivergence());
        RunSettings.LearnerSettings published = RunSettings.parse(with(""), "run.conf").learner();
        assertEquals(0.001, published.distillKl());
        assertEquals(1.0, published.distillPpo());
        assertEquals(io.tailguard.learner.DistillSparse.Divergence.K3, published.distillDivergence());
        assertEquals("run.conf: tailguard.learner.distill-divergence: unknown DistillSparse divergence 'kl' (known: k3, full)",
                assertThrows(IllegalArgumentException.class,
                        () -> RunSettings.parse(with("tailguard.learner.distill-divergence = kl"), "run.conf")).getMessage());
        assertEquals("run.conf: tailguard.learner.distill-ppo: must be a number >= 0, got -1.0", assertThrows(IllegalArgumentException.class,
                () -> RunSettings.parse(with("tailguard.learner.distill-ppo = -1"), "run.conf")).getMessage());
    }

    @Test
    void theCompressedRolloutKeysParseAndTuneLive() {
        RunSettings s = RunSettings.parse(with(""), "test");
        assertEquals(new io.tailguard.rollout.sparse.ApproximationBudget.Settings(false, 0.25, 50), s.compression().guard());
        RunSettings on = RunSettings.parse(with("tailguard.compression { rollout = on, probe-share = 0.5, max-lag = 3 }"), "run.conf");
        assertEquals(new io.tailguard.rollout.sparse.ApproximationBudget.Settings(true, 0.5, 3), on.compression().guard());
        assertEquals("run.conf: tailguard.compression.probe-share: must be in (0, 0.5], got 0.7", assertThrows(IllegalArgumentException.class,
                () -> RunSettings.parse(with("tailguard.compression.probe-share = 0.7"), "run.conf")).getMessage());
        assertEquals("run.conf: tailguard.compression.rollout: must be on or off, got \"yes please\"", assertThrows(IllegalArgumentException.class,
                () -> RunSettings.parse(with("tailguard.compression.rollout = \"yes please\""), "run.conf")).getMessage());
        assertEquals("run.conf: tailguard.compression.max-lag: must be >= 0, got -1", assertThrows(IllegalArgumentException.class,
                () -> RunSettings.parse(with("tailguard.compression.max-lag = -1"), "run.conf")).getMessage());

        LiveSettings live = new LiveSettings(1, 2, 2e-4, false);
        java.util.Map<String, String> kv = new java.util.LinkedHashMap<>();
        kv.put("compression-rollout", "on");
        kv.put("tailguard.compression.probe-share", "0.1");
        kv.put("compression-max-lag", "4");
        var p = LiveTuning.plan(s.controller(), live, s.compression().guard(), kv, 256);
        assertEquals(new io.tailguard.rollout.sparse.ApproximationBudget.Settings(true, 0.1, 4), p.compression());
        assertEquals(null, p.controller());
        assertEquals(live, p.live());
        assertTrue(p.changes().contains("tailguard.compression.rollout off -> on"), p.changes().toString());
        assertTrue(p.changes().contains("tailguard.compression.probe-share 0.25 -> 0.1"), p.changes().toString());
        assertEquals("tailguard.compression.probe-share: must be in (0, 0.5], got 0.0", assertThrows(IllegalArgumentException.class,
                () -> LiveTuning.plan(s.controller(), live, s.compression().guard(), java.util.Map.of("compression-probe-share", "0"), 256))
                .getMessage());
        // the file watcher sends them too
        assertEquals(java.util.Map.of("tailguard.compression.rollout", "on", "tailguard.compression.max-lag", "2"),
                ConfigWatcher.tunables(com.typesafe.config.ConfigFactory.parseString("tailguard.compression { rollout = on, max-lag = 2, every = 5 }")));
    }
}
