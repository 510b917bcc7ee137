package io.tailguard.actors.runtime;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.io.ConfigJson;
import io.tailguard.rollout.sparse.Schedule;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.DispatcherSelector;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.ClusterSingleton;
import org.apache.pekko.cluster.typed.ClusterSingletonSettings;
import org.apache.pekko.cluster.typed.Join;
import org.apache.pekko.cluster.typed.SingletonActor;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

/**
 * One cluster member: an actor system with the cluster provider, Kryo on every cross-node message,
 * Prometheus on /metrics, and the actors of its roles. controller: the controller singleton (every
 * member gets a proxy to it); learner: the trajectory buffer and the learner; rollout: N workers.
 * `train` starts one member with every role that joins itself; `node` starts one member of a
 * multi-process cluster, which joins the configured seed nodes or, with tailguard.cluster.bootstrap
 * = kubernetes-api, finds the others through Pekko Management Cluster Bootstrap.
 */
public final class TailguardNode implements AutoCloseable {
    public static final Set<String> ROLES = Set.of("controller", "learner", "rollout", "compression");
    static final String BLOCKING = "tailguard.blocking-dispatcher";
    /**
     * The trajectory buffer's name under /user: application.conf names its path as Artery's one
     * large-message destination, so a lease's trajectories, the one message that grows with
     * generation length, cross nodes in large frames, apart from the small messages.
     */
    static final String BUFFER = "buffer";

    private final ActorSystem<Void> system;
    private final NodeMetrics metrics;
    private final int metricsPort;
    private final java.util.concurrent.CompletableFuture<ActorRef<Controller.Command>> controllerRef = new java.util.concurrent.CompletableFuture<>();
    private AdminServer admin;
    private ConfigWatcher watcher;

