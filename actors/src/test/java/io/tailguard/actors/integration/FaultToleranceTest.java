package io.tailguard.actors.integration;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static io.tailguard.actors.integration.Ports.freePort;
import static io.tailguard.actors.integration.ThreeNodeClusterTest.start;
import static io.tailguard.actors.integration.ThreeNodeClusterTest.sum;
import static io.tailguard.actors.integration.ThreeNodeClusterTest.waitForLog;
import static io.tailguard.actors.integration.ThreeNodeClusterTest.waitUntil;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Kill -9 the learner's JVM and start it again: it resumes from its last checkpoint with its step
 * counter. Then kill -9 the node hosting the controller singleton: the singleton moves to the other
 * controller-role node, rebuilds its state from the checkpoint store and its state file, and
 * training finishes. Neither kill loses a completed group or trains one twice: the groups buffered or
 * trained after the learner's last checkpoint come back from the journal ({@link Lossless}). Three
 * JVMs: A (controller), B (controller, rollout), C (learner).
 */
class FaultToleranceTest {
    static final int STEPS = 10;

    @Test
    void theLearnerResumesAndTheControllerSingletonMoves(@TempDir Path tmp) throws Exception {
        Path conf = ThreeNodeClusterTest.clusterConf(tmp, STEPS, "5s", "pekko.cluster.split-brain-resolver.stable-after = 5s");
        int seed = freePort();
        List<ThreeNodeClusterTest.Node> nodes = new ArrayList<>();
        try {
            ThreeNodeClusterTest.Node a = start(tmp, "a-controller", conf, "controller", seed, seed);
            nodes.add(a);
            ThreeNodeClusterTest.Node b = start(tmp, "b-controller-rollout", conf, "controller,rollout", seed, freePort());
            nodes.add(b);
            ThreeNodeClusterTest.Node c = start(tmp, "c-learner", conf, "learner", seed, freePort());
            nodes.add(c);

            waitUntil(c, 300, m -> sum(m, "tailguard_learner_steps_total", null) >= 3);
            c.process().destroyForcibly().waitFor();
            ThreeNodeClusterTest.Node c2 = start(tmp, "c2-learner", conf, "learner", seed, freePort());
            nodes.add(c2);
            String log = waitForLog(c2, "learner resumes from", 120);
            Matcher m = Pattern.compile("learner resumes from .* at step (\\d+)").matcher(log);
            assertTrue(m.find(), "the restarted learner did not resume:\n" + log);
            int resumedAt = Integer.parseInt(m.group(1));
            assertTrue(resumedAt >= 2 && resumedAt % 2 == 0, "resumed at step " + resumedAt);
            // its checkpoint's ledger holds the groups of exactly the steps it resumes after, two a step;
            // the buffer trains every other journaled group
            String replay = waitForLog(c2, "groups to train from the journal", 60);
            Matcher r = Pattern.compile("buffer: \\d+ groups to train from the journal \\(the learner has trained (\\d+)").matcher(replay);
            assertTrue(r.find(), "the restarted buffer did not read the journal:\n" + replay);
            assertEquals(resumedAt * 2, Integer.parseInt(r.group(1)));

            waitUntil(c2, 300, x -> sum(x, "tailguard_learner_steps_total", null) >= 1);
            // the dead learner must be gone before the next kill: with it still a member, killing the
            // controller's node would leave two of four reachable, and keep-majority downs that side
            waitUntil(c2, 120, x -> sum(x, "tailguard_cluster_members", "status=\"up\"") == 3
                    && sum(x, "tailguard_cluster_members", "unreachable") == 0
                    && sum(x, "tailguard_cluster_members", null) == 3);
            a.process().destroyForcibly().waitFor(); // the oldest controller-role node hosts the singleton
            String moved = waitForLog(b, "controller up", 120);
            assertTrue(moved.contains("resumed at group"), "the moved controller did not rebuild its state:\n" + moved);
            waitUntil(c2, 300, x -> sum(x, "tailguard_learner_steps_total", null) >= STEPS - resumedAt);
            Path last = tmp.resolve("run/store/v" + String.format("%06d", STEPS) + "/manifest.json");
            for (int i = 0; i < 60 && !Files.isRegularFile(last); i++) {
                Thread.sleep(500); // the step is counted just before the version is published
            }
            assertTrue(Files.isRegularFile(last), "version " + STEPS + " was never published");
            // nothing lost to either kill, nothing trained twice: two groups a step
            Lossless.assertLossless(tmp.resolve("run"), STEPS * 2, 120);
        } finally {
            ThreeNodeClusterTest.stopAll(nodes);
        }
    }
}
