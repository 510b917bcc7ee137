package io.tailguard.actors.runtime;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.tailguard.actors.cli.Main;
import io.tailguard.compression.QuantizedCheckpoint;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CompressionWorkerTest {
    @Test
    void compressesEveryKthPublishedVersionIntoTheStoreAndReportsIt(@TempDir Path tmp) throws Exception {
        Path init = tmp.resolve("init");
        assertEquals(0, Main.run("init-model", "--preset", "tiny", "--out", init.toString()));
        Config c = ConfigFactory.parseString(String.join("\n",
                        "tailguard.train { checkpoint = \"" + init + "\", context-min = 64, context-max = 96, out = \"" + tmp.resolve("run") + "\" }",
                        "tailguard.compression { every = 2, bits = 4, calibration = 4, held-out = 2 }",
                        "pekko.actor.provider = local", "pekko.remote.artery.enabled = off"))
                .withFallback(ConfigFactory.load()).resolve();
        RunSettings s = RunSettings.parse(c, "test");
        ActorTestKit kit = ActorTestKit.create(c);
        try (NodeMetrics metrics = new NodeMetrics()) {
            TestProbe<RunObserver.Event> observer = kit.createTestProbe();
            TestProbe<Receptionist.Registered> registered = kit.createTestProbe();
            kit.system().receptionist().tell(Receptionist.register(RunObserver.KEY, observer.ref(), registered.ref()));
            registered.expectMessageClass(Receptionist.Registered.class);
            TestProbe<Controller.Command> controller = kit.createTestProbe();
            ActorRef<CompressionWorker.Command> w = kit.spawn(CompressionWorker.create(s, controller.ref(), "cpu", metrics));
            Thread.sleep(500); // the worker's observer subscription
            PolicyPublished v1 = CheckpointStore.existing(init, 1);
            PolicyPublished v2 = CheckpointStore.existing(init, 2);
            w.tell(v1); // not a multiple of `every`: skipped
            w.tell(v2);
            RunObserver.Event e = observer.expectMessageClass(RunObserver.Compressed.class, Duration.ofSeconds(120));
            RunObserver.Compressed done = (RunObserver.Compressed) e;
            assertEquals(2, done.version());
            assertEquals(4, done.bits());
            assertTrue(done.kl() >= 0 && Double.isFinite(done.kl()), "KL " + done.kl());
            Path dir = Path.of(done.dir());
            assertEquals(done.bytes(), Files.size(dir.resolve(QuantizedCheckpoint.QUANT_TENSORS)));
            assertTrue(dir.getFileName().toString().startsWith("v000002-yaqa_b4"), dir.toString());
            assertTrue(!Files.exists(dir.resolveSibling("v000001-yaqa_b4")));
            assertTrue(metrics.registry().scrape().stream().anyMatch(m -> m.getMetadata().getName().equals("tailguard_compression_kl")));
            // announced to the controller: the artifact's version, uri, manifest sha256, method and bits
            CompressedPublished a = controller.expectMessageClass(CompressedPublished.class, Duration.ofSeconds(5));
            assertEquals(2, a.version());
            assertEquals(dir.toAbsolutePath().normalize(), Path.of(java.net.URI.create(a.uri())).toAbsolutePath().normalize());
            assertEquals(io.tailguard.model.io.Manifest.sha256(dir.resolve("manifest.json")), a.sha256());
            assertEquals("yaqa_b", a.method());
            assertEquals(4, a.bits());
            assertEquals(done.kl(), a.kl());
            // a controller that starts over finds it in the store
            CompressedPublished found = CheckpointStore.latestCompressed(tmp.resolve("run").resolve("store"));
            assertEquals(new CompressedPublished(2, a.uri(), a.sha256(), "yaqa_b", 4, Double.NaN), found);
            observer.expectNoMessage(Duration.ofMillis(300));
        } finally {
            kit.shutdownTestKit();
        }
    }

    /**
     * Jobs that fail (here: versions whose directory is not there) are counted, and the bound-th in
     * a row stops the run with one line naming tailguard.compression.max-failures; nothing is
     * announced or compressed.
     */
    @Test
    void compressionThatKeepsFailingStopsTheRun(@TempDir Path tmp) throws Exception {
        Config c = ConfigFactory.parseString(String.join("\n",
                        "tailguard.train { out = \"" + tmp.resolve("run") + "\" }",
                        "tailguard.compression { every = 1, max-failures = 2 }",
                        "pekko.actor.provider = local", "pekko.remote.artery.enabled = off"))
                .withFallback(ConfigFactory.load()).resolve();
        RunSettings s = RunSettings.parse(c, "test");
        ActorTestKit kit = ActorTestKit.create(c);
        try (NodeMetrics metrics = new NodeMetrics()) {
            TestProbe<Controller.Command> controller = kit.createTestProbe();
            ActorRef<CompressionWorker.Command> w = kit.spawn(CompressionWorker.create(s, controller.ref(), "cpu", metrics));
            String gone = tmp.resolve("gone").toUri().toString();
            w.tell(new PolicyPublished(1, 1, gone + "v000001/", "ab"));
            // the controller hears of each job's outcome (for `status`): the first job has failed before
            // the second version is sent (else only the newer one would be compressed)
            Controller.CompressionJobs first = (Controller.CompressionJobs) controller.receiveMessage(Duration.ofSeconds(60));
            assertEquals(1, first.failures().failures());
            assertEquals(1, first.failures().failuresInARow());
            assertEquals(2, first.failures().stopAt());
            assertTrue(first.failures().lastError().startsWith("compressing policy v1 failed: "), first.failures().lastError());
            assertEquals(1.0, metrics.compressionFailures.get());
            assertTrue(!RunStop.of(kit.system()).reason().isDone(), "one failure does not stop the run");
            w.tell(new PolicyPublished(2, 2, gone + "v000002/", "cd"));
            String line = RunStop.of(kit.system()).reason().get(60, java.util.concurrent.TimeUnit.SECONDS);
            assertTrue(line.startsWith("the run stops: compressing policy v2 failed: ")
                    && line.endsWith("(2 failures in a row; tailguard.compression.max-failures = 2)"), line);
            assertEquals(2.0, metrics.compressionFailures.get());
            Controller.CompressionJobs second = (Controller.CompressionJobs) controller.receiveMessage(Duration.ofSeconds(10));
            assertEquals(2, second.failures().failuresInARow());
            controller.expectNoMessage(Duration.ofMillis(200)); // nothing offered
        } finally {
            kit.shutdownTestKit();
        }
    }
}