    /**
     * @param config   the merged configuration (user file over references); Pekko keys included
     * @param given    its parsed Tailguard part (the task's chat format is chosen here for {@code start})
     * @param roles    this member's roles
     * @param start    the starting checkpoint directory (resolved)
     * @param selfJoin join itself (a one-process cluster) instead of the configured seed nodes
     * @param extra    a behaviour to run beside the roles' actors (the `train` observer), or null
     */
    public TailguardNode(Config config, RunSettings given, Set<String> roles, Path start, String device, boolean selfJoin,
                         Behavior<?> extra) {
        // the task's chat format, chosen once for the start every node is given (RunSettings#withCheckpoint)
        // and the thread caps that say auto, split between the roles this node runs
        RunSettings settings = given.withCheckpoint(start).withThreadSplit(roles, io.tailguard.model.NativeLibraries.threads());
        RunDataset.claim(settings.train().out(), settings.train().task());
        for (String r : roles) {
            if (!ROLES.contains(r)) {
                throw new IllegalArgumentException("--roles: unknown role \"" + r + "\" (known: " + String.join(", ", ROLES) + ")");
            }
        }
        boolean bootstrap = !selfJoin && settings.bootstrap() == RunSettings.Bootstrap.KUBERNETES_API;
        java.util.Map<String, Object> forced = new java.util.HashMap<>();
        forced.put("pekko.cluster.roles", List.copyOf(roles));
        // the trajectory buffer's large-message frames hold tailguard.cluster.max-message-size of
        // Tailguard's message and Artery's envelope around it (KryoSerializer enforces the former)
        forced.put("pekko.remote.artery.advanced.maximum-large-frame-size", settings.bounds().maxMessageBytes() + KryoSerializer.ENVELOPE);
        if (bootstrap) {
            // the choice is tailguard.cluster.bootstrap; pekko.discovery.method may name another
            // mechanism for other uses
            forced.put("pekko.management.cluster.bootstrap.contact-point-discovery.discovery-method", "kubernetes-api");
        }
        Config full = ConfigFactory.parseMap(forced)
                .withFallback(config)
                .resolve();
        if (roles.contains("learner")) {
            try {
                Files.createDirectories(settings.train().out());
                RunDirectory.claim(settings.train().out(), start);
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }
        this.metrics = new NodeMetrics();
        metrics.compressionFamilies(settings.compression().label(), settings.compression().valueBits());
        this.metricsPort = metrics.serve(settings.metrics().host(), settings.metrics().port());
        ModelConfig model = ConfigJson.read(start.resolve("config.json"));
        this.system = create(Behaviors.setup(ctx -> {
            if (selfJoin) {
                Cluster c = Cluster.get(ctx.getSystem());
                c.manager().tell(Join.create(c.selfMember().address()));
            }
            ActorRef<Controller.Command> controller = ClusterSingleton.get(ctx.getSystem()).init(
                    SingletonActor.of(Behaviors.supervise(Controller.create(settings, model, start, metrics))
                                    .onFailure(org.apache.pekko.actor.typed.SupervisorStrategy.restart()), "controller")
                            .withSettings(ClusterSingletonSettings.create(ctx.getSystem()).withRole("controller")));
            controllerRef.complete(controller);
            if (roles.contains("learner")) {
                ActorRef<TrajectoryBuffer.Command> buffer = ctx.spawn(restarting(TrajectoryBuffer.create(settings, controller, metrics)),
                        BUFFER, DispatcherSelector.fromConfig(Controller.BLOCKING_IO)); // it forces its journal to disk
                ctx.spawn(restarting(Learner.create(settings, start, controller, buffer, device, metrics)), "learner",
                        DispatcherSelector.fromConfig(BLOCKING));
            }
            if (roles.contains("rollout")) {
                String host = ctx.getSystem().address().getHost().orElse("local") + ":" + ctx.getSystem().address().getPort().orElse(0);
                for (int i = 0; i < settings.rollout().workers(); i++) {
                    ctx.spawn(restarting(RolloutWorker.create("worker-" + i + "@" + host, settings, controller, device, metrics)),
                            "worker-" + i, DispatcherSelector.fromConfig(BLOCKING));
                }
            }
            if (roles.contains("compression")) {
                ctx.spawn(restarting(CompressionWorker.create(settings, controller, device, metrics)), "compression", DispatcherSelector.fromConfig(BLOCKING));
            }
            if (extra != null) {
                spawnExtra(ctx, extra);
            }
            return Behaviors.empty();
        }), full);
        metrics.clusterMembers(() -> memberCounts(Cluster.get(system)));
        try {
            if (full.getBoolean("tailguard.management.enabled")) {
                // health routes (/ready: member Up; /alive) for Kubernetes probes, read-only /cluster
                // routes, and /bootstrap/seed-nodes for other members' Cluster Bootstrap
                org.apache.pekko.management.javadsl.PekkoManagement.get(system).start()
                        .toCompletableFuture().get(60, java.util.concurrent.TimeUnit.SECONDS);
            }
            if (bootstrap) {
                // after Management: it sets the contact point (host:port) that the bootstrap looks for
                // among the discovered pods to decide whether this member forms the cluster
                org.apache.pekko.management.cluster.bootstrap.ClusterBootstrap.get(system).start();
            }
            ActorRef<Controller.Command> controller = controllerRef.get(60, java.util.concurrent.TimeUnit.SECONDS);
            if (roles.contains("controller") && settings.admin().port() > 0) {
                admin = new AdminServer(system, controller, settings.admin().host(), settings.admin().port(), settings.admin().token());
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        } catch (Exception e) {
            close();
            throw new IllegalStateException("the node did not start: " + e, e);
        }
    }

    /** Live tuning by editing {@code file}: its tunable keys go to the controller when it changes. */
    public void watch(Path file) {
        if (file != null && watcher == null) {
            watcher = new ConfigWatcher(file, system, controllerRef.join());
        }
    }

    /** The bound admin port (0 when off or not the controller's node). */
    public int adminPort() {
        return admin == null ? 0 : admin.port();
    }

    private ActorSystem<Void> create(Behavior<Void> guardian, Config full) {
        try {
            return ActorSystem.create(guardian, "tailguard", full);
        } catch (RuntimeException e) {
            metrics.close();
            throw e;
        }
    }

    /** Every member as status shows it: "address status [roles]". */
    static String[] memberLines(Cluster cluster) {
        return java.util.stream.StreamSupport.stream(cluster.state().getMembers().spliterator(), false)
                .map(m -> m.address() + " " + m.status() + " " + m.getRoles()).toArray(String[]::new);
    }

    /** Members by status, lower-case with dashes, plus "unreachable" (members others cannot reach). */
    static java.util.Map<String, Integer> memberCounts(Cluster cluster) {
        java.util.Map<String, Integer> counts = new java.util.TreeMap<>();
        org.apache.pekko.cluster.ClusterEvent.CurrentClusterState state = cluster.state();
        for (org.apache.pekko.cluster.Member m : state.getMembers()) {
            counts.merge(m.status().toString().replaceAll("([a-z])([A-Z])", "$1-$2").toLowerCase(java.util.Locale.ROOT), 1, Integer::sum);
        }
        counts.put("unreachable", state.getUnreachable().size());
        return counts;
    }

    /**
     * An actor that fails is started again after a back-off (1 s doubling to 30 s): a worker reloads
     * its policy with the next lease, a learner resumes from its last checkpoint (and its buffer
     * replays the journaled groups that checkpoint does not hold), a buffer reads its journal again
     * and asks the learner where it stands.
     */
    static <T> Behavior<T> restarting(Behavior<T> b) {
        return Behaviors.supervise(b).onFailure(org.apache.pekko.actor.typed.SupervisorStrategy
                .restartWithBackoff(java.time.Duration.ofSeconds(1), java.time.Duration.ofSeconds(30), 0.2));
    }

    @SuppressWarnings("unchecked")
    private static void spawnExtra(ActorContext<Void> ctx, Behavior<?> extra) {
        ctx.spawn((Behavior<Object>) extra, "observer");
    }

    /**
     * The schedule the controller starts from: its persisted schedule (it is being restarted), else
     * the configured calibrated one, else dense (with tailguard.controller.dense-layers, which the
     * controller keeps in every schedule it makes). A file that cannot be read is an
     * IllegalArgumentException naming it.
     */
    public static Schedule startSchedule(RunSettings s) {
        Path persisted = ControllerFiles.schedule(s);
        if (Files.isRegularFile(persisted)) {
            return Schedule.parse(persisted);
        }
        if (!s.startSchedule().isBlank()) {
            return Schedule.parse(Path.of(s.startSchedule()));
        }
        return Schedule.dense().withDenseLayers(s.denseLayers());
    }

    public ActorSystem<Void> system() {
        return system;
    }

    /** This member's address, as the cluster knows it. */
    public String address() {
        return system.address().toString();
    }

    /** Blocks until the actor system has terminated. */
    public void awaitTermination() throws InterruptedException, java.util.concurrent.ExecutionException {
        system.getWhenTerminated().toCompletableFuture().get();
    }

    /**
     * Completes with one line when a failure that must not be run past stops the run (the
     * controller's files cannot be written, compression keeps failing: {@link RunStop}); the
     * caller closes the node and exits 1 with it.
     */
    public java.util.concurrent.CompletableFuture<String> stopped() {
        return RunStop.of(system).reason();
    }

    /** Blocks until the actor system has terminated (null) or the run is stopped ({@link #stopped()}: its line). */
    public String awaitEnd() throws InterruptedException, java.util.concurrent.ExecutionException {
        java.util.concurrent.CompletableFuture.anyOf(system.getWhenTerminated().toCompletableFuture(), stopped()).get();
        return stopped().getNow(null);
    }

    public NodeMetrics metrics() {
        return metrics;
    }

    /** The bound /metrics port (0 when off). */
    public int metricsPort() {
        return metricsPort;
    }

    @Override
    public void close() {
        if (watcher != null) {
            watcher.close();
        }
        if (admin != null) {
            admin.close();
        }
        system.terminate();
        try {
            system.getWhenTerminated().toCompletableFuture().get(30, java.util.concurrent.TimeUnit.SECONDS);
        } catch (Exception e) {
            // shutting down anyway
        }
        metrics.close();
    }
}
