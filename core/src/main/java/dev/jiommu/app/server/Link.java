package dev.jiommu.app.server;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * One end of a socket the server talks on, with its thread's {@link Posix}: header in, header out,
 * payloads, and an fd passed along. Used by one thread at a time.
 */
final class Link implements AutoCloseable {
    final int socket;
    final Posix posix;
    /** The header last received (and the one being sent, after it). */
    private final MemorySegment in;
    private final MemorySegment out;
    /** The fd that rode on the last received header, or −1. */
    private int receivedFd = -1;

    Link(int socket, Posix posix) {
        this.socket = socket;
        this.posix = posix;
        this.in = Arena.ofAuto().allocate(Wire.HEADER);
        this.out = Arena.ofAuto().allocate(Wire.HEADER);
    }

    /** Waits for the next header. {@return false at end of stream or on an error} */
    boolean receive() {
        int r = posix.receive(socket, in, Wire.HEADER_BYTES);
        if (r == Integer.MIN_VALUE || r < -1) {
            return false;
        }
        receivedFd = r;
        return true;
    }

    MemorySegment header() {
        return in;
    }

    int receivedFd() {
        return receivedFd;
    }

    /** {@return the payload of the last header, or null when the peer went away} */
    byte[] payload(int length) {
        if (length == 0) {
            return new byte[0];
        }
        MemorySegment buf = posix.scratch(length);
        int r = posix.receive(socket, buf, length);
        if (r == Integer.MIN_VALUE || r < -1) {
            return null;
        }
        return buf.asSlice(0, length).toArray(ValueLayout.JAVA_BYTE);
    }

    /** Sends a header (with {@code fd} riding on it when ≥ 0) and {@code payload}. {@return whether it went} */
    boolean send(int op, int cmd, long arg, long arg2, byte[] payload, int fd) {
        int len = payload == null ? 0 : payload.length;
        Wire.set(out, op, cmd, len, arg, arg2);
        if (posix.send(socket, out, Wire.HEADER_BYTES, fd) != 0) {
            return false;
        }
        if (len > 0) {
            MemorySegment buf = posix.scratch(len);
            MemorySegment.copy(payload, 0, buf, ValueLayout.JAVA_BYTE, 0, len);
            return posix.send(socket, buf, len, -1) == 0;
        }
        return true;
    }

    boolean reply(long result) {
        return send(Wire.REPLY, 0, result, 0, null, -1);
    }

    @Override
    public void close() {
        posix.close(socket);
    }
}
