package io.tailguard.actors.runtime;

import com.esotericsoftware.kryo.Kryo;
import com.esotericsoftware.kryo.Serializer;
import com.esotericsoftware.kryo.io.Input;
import com.esotericsoftware.kryo.io.Output;
import com.esotericsoftware.kryo.util.Pool;
import com.typesafe.config.Config;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorRefResolver;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.remote.OversizedPayloadException;
import org.apache.pekko.serialization.JSerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.NotSerializableException;
import java.nio.ByteBuffer;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.zip.CRC32;

/**
 * Pekko serializer for every {@link Wire} message: Kryo 5 with registration required (the classes
 * of {@link WireRegistry}), actor references by their serialized path. A frame is one format byte,
 * the CRC32 of the payload, and the payload; a frame that is truncated, corrupted (CRC mismatch)
 * or names an unknown class is refused with NotSerializableException, which the remoting layer
 * logs and drops, and is counted ({@link #droppedFrames()}); the node goes on.
 *
 * <p>Message size. A lease's trajectories grow with generation length (2 prompts × 8 samples × 32K
 * tokens are about 6 MB, over Artery's 4 MiB frame), so they go to the trajectory buffer over
 * Artery's large-message stream (application.conf's large-message-destinations), whose frames
 * TailguardNode sizes to tailguard.cluster.max-message-size plus {@link #ENVELOPE}. Chosen over
 * chunking, which would need a reassembling actor, ordering and a timeout for lost chunks, and over
 * writing trajectories to the checkpoint store and sending a reference, which would make every node
 * depend on a shared file system for every lease, not only for policy versions: the large stream is
 * Artery's own, keeps one message one message, and does not hold up the small ones (leases, tails,
 * heartbeats ride other streams). It is bounded: a message over its class's bound ({@link #LARGE}
 * classes: the large frame, others: the ordinary frame, each less the envelope) is refused here,
 * before Artery would drop it, with one error line naming its type, size and the key to raise, and
 * counted by type ({@link #oversized()}); Artery then logs and drops it. Runaway generations fail
 * loudly, not by a silent drop.
 */
public final class KryoSerializer extends JSerializer {
    /** Pekko's serializer id for this serializer (ids 0–40 are Pekko's). */
    public static final int IDENTIFIER = 7301;
    private static final byte FORMAT = 1;
    private static final int HEADER = 5;
    private static final AtomicLong DROPPED = new AtomicLong();
    private static final Map<String, AtomicLong> OVERSIZED = new ConcurrentHashMap<>();
    /** Room left in a frame for Artery's envelope (header, sender and recipient paths, manifest). */
    public static final int ENVELOPE = 64 * 1024;
    /** The messages that go over the large-message stream (to the trajectory buffer); the others go in ordinary frames. */
    static final Set<Class<?>> LARGE = Set.of(TrajectoryBuffer.Trajectories.class);
    private static final Logger LOG = LoggerFactory.getLogger(KryoSerializer.class);

    private final Pool<Kryo> pool;
    private final long maxLarge;
    private final long maxOrdinary;

    public KryoSerializer(ExtendedActorSystem system) {
        Config c = system.settings().config();
        this.maxLarge = frame(c, "pekko.remote.artery.advanced.maximum-large-frame-size");
        this.maxOrdinary = frame(c, "pekko.remote.artery.advanced.maximum-frame-size");
        ActorRefResolver resolver = ActorRefResolver.get(Adapter.toTyped(system));
        this.pool = new Pool<>(true, false, 16) {
            @Override
            protected Kryo create() {
                return newKryo(resolver);
            }
        };
    }

    /** A Kryo with every wire class registered; actor refs resolved through {@code resolver} (null: none). */
    static Kryo newKryo(ActorRefResolver resolver) {
        Kryo k = new Kryo();
        k.setRegistrationRequired(true);
        k.setReferences(false);
        WireRegistry.registerAll(k);
        if (resolver != null) {
            ActorRefSerializer refs = new ActorRefSerializer(resolver);
            try {
                k.register(Class.forName("org.apache.pekko.actor.typed.internal.adapter.ActorRefAdapter"), refs, 90);
            } catch (ClassNotFoundException e) {
                throw new IllegalStateException("Pekko's typed ActorRef class moved: " + e.getMessage(), e);
            }
        }
        return k;
    }

    public static long droppedFrames() {
        return DROPPED.get();
    }

    /** Messages refused for their size, by type (simple class name), since the JVM started. */
    public static Map<String, Long> oversized() {
        Map<String, Long> m = new java.util.TreeMap<>();
        OVERSIZED.forEach((k, v) -> m.put(k, v.get()));
        return m;
    }

    /** A frame size less the envelope: what a message may take (no bound where the key is absent). */
    private static long frame(Config c, String key) {
        return c.hasPath(key) ? c.getBytes(key) - ENVELOPE : Long.MAX_VALUE;
    }

    /** The most bytes a message of this class may take on the wire. */
    long bound(Class<?> type) {
        return LARGE.contains(type) ? maxLarge : maxOrdinary;
    }

