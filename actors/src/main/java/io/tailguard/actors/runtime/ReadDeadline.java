package io.tailguard.actors.runtime;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A read timeout for the admin endpoint's clients: one that has not sent its whole request within
 * the timeout loses its connection, so a slow or stalled client (half a request, then nothing)
 * cannot hold one of the endpoint's threads, and with it the endpoint, forever. The JDK's HTTP
 * server reads a request on its executor's thread from a socket channel in blocking mode, and an
 * interrupt closes such a channel (it is an InterruptibleChannel) and ends the read: so each
 * exchange runs on one of this class's threads with a deadline, and a watchdog interrupts a thread
 * still reading from its client when its deadline has passed. The handler calls {@link #received()}
 * once the request is in: the controller's answer, however slow, is not cut short. (A connection
 * that sends nothing holds no thread, and the JDK's server closes it after its idle interval, about
 * 30 s; one that sends part of a request is read on a thread, which the server would hold forever.)
 */
final class ReadDeadline implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(ReadDeadline.class);

    private final long timeoutNanos;
    private final Duration timeout;
    /** Threads reading a request from their client, with their deadlines (System.nanoTime). */
    private final Map<Thread, Long> reading = new ConcurrentHashMap<>();
    private final ExecutorService pool;
    private final ScheduledExecutorService watchdog;
    private final AtomicLong cut = new AtomicLong();

    ReadDeadline(Duration timeout, int threads, String name) {
        this.timeout = timeout;
        this.timeoutNanos = timeout.toNanos();
        this.pool = Executors.newFixedThreadPool(threads, r -> daemon(r, name));
        this.watchdog = Executors.newSingleThreadScheduledExecutor(r -> daemon(r, name + "-deadline"));
        long period = Math.max(10, timeout.toMillis() / 4);
        watchdog.scheduleWithFixedDelay(this::check, period, period, TimeUnit.MILLISECONDS);
    }

    private static Thread daemon(Runnable r, String name) {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        return t;
    }

    /** The executor for the server: each exchange with a deadline from the moment it starts. */
    Executor executor() {
        return task -> pool.execute(() -> run(task));
    }

    private void run(Runnable task) {
        Thread t = Thread.currentThread();
        reading.put(t, System.nanoTime() + timeoutNanos);
        try {
            task.run();
        } finally {
            synchronized (this) {
                reading.remove(t);
                Thread.interrupted(); // an interrupt that came late does not reach the next exchange
            }
        }
    }

    /** The calling exchange's request is in: no deadline from here on. */
    synchronized void received() {
        reading.remove(Thread.currentThread());
    }

    /** Connections closed because their client was too slow, since the start. */
    long cut() {
        return cut.get();
    }

    private synchronized void check() {
        long now = System.nanoTime();
        reading.forEach((t, deadline) -> {
            if (now - deadline > 0 && reading.remove(t, deadline)) {
                cut.incrementAndGet();
                LOG.warn("admin: a client did not send its request within {} s; its connection is closed", timeout.toSeconds());
                t.interrupt();
            }
        });
    }

    @Override
    public void close() {
        watchdog.shutdownNow();
        pool.shutdownNow();
    }
}
