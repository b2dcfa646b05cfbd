package dev.jiommu.app.server;

import dev.jiommu.abi.FdTable;
import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommufd.IommufdFile;
import dev.jiommu.mem.DmaBuf;
import dev.jiommu.mem.MemoryFile;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The client's real fd table, as the decoder sees it. A file a command hands out becomes a socket
 * in the client: the server keeps one end ({@link DerivedFile}) and passes the other during the
 * ioctl, and the client answers with the number it got (the lowest free one, as the kernel's
 * would be). A number a command takes is pulled from the client with pidfd_getfd and recognized
 * by inode: one of our derived files, or a memfd (mirrored by the context), or something else.
 * Called under the server lock, from the connection's thread, during an ioctl.
 */
final class ClientFdTable implements FdTable {
    private final IommufdServer server;
    private final ClientContext ctx;
    private final Link link;
    private final int pidfd;
    private final Posix posix;

    ClientFdTable(IommufdServer server, ClientContext ctx, Link link, int pidfd, Posix posix) {
        this.server = server;
        this.ctx = ctx;
        this.link = link;
        this.pidfd = pidfd;
        this.posix = posix;
    }

    @Override
    public int install(IommufdFile file) {
        return installDerived(file);
    }

    @Override
    public int install(MemoryFile file) {
        return installDerived(file);
    }

    @Override
    public int install(DmaBuf buf) {
        return installDerived(buf);
    }

    @Override
    public int install(SelftestAccess access) {
        return installDerived(access);
    }

    private int installDerived(Object object) {
        int[] pair = posix.socketPair();
        if (pair == null) {
            throw ErrnoException.of(Errno.EMFILE, "socketpair for a derived file: errno %d", posix.errno());
        }
        Posix.Stat stat = posix.fstat(pair[1]);
        boolean sent = link.send(Wire.INSTALL, 0, 0, 0, null, pair[1]);
        posix.close(pair[1]);
        int fd = -1;
        if (sent && answered() && link.receive() && Wire.op(link.header()) == Wire.INSTALLED) {
            fd = (int) Wire.arg(link.header());
        }
        if (fd < 0 || stat == null) {
            posix.close(pair[0]);
            throw ErrnoException.of(Errno.EMFILE, "the client took no fd for %s", object);
        }
        DerivedFile file = new DerivedFile(server, ctx, object, pair[0], stat.inode());
        ctx.derivedFiles++;
        server.derived.put(stat.inode(), file);
        file.start();
        return fd;
    }

    @Override
    public Object lookup(int fd) {
        if (fd < 0) {
            throw ErrnoException.of(Errno.EBADF, "fd %d", fd);
        }
        int local = posix.pidfdGetfd(pidfd, fd);
        if (local < 0) {
            throw ErrnoException.of(Errno.EBADF, "fd %d of the client: errno %d", fd, -local);
        }
        Posix.Stat stat = posix.fstat(local);
        DerivedFile derived = stat == null ? null : server.derived.get(stat.inode());
        if (derived != null) {
            posix.close(local);
            return derived.object;
        }
        if (stat != null && stat.regular() && isMemfd(local)) {
            int mode = posix.accessMode(local);
            return ctx.file(local, stat, mode == 2 || mode == 1);
        }
        posix.close(local);
        return new Object() {
            @Override
            public String toString() {
                return "client fd " + fd;
            }
        };
    }

    /** Shared memory files (memfd, /dev/shm) are what IOAS_MAP_FILE takes; other files it refuses. */
    private static boolean isMemfd(int localFd) {
        try {
            String target = Files.readSymbolicLink(Path.of("/proc/self/fd/" + localFd)).toString();
            return target.startsWith("/memfd:") || target.startsWith("/dev/shm/");
        } catch (IOException e) {
            return false;
        }
    }

    @Override
    public void close(int fd) {
        if (link.send(Wire.CLOSEFD, 0, fd, 0, null, -1) && answered()) {
            link.receive(); // CLOSED
        }
    }

    /** The most a client may take to answer a callback: the server lock is held meanwhile. */
    private static final int CALLBACK_TIMEOUT_MS = 5000;

    /** {@return whether the client answered in time}, so a client that stops answering cannot hold every other. */
    private boolean answered() {
        int revents = link.posix.poll(link.socket, Posix.POLLIN, CALLBACK_TIMEOUT_MS);
        if (revents <= 0) {
            link.posix.shutdown(link.socket); // its connection is unusable now: end it
            return false;
        }
        return true;
    }
}
