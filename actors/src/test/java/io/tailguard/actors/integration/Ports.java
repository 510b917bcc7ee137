package io.tailguard.actors.integration;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;

/** Loopback ports for the tests that start nodes, servers and actor systems on given ports. */
public final class Ports {
    private Ports() {
    }

    private static final Set<Integer> HANDED_OUT = ConcurrentHashMap.newKeySet();

    /**
     * A loopback port free now, for a process or actor system that binds it a little later. Below
     * Linux's ephemeral range (32768-60999), so an outgoing connection cannot take it meanwhile (the
     * kernel's ServerSocket(0) hands out ephemeral ports), and never the same one twice in this JVM.
     */
    public static int freePort() throws IOException {
        ThreadLocalRandom r = ThreadLocalRandom.current();
        for (int i = 0; i < 500; i++) {
            int p = 20000 + r.nextInt(12000);
            if (!HANDED_OUT.add(p)) {
                continue;
            }
            try (ServerSocket s = new ServerSocket()) {
                s.setReuseAddress(false);
                s.bind(new InetSocketAddress("127.0.0.1", p));
                return p;
            } catch (IOException taken) {
                // in use: try another
            }
        }
        throw new IOException("no free loopback port in 20000-31999");
    }
}
