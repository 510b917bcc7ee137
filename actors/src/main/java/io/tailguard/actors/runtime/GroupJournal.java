package io.tailguard.actors.runtime;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.CRC32;

/**
 * The journal of completed groups in the checkpoint store ({@code <store>/journal/}): a group is
 * written here, and forced to disk, before its lease is acknowledged, and deleted once a learner
 * checkpoint holds it as trained or dropped. One file per group, {@code <seq>-g<group id>.group}, each
 * written to a temporary file, forced, then renamed into place, and the directory forced once per
 * append. One file per group rather than append-only segments because groups leave the journal out
 * of order (a late lease, a stale drop, a duplicate): trimming is then deleting exactly the trained
 * groups' files, with no segment to compact or rewrite; a crash leaves at most temporary files (a
 * group is in the journal completely, or not at all), which the next open deletes; and the number of
 * files is bounded by the buffer's capacity plus the groups trained since the last checkpoint. The
 * sequence number (one more than the largest on disk when opened) keeps replay in completion order.
 * A file whose checksum does not match is set aside as {@code .unreadable} and reported, never replayed.
 */
final class GroupJournal {
    /** A journaled group: its place in completion order, the lease and policy version it came from, and its schedule. */
    record Entry(long seq, long lease, long policyVersion, ScheduleSpec schedule, TrajectoryBuffer.GroupResult group) {}

    static final String SUFFIX = ".group";
    private static final Pattern NAME = Pattern.compile("(\\d{16})-g(\\d+)\\.group");
    private static final String TEMP = ".tmp";
    private static final int MAGIC = 0x54474a32; // "TGJ2"
    /** The first format: each sample also carried dense log-probs (π_old), read and dropped. */
    private static final int MAGIC_V1 = 0x54474a31; // "TGJ1"

    private final Path dir;
    /** Group id → its file. */
    private final Map<Long, Path> files = new HashMap<>();
    private long nextSeq;

    /** Opens (creating) the journal in {@code dir}: temporary files of interrupted writes are deleted, the groups indexed. */
    GroupJournal(Path dir) throws IOException {
        this.dir = dir.toAbsolutePath().normalize();
        Files.createDirectories(this.dir);
        long maxSeq = -1;
        try (var list = Files.list(this.dir)) {
            for (Path p : list.toList()) {
                String n = p.getFileName().toString();
                if (n.endsWith(TEMP)) {
                    Files.deleteIfExists(p); // a write a crash interrupted before its rename: never acknowledged
                    continue;
                }
                Matcher m = NAME.matcher(n);
                if (m.matches()) {
                    long seq = Long.parseLong(m.group(1));
                    files.put(Long.parseLong(m.group(2)), p);
                    maxSeq = Math.max(maxSeq, seq);
                }
            }
        }
        this.nextSeq = maxSeq + 1;
    }

    Path dir() {
        return dir;
    }

    boolean contains(long group) {
        return files.containsKey(group);
    }

    /** The journaled group ids. */
    Set<Long> ids() {
        return Set.copyOf(files.keySet());
    }

    int size() {
        return files.size();
    }

    /**
     * Makes the groups durable, in this order: each written and forced, renamed into place, then the
     * directory forced. When this returns they survive a kill of the process and a crash of the machine.
     * Returns their entries, in order. On a failure none of them stays in the journal.
     */
    List<Entry> append(long lease, long policyVersion, ScheduleSpec schedule, List<TrajectoryBuffer.GroupResult> groups)
            throws IOException {
        List<Path> temps = new ArrayList<>();
        List<Entry> entries = new ArrayList<>();
        try {
            for (TrajectoryBuffer.GroupResult g : groups) {
                Entry e = new Entry(nextSeq++, lease, policyVersion, schedule, g);
                entries.add(e);
                temps.add(writeTemp(e));
            }
            for (int i = 0; i < temps.size(); i++) {
                commit(temps.get(i), groups.get(i).groupId());
            }
        } catch (IOException | RuntimeException e) {
            // all or none: the caller does not acknowledge the lease, so none of its groups may stay
            for (TrajectoryBuffer.GroupResult g : groups) {
                Path f = files.remove(g.groupId());
                if (f != null) {
                    Files.deleteIfExists(f);
                }
            }
            throw e;
        } finally {
            for (Path t : temps) {
                Files.deleteIfExists(t);
            }
        }
        forceDirectory();
        return entries;
    }

