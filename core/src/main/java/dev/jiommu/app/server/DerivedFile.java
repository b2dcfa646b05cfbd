package dev.jiommu.app.server;

import dev.jiommu.abi.FdTable;
import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommufd.IommufdFile;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;

/**
 * The server's end of a file handed to a client (fault queue, vEVENTQ, selftest access, dma-buf):
 * serves the client's read and write of its end with the kernel's rules for the kind, keeps the
 * client's end readable exactly when the file is, and closes the object when the client's last fd
 * for it closes (the socket's end of stream, so dup, fork and exec keep the kernel's sharing).
 */
final class DerivedFile {
    /* Implementation notes
     *
     * Readiness: while the file is readable, one MARKER byte waits in the client's receive queue,
     * so poll, ppoll, select and epoll on the client's fd work natively. A watcher thread sends it
     * when the file becomes readable; the shim drops the markers in front of every reply it reads
     * (a reply starts with op REPLY, never 0xff), and the server, after each reply, sends a new one
     * if the file is still readable. Replies and markers are sent under sendLock, so they never
     * interleave and markerPending is exact.
     */
    /** The readiness byte. */
    static final byte MARKER = (byte) 0xff;
    private static final Duration WATCH_SLICE = Duration.ofMillis(250);

    private final Object sendLock = new Object();
    /** Whether a marker sits unread in the client's queue. Guarded by sendLock. */
    private boolean markerPending;
    private volatile boolean done;
    private final MemorySegment marker = Arena.ofAuto().allocate(1).fill(MARKER);
    private final IommufdServer server;
    private final ClientContext owner;
    final Object object;
    private final long clientInode;
    private final Posix posix = new Posix();
    private final Link link;
    /** Whether the object's reference is gone. Guarded by the server lock. */
    private boolean released;

    /**
     * @param owner the context whose file this is (it stays open while the file does), or null
     */
    DerivedFile(IommufdServer server, ClientContext owner, Object object, int socket, long clientInode) {
        this.server = server;
        this.owner = owner;
        this.object = object;
        this.clientInode = clientInode;
        this.link = new Link(socket, posix);
    }

    void start() {
        Thread.ofPlatform().name("jiommu-file-" + clientInode).daemon().start(this::run);
        if (object instanceof IommufdFile file) {
            Thread.ofPlatform().name("jiommu-watch-" + clientInode).daemon().start(() -> watch(file));
        }
    }

    /** Sends a marker whenever the file becomes readable and none is pending. */
    private void watch(IommufdFile file) {
        try (Posix watcher = new Posix()) {
            while (!done) {
                synchronized (sendLock) {
                    while (markerPending && !done) {
                        sendLock.wait();
                    }
                }
                if (done) {
                    continue;
                }
                long start = System.nanoTime();
                if (!file.awaitReadable(WATCH_SLICE)) {
                    if (System.nanoTime() - start < WATCH_SLICE.toNanos() / 2) {
                        // Not readable without waiting: the file closed under its fd (its context went).
                        // Nothing will become readable; idle until the client closes its end.
                        synchronized (sendLock) {
                            if (!done) {
                                sendLock.wait(WATCH_SLICE.toMillis());
                            }
                        }
                    }
                    continue;
                }
                synchronized (sendLock) {
                    if (!markerPending && !done && readable(file)) {
                        markerPending = watcher.send(link.socket, marker, 1, -1) == 0;
                    }
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ErrnoException e) {
            // the file closed under the watcher: nothing is readable any more
        }
    }

    private static boolean readable(IommufdFile file) {
        try {
            return (file.poll() & IommufdFile.POLLIN) != 0;
        } catch (ErrnoException e) {
            return false;
        }
    }

    /** Sends a reply; the markers before it are the client's to drop, a new one follows if still readable. */
    private boolean reply(long result, byte[] payload) {
        synchronized (sendLock) {
            boolean sent = link.send(Wire.REPLY, 0, result, 0, payload, -1);
            markerPending = false;
            if (sent && object instanceof IommufdFile file && readable(file)) {
                markerPending = posix.send(link.socket, marker, 1, -1) == 0;
            }
            sendLock.notifyAll();
            return sent;
        }
    }

    private void run() {
        try {
            while (link.receive()) {
                if (!serve()) {
                    break;
                }
            }
        } catch (RuntimeException | Error e) {
            server.report("derived file %s: %s", object, e);
        } finally {
            server.locked(this::release);
            link.close();
            posix.close();
        }
    }

    private boolean serve() {
        int op = Wire.op(link.header());
        long arg = Wire.arg(link.header());
        int len = Wire.len(link.header());
        switch (op) {
            case Wire.READ -> {
                if (!(object instanceof IommufdFile file)) {
                    return reply(-Errno.EINVAL.number(), null);
                }
                byte[] buffer = new byte[(int) Math.min(Math.max(arg, 0), Wire.MAX_PAYLOAD_BYTES)];
                int n;
                try {
                    n = file.read(buffer);
                } catch (ErrnoException e) {
                    return reply(-e.rawErrno(), null);
                }
                byte[] out = new byte[n];
                System.arraycopy(buffer, 0, out, 0, n);
                return reply(n, out);
            }
            case Wire.WRITE -> {
                byte[] bytes = link.payload(len);
                if (bytes == null) {
                    return false;
                }
                if (!(object instanceof IommufdFile file)) {
                    return reply(-Errno.EINVAL.number(), null);
                }
                try {
                    return reply(file.write(bytes), null);
                } catch (ErrnoException e) {
                    return reply(-e.rawErrno(), null);
                }
            }
            case Wire.POLL -> {
                int revents = object instanceof IommufdFile file ? file.poll() : 0;
                return reply(revents, null);
            }
            default -> {
                return false;
            }
        }
    }

    /**
     * Releases the object now when the client has closed its last fd, as the kernel's release runs
     * inside that close(): the next call of the client must find the object free. Under the server lock.
     */
    void releaseIfClosed(Posix posix) {
        if (!released && posix.peerClosed(link.socket)) {
            release();
        }
    }

    /** The client closed its last fd: the object's file reference goes. Under the server lock. */
    private void release() {
        if (released) {
            return;
        }
        released = true;
        synchronized (sendLock) {
            done = true; // under sendLock: the watcher sends nothing after this, so closing the socket is safe
            sendLock.notifyAll();
        }
        server.derived.remove(clientInode);
        try {
            switch (object) {
                case IommufdFile f -> f.close();
                case FdTable.SelftestAccess a -> a.selftest().closeAccess(a.handle());
                default -> {
                    // memfds and dma-bufs belong to their owners; the fd was only a name for them
                }
            }
        } catch (ErrnoException e) {
            // the context went first and took the object with it
        }
        if (owner != null) {
            owner.derivedFiles--;
            server.closeIfUnused(owner);
        }
    }

    @Override
    public String toString() {
        return "derived file " + object;
    }
}
