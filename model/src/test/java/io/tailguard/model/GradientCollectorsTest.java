package io.tailguard.model;

import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.Test;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Two threads that want the JVM's one GradientCollector take turns instead of one failing. */
class GradientCollectorsTest {
    @Test
    void aSecondThreadWaitsForTheFirstCollectorToClose() throws Exception {
        CountDownLatch got = new CountDownLatch(1);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread second;
        try (GradientCollector first = GradientCollectors.exclusive()) {
            second = new Thread(() -> {
                try (GradientCollector gc = GradientCollectors.exclusive()) {
                    got.countDown();
                } catch (Throwable t) {
                    failure.set(t);
                }
            });
            second.start();
            // while the first is open the second neither gets one nor fails
            assertFalse(got.await(300, TimeUnit.MILLISECONDS));
        }
        assertTrue(got.await(10, TimeUnit.SECONDS), "the second thread got its collector after the first closed");
        second.join(10_000);
        assertNull(failure.get());
        assertEquals(0, second.isAlive() ? 1 : 0);
    }
}