    /** The first half of an append: the group's bytes in a temporary file, forced (package-private for the crash test). */
    Path writeTemp(Entry e) throws IOException {
        Path tmp = dir.resolve(name(e.seq(), e.group().groupId()) + TEMP);
        byte[] bytes = encode(e);
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.wrap(bytes);
            while (b.hasRemaining()) {
                ch.write(b);
            }
            ch.force(true);
        }
        return tmp;
    }

    /** The second half: the temporary file renamed into place. */
    void commit(Path tmp, long group) throws IOException {
        String n = tmp.getFileName().toString();
        Path target = dir.resolve(n.substring(0, n.length() - TEMP.length()));
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
        files.put(group, target);
    }

    /**
     * Every journaled group whose id {@code wanted} accepts, in completion order (read from disk). A
     * file that does not read back (a bad checksum) is renamed to {@code .unreadable}, dropped from the
     * index and reported to {@code unreadable}.
     */
    List<Entry> read(java.util.function.LongPredicate wanted, Consumer<String> unreadable) throws IOException {
        TreeMap<Long, Entry> bySeq = new TreeMap<>();
        for (Map.Entry<Long, Path> f : new ArrayList<>(files.entrySet())) {
            if (!wanted.test(f.getKey())) {
                continue;
            }
            try {
                Entry e = decode(Files.readAllBytes(f.getValue()));
                if (e.group().groupId() != f.getKey()) {
                    throw new IOException("holds group " + e.group().groupId());
                }
                bySeq.put(e.seq(), e);
            } catch (IOException | RuntimeException ex) {
                Path aside = f.getValue().resolveSibling(f.getValue().getFileName() + ".unreadable");
                Files.move(f.getValue(), aside, StandardCopyOption.REPLACE_EXISTING);
                files.remove(f.getKey());
                unreadable.accept(f.getValue() + ": " + ex.getMessage() + " (set aside as " + aside.getFileName() + ")");
            }
        }
        return new ArrayList<>(bySeq.values());
    }

    /** Trims: deletes the groups' files (ids not in the journal are ignored). */
    void remove(Collection<Long> groups) throws IOException {
        for (long g : groups) {
            Path f = files.remove(g);
            if (f != null) {
                Files.deleteIfExists(f);
            }
        }
    }

    private void forceDirectory() {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException e) {
            // some platforms cannot open a directory; the renames are then as durable as they get there
        }
    }

    private static String name(long seq, long group) {
        return String.format("%016d-g%d%s", seq, group, SUFFIX);
    }

    // ---- the file format: MAGIC, the entry's fields, CRC32 of everything before it ----

    static byte[] encode(Entry e) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        out.writeInt(MAGIC);
        out.writeLong(e.seq());
        out.writeLong(e.lease());
        out.writeLong(e.policyVersion());
        ScheduleSpec s = e.schedule();
        out.writeBoolean(s != null);
        if (s != null) {
            writeString(out, s.kind());
            out.writeLong(s.version());
            out.writeInt(s.binWidth());
            writeInts(out, s.budgets());
            writeInts(out, s.denseLayers());
        }
        TrajectoryBuffer.GroupResult g = e.group();
        out.writeLong(g.groupId());
        writeString(out, g.promptId());
        writeString(out, g.worker());
        out.writeInt(g.samples().length);
        for (TrajectoryBuffer.Sample x : g.samples()) {
            writeInts(out, x.prompt());
            writeInts(out, x.output());
            writeFloats(out, x.behaviourLogprobs());
            out.writeDouble(x.reward());
            writeString(out, x.reason());
        }
        out.flush();
        CRC32 crc = new CRC32();
        crc.update(bytes.toByteArray());
        out.writeLong(crc.getValue());
        out.flush();
        return bytes.toByteArray();
    }

    static Entry decode(byte[] bytes) throws IOException {
        if (bytes.length < 12) {
            throw new IOException("truncated (" + bytes.length + " bytes)");
        }
        CRC32 crc = new CRC32();
        crc.update(bytes, 0, bytes.length - 8);
        if (crc.getValue() != ByteBuffer.wrap(bytes, bytes.length - 8, 8).getLong()) {
            throw new IOException("checksum does not match");
        }
        DataInputStream in = new DataInputStream(new ByteArrayInputStream(bytes, 0, bytes.length - 8));
        int magic = in.readInt();
        if (magic != MAGIC && magic != MAGIC_V1) {
            throw new IOException("not a journaled group");
        }
        long seq = in.readLong();
        long lease = in.readLong();
        long version = in.readLong();
        ScheduleSpec s = null;
        if (in.readBoolean()) {
            s = new ScheduleSpec(readString(in), in.readLong(), in.readInt(), readInts(in), readInts(in));
        }
        long id = in.readLong();
        String prompt = readString(in);
        String worker = readString(in);
        TrajectoryBuffer.Sample[] samples = new TrajectoryBuffer.Sample[in.readInt()];
        for (int i = 0; i < samples.length; i++) {
            int[] promptIds = readInts(in);
            int[] output = readInts(in);
            float[] behaviour = readFloats(in);
            if (magic == MAGIC_V1) {
                readFloats(in); // π_old of the first format: the learner computes its own now
            }
            samples[i] = new TrajectoryBuffer.Sample(promptIds, output, behaviour, in.readDouble(), readString(in));
        }
        return new Entry(seq, lease, version, s, new TrajectoryBuffer.GroupResult(id, prompt, worker, samples));
    }

    private static void writeString(DataOutputStream out, String s) throws IOException {
        if (s == null) {
            out.writeInt(-1);
            return;
        }
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        out.writeInt(b.length);
        out.write(b);
    }

    private static String readString(DataInputStream in) throws IOException {
        int n = in.readInt();
        if (n < 0) {
            return null;
        }
        return new String(in.readNBytes(checked(n, in)), StandardCharsets.UTF_8);
    }

    private static void writeInts(DataOutputStream out, int[] a) throws IOException {
        out.writeInt(a == null ? -1 : a.length);
        if (a != null) {
            for (int v : a) {
                out.writeInt(v);
            }
        }
    }

    private static int[] readInts(DataInputStream in) throws IOException {
        int n = in.readInt();
        if (n < 0) {
            return null;
        }
        int[] a = new int[checked(n * 4, in) / 4];
        for (int i = 0; i < a.length; i++) {
            a[i] = in.readInt();
        }
        return a;
    }

    private static void writeFloats(DataOutputStream out, float[] a) throws IOException {
        out.writeInt(a == null ? -1 : a.length);
        if (a != null) {
            for (float v : a) {
                out.writeFloat(v);
            }
        }
    }

    private static float[] readFloats(DataInputStream in) throws IOException {
        int n = in.readInt();
        if (n < 0) {
            return null;
        }
        float[] a = new float[checked(n * 4, in) / 4];
        for (int i = 0; i < a.length; i++) {
            a[i] = in.readFloat();
        }
        return a;
    }

    /** A length read from the file must fit in what is left of it. */
    private static int checked(int bytes, DataInputStream in) throws IOException {
        if (bytes < 0 || bytes > in.available()) {
            throw new IOException("a length of " + bytes + " bytes runs past the end");
        }
        return bytes;
    }
}
