package dev.jiommu.app.server;

import dev.jiommu.abi.FdTable;
import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommufd.IommufdFile;

/**
 * The server's end of a file handed to a client (fault queue, vEVENTQ, selftest access, dma-buf):
 * serves the client's read, write and poll of its end with the kernel's rules for the kind, and
 * closes the object when the client's last fd for it closes (the socket's end of stream, so dup,
 * fork and exec keep the kernel's sharing).
 */
final class DerivedFile {
    private final IommufdServer server;
    final Object object;
    private final long clientInode;
    private final Posix posix = new Posix();
    private final Link link;
    /** Whether the object's reference is gone. Guarded by the server lock. */
    private boolean released;

    DerivedFile(IommufdServer server, Object object, int socket, long clientInode) {
        this.server = server;
        this.object = object;
        this.clientInode = clientInode;
        this.link = new Link(socket, posix);
    }

    void start() {
        Thread.ofPlatform().name("jiommu-file-" + clientInode).daemon().start(this::run);
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
                    return link.reply(-Errno.EINVAL.number());
                }
                byte[] buffer = new byte[(int) Math.min(Math.max(arg, 0), Wire.MAX_PAYLOAD_BYTES)];
                int n;
                try {
                    n = file.read(buffer);
                } catch (ErrnoException e) {
                    return link.reply(-e.rawErrno());
                }
                byte[] out = new byte[n];
                System.arraycopy(buffer, 0, out, 0, n);
                return link.send(Wire.REPLY, 0, n, 0, out, -1);
            }
            case Wire.WRITE -> {
                byte[] bytes = link.payload(len);
                if (bytes == null) {
                    return false;
                }
                if (!(object instanceof IommufdFile file)) {
                    return link.reply(-Errno.EINVAL.number());
                }
                try {
                    return link.reply(file.write(bytes));
                } catch (ErrnoException e) {
                    return link.reply(-e.rawErrno());
                }
            }
            case Wire.POLL -> {
                int revents = object instanceof IommufdFile file ? file.poll() : 0;
                return link.reply(revents);
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
    }

    @Override
    public String toString() {
        return "derived file " + object;
    }
}
