package dev.jiommu.app.server;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.VarHandle;

import static java.lang.foreign.MemoryLayout.PathElement.groupElement;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The server's wire protocol (native/jiommu_proto.h is the C side): every message is one 32-byte
 * header followed by {@code len} payload bytes; an fd rides as SCM_RIGHTS on the header.
 *
 * <pre>
 *  0      4      8      12     16             24             32
 *  +------+------+------+------+--------------+--------------+
 *  |  op  | cmd  | pid  | len  |     arg      |     arg2     |   then len payload bytes
 *  +------+------+------+------+--------------+--------------+
 * </pre>
 *
 * The shim forwards an ioctl as (cmd, arg) alone: the server reads the struct and every buffer it
 * names in the caller's memory itself, so the protocol never needs to know a struct.
 */
final class Wire {
    static final StructLayout HEADER = MemoryLayout.structLayout(
            JAVA_INT.withName("op"), JAVA_INT.withName("cmd"), JAVA_INT.withName("pid"), JAVA_INT.withName("len"),
            JAVA_LONG.withName("arg"), JAVA_LONG.withName("arg2"));
    static final long HEADER_BYTES = HEADER.byteSize();
    private static final VarHandle OP = HEADER.varHandle(groupElement("op"));
    private static final VarHandle CMD = HEADER.varHandle(groupElement("cmd"));
    private static final VarHandle PID = HEADER.varHandle(groupElement("pid"));
    private static final VarHandle LEN = HEADER.varHandle(groupElement("len"));
    private static final VarHandle ARG = HEADER.varHandle(groupElement("arg"));
    private static final VarHandle ARG2 = HEADER.varHandle(groupElement("arg2"));

    // client -> server on a context socket
    static final int OPEN = 1;
    static final int ATTACH = 2;
    static final int IOCTL = 3;
    static final int MMAP = 4;
    static final int MUNMAP = 5;
    static final int TOKEN = 6;
    // client -> server on a derived file's socket
    static final int READ = 16;
    static final int WRITE = 17;
    static final int POLL = 18;
    // server -> client
    static final int REPLY = 32;
    static final int INSTALL = 33;
    static final int CLOSEFD = 34;
    // client answers inside an ioctl
    static final int INSTALLED = 48;
    static final int CLOSED = 49;

    /** The most payload a message may carry (a read of a queue file, an mmap window). */
    static final int MAX_PAYLOAD_BYTES = 1 << 20;

    private Wire() {
    }

    static int op(MemorySegment h) {
        return (int) OP.get(h, 0L);
    }

    static int cmd(MemorySegment h) {
        return (int) CMD.get(h, 0L);
    }

    static int pid(MemorySegment h) {
        return (int) PID.get(h, 0L);
    }

    static int len(MemorySegment h) {
        return (int) LEN.get(h, 0L);
    }

    static long arg(MemorySegment h) {
        return (long) ARG.get(h, 0L);
    }

    static long arg2(MemorySegment h) {
        return (long) ARG2.get(h, 0L);
    }

    static void set(MemorySegment h, int op, int cmd, int len, long arg, long arg2) {
        OP.set(h, 0L, op);
        CMD.set(h, 0L, cmd);
        PID.set(h, 0L, 0);
        LEN.set(h, 0L, len);
        ARG.set(h, 0L, arg);
        ARG2.set(h, 0L, arg2);
    }
}