    @Override
    public int identifier() {
        return IDENTIFIER;
    }

    @Override
    public boolean includeManifest() {
        return false;
    }

    @Override
    public byte[] toBinary(Object o) {
        Kryo k = pool.obtain();
        try {
            Output out = new Output(256, -1);
            k.writeClassAndObject(out, o);
            long size = (long) HEADER + out.position();
            if (size > bound(o.getClass())) {
                throw oversized(o.getClass(), size);
            }
            byte[] payload = out.toBytes();
            CRC32 crc = new CRC32();
            crc.update(payload);
            return ByteBuffer.allocate(HEADER + payload.length).put(FORMAT).putInt((int) crc.getValue()).put(payload).array();
        } finally {
            pool.free(k);
        }
    }

    /**
     * Null when {@code o} fits its class's bound; else the refusal line, logged and counted as a
     * refused send is. For a sender that must know: toBinary's refusal happens inside Artery, out of
     * the sender's sight, so a sender whose message would be dropped asks first (it serializes once more).
     */
    String refusal(Object o) {
        Kryo k = pool.obtain();
        try {
            Output out = new Output(256, -1);
            k.writeClassAndObject(out, o);
            long size = (long) HEADER + out.position();
            return size > bound(o.getClass()) ? oversized(o.getClass(), size).getMessage() : null;
        } finally {
            pool.free(k);
        }
    }

    /** {@link #refusal(Object)} by the system's serializer for {@code o}; null where it is not this one. */
    static String refusal(org.apache.pekko.actor.typed.ActorSystem<?> system, Object o) {
        org.apache.pekko.serialization.Serializer s =
                org.apache.pekko.serialization.SerializationExtension.get(Adapter.toClassic(system)).findSerializerFor(o);
        return s instanceof KryoSerializer k ? k.refusal(o) : null;
    }

    @Override
    public Object fromBinaryJava(byte[] bytes, Class<?> manifest) {
        if (bytes.length < HEADER || bytes[0] != FORMAT) {
            throw drop("frame of " + bytes.length + " bytes has no Tailguard header");
        }
        int expected = ByteBuffer.wrap(bytes, 1, 4).getInt();
        CRC32 crc = new CRC32();
        crc.update(bytes, HEADER, bytes.length - HEADER);
        if ((int) crc.getValue() != expected) {
            throw drop("frame of " + bytes.length + " bytes fails its CRC32 (truncated or corrupted)");
        }
        Kryo k = pool.obtain();
        try {
            Input in = new Input(bytes, HEADER, bytes.length - HEADER);
            Object o = k.readClassAndObject(in);
            if (in.position() != bytes.length) {
                throw drop("frame has " + (bytes.length - in.position()) + " trailing bytes");
            }
            return o;
        } catch (com.esotericsoftware.kryo.KryoException | IllegalArgumentException | IndexOutOfBoundsException
                 | NegativeArraySizeException e) {
            throw drop("frame does not decode: " + e.getMessage());
        } finally {
            pool.free(k);
        }
    }

    /** Counts and logs a message over its bound; Artery logs the exception and drops the message. */
    private OversizedPayloadException oversized(Class<?> type, long size) {
        String name = type.getSimpleName();
        OVERSIZED.computeIfAbsent(name, k -> new AtomicLong()).incrementAndGet();
        boolean large = LARGE.contains(type);
        String why = "tailguard wire: a " + name + " message of " + size + " bytes is over the " + bound(type) + " bytes "
                + (large ? "of tailguard.cluster.max-message-size; not sent: raise it, or lower tailguard.rollout.prompts-per-lease "
                + "or the generation length" : "a message may take (pekko.remote.artery.advanced.maximum-frame-size less " + ENVELOPE
                + " bytes of envelope); not sent");
        LOG.error("{}", why);
        return new OversizedPayloadException(why);
    }

    /** Counts the frame and throws NotSerializableException (checked; Pekko's Scala API may throw it). */
    private static RuntimeException drop(String why) {
        DROPPED.incrementAndGet();
        return KryoSerializer.<RuntimeException>sneaky(new NotSerializableException("tailguard wire: " + why + "; dropped"));
    }

    @SuppressWarnings("unchecked")
    private static <E extends Throwable> E sneaky(Throwable t) throws E {
        throw (E) t;
    }

    /** Typed actor references as their serialization-format path string. */
    static final class ActorRefSerializer extends Serializer<ActorRef<?>> {
        private final ActorRefResolver resolver;

        ActorRefSerializer(ActorRefResolver resolver) {
            this.resolver = resolver;
        }

        @Override
        public void write(Kryo kryo, Output output, ActorRef<?> ref) {
            output.writeString(resolver.toSerializationFormat(ref));
        }

        @Override
        public ActorRef<?> read(Kryo kryo, Input input, Class<? extends ActorRef<?>> type) {
            return resolver.resolveActorRef(input.readString());
        }
    }
}
