package io.tailguard.actors.runtime;

import com.esotericsoftware.kryo.Kryo;
import com.esotericsoftware.kryo.Serializer;
import com.esotericsoftware.kryo.io.Input;
import com.esotericsoftware.kryo.io.Output;
import com.esotericsoftware.kryo.util.Pool;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorRefResolver;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.serialization.JSerializer;

import java.io.NotSerializableException;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicLong;
import java.util.zip.CRC32;

/**
 * Pekko serializer for every {@link Wire} message: Kryo 5 with registration required (the classes
 * of {@link WireRegistry}), actor references by their serialized path. A frame is one format byte,
 * the CRC32 of the payload, and the payload; a frame that is truncated, corrupted (CRC mismatch)
 * or names an unknown class is refused with NotSerializableException, which the remoting layer
 * logs and drops, and is counted ({@link #droppedFrames()}); the node goes on.
 */
public final class KryoSerializer extends JSerializer {
    /** Pekko's serializer id for this serializer (ids 0–40 are Pekko's). */
    public static final int IDENTIFIER = 7301;
    private static final byte FORMAT = 1;
    private static final int HEADER = 5;
    private static final AtomicLong DROPPED = new AtomicLong();

    private final Pool<Kryo> pool;

    public KryoSerializer(ExtendedActorSystem system) {
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
            byte[] payload = out.toBytes();
            CRC32 crc = new CRC32();
            crc.update(payload);
            return ByteBuffer.allocate(HEADER + payload.length).put(FORMAT).putInt((int) crc.getValue()).put(payload).array();
        } finally {
            pool.free(k);
        }
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
