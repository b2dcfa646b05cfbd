package dev.jiommu.app.server;

import dev.jiommu.abi.IoctlNumbers;
import dev.jiommu.abi.TestCmdStruct;
import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.mem.RemoteUserMemory;

import java.io.PrintWriter;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.locks.ReentrantLock;

/**
 * {@code /dev/iommu} for other processes: a Unix-socket server that gives each client iommufd an
 * emulated context ({@link ClientContext}) and runs the client's ioctls on it through the ABI
 * decoder, reading and writing the client's memory directly. native/jiommu_preload.c is the
 * client side.
 *
 * <p>The socket is created mode 0600, and a connecting process must run as the server's uid or as
 * root (SO_PEERCRED). Each connection has a platform thread (its calls block in native code, which
 * would pin a virtual thread's carrier); so has each derived file.
 *
 * <p>Locking: one server lock serializes every call that reaches a context (ioctl, mmap, close of
 * a derived file, a context's close), so a context's memory can say which process is calling.
 */
public final class IommufdServer implements AutoCloseable {
    /* Implementation notes
     *
     * Client memory: process_vm_readv/writev (RemoteUserMemory). The alternative, re-backing the
     * client's mappings with memfds shared with the server, is zero-copy but changes MAP_PRIVATE
     * and fork semantics the selftest checks; reading the live process keeps every way the
     * client allocated memory working, and a pinned page gets a frame here that is synced with
     * the client around the calls that can touch memory (IOMMU_TEST_CMD). See docs/server.md.
     */
    private static final int TEST_CMD_NR = IoctlNumbers.nr(IoctlNumbers.TEST_CMD);
    private static final int BACKLOG = 64;

    private final Path socketPath;
    private final PhysicalMemory memory;
    private final PrintWriter log;
    private final ReentrantLock lock = new ReentrantLock();
    private final Posix main = new Posix();
    /** For RemoteUserMemory and memfd mirrors; used under the lock. */
    private final Posix memoryPosix = new Posix();
    private final RemoteUserMemory.ProcessAccess processAccess = new ProcessVm(memoryPosix);
    private final SecureRandom random = new SecureRandom();
    private final int uid = Posix.getuid();
    /** Guarded by the lock. */
    private final Map<Long, ClientContext> contexts = new HashMap<>();
    /** Derived files by the inode of the client's end. Guarded by the lock. */
    final Map<Long, DerivedFile> derived = new HashMap<>();
    private final int listener;
    private final Thread acceptor;
    private volatile boolean closed;

    private IommufdServer(Path socketPath, long memoryBytes, PrintWriter log) {
        this.socketPath = socketPath;
        this.memory = PhysicalMemory.create(memoryBytes);
        this.log = log;
        int s = main.listenUnix(socketPath.toString(), BACKLOG);
        if (s < 0) {
            throw ErrnoException.of(Errno.of(-s), "listen on %s", socketPath);
        }
        this.listener = s;
        this.acceptor = Thread.ofPlatform().name("jiommu-accept").daemon().unstarted(this::acceptLoop);
    }

    /**
     * Starts a server on {@code socketPath} (replacing a stale socket file there).
     *
     * @param memoryBytes the size of the emulated physical memory (a multiple of 2 MiB; sparse)
     * @param log         where connection errors are reported, or null
     */
    public static IommufdServer start(Path socketPath, long memoryBytes, PrintWriter log) {
        IommufdServer server = new IommufdServer(socketPath, memoryBytes, log);
        server.acceptor.start();
        return server;
    }

    public Path socketPath() {
        return socketPath;
    }

    /** {@return how many contexts are open} */
    public int contextCount() {
        lock.lock();
        try {
            return contexts.size();
        } finally {
            lock.unlock();
        }
    }

    /** {@return how many pages of emulated memory are allocated (pinned frames, page tables)} */
    public long allocatedFrames() {
        return memory.allocatedFrames();
    }

    /** Waits until the server is closed. */
    public void join() throws InterruptedException {
        acceptor.join();
    }

    private void acceptLoop() {
        while (!closed) {
            int s = main.accept(listener);
            if (s < 0) {
                if (closed) {
                    return;
                }
                continue;
            }
            int[] cred = main.peerCredentials(s);
            if (cred == null || (cred[1] != uid && cred[1] != 0)) {
                report("refused a client: uid %s", cred == null ? "unknown" : cred[1]);
                main.close(s);
                continue;
            }
            Connection c = new Connection(s, cred[0]);
            Thread.ofPlatform().name("jiommu-client-" + cred[0]).daemon().start(c::run);
        }
    }

    void report(String format, Object... args) {
        if (log != null) {
            log.println("jiommu serve: " + String.format(format, args));
        }
    }

    @Override
    public void close() {
        closed = true;
        main.shutdown(listener);
        main.close(listener);
        main.unlink(socketPath.toString());
        try {
            acceptor.join(2000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    // ---- a context connection --------------------------------------------------------------

    /** One client socket: the opener's or an inheriting process's connection to one context. */
    private final class Connection {
        private final Posix posix = new Posix();
        private final Link link;
        private final int pid;
        private final int pidfd;
        private ClientContext ctx;
        private ClientFdTable fds;
        private dev.jiommu.abi.AbiDecoder decoder;

        Connection(int socket, int pid) {
            this.link = new Link(socket, posix);
            this.pid = pid;
            this.pidfd = posix.pidfdOpen(pid);
        }

        void run() {
            try {
                while (link.receive()) {
                    if (!serve(link.header())) {
                        break;
                    }
                }
            } catch (RuntimeException | Error e) {
                report("client pid %d: %s", pid, e);
                if (log != null) {
                    e.printStackTrace(log);
                }
            } finally {
                detach();
                link.close();
                if (pidfd >= 0) {
                    posix.close(pidfd);
                }
                posix.close();
            }
        }

        private boolean serve(MemorySegment h) {
            int op = Wire.op(h);
            if (ctx == null && op != Wire.OPEN && op != Wire.ATTACH) {
                return link.reply(-Errno.EBADF.number());
            }
            return switch (op) {
                case Wire.OPEN -> link.reply(open());
                case Wire.ATTACH -> link.reply(attach(Wire.arg(h)));
                // The header's pid is the shim's word; the connection's SO_PEERCRED pid is the kernel's.
                case Wire.IOCTL -> link.reply(ioctl(Wire.cmd(h), Wire.arg(h)));
                case Wire.MMAP -> mmap(Wire.arg(h), Wire.arg2(h));
                case Wire.MUNMAP -> {
                    locked(() -> ctx.removeMapping(Wire.arg2(h)));
                    yield link.reply(0);
                }
                case Wire.TOKEN -> link.reply(ctx.token);
                default -> false;
            };
        }

        private long open() {
            if (ctx != null) {
                return -Errno.EINVAL.number();
            }
            lock.lock();
            try {
                long token;
                do {
                    token = random.nextLong() & Long.MAX_VALUE;
                } while (token == 0 || contexts.containsKey(token));
                ClientContext c = new ClientContext(token, memory, processAccess, pid, memoryPosix);
                contexts.put(token, c);
                join(c);
                return token;
            } finally {
                lock.unlock();
            }
        }

        private long attach(long token) {
            if (ctx != null) {
                return -Errno.EINVAL.number();
            }
            lock.lock();
            try {
                ClientContext c = contexts.get(token);
                if (c == null) {
                    return -Errno.ENOENT.number();
                }
                join(c);
                return 0;
            } finally {
                lock.unlock();
            }
        }

        private void join(ClientContext c) {
            ctx = c;
            c.connections++;
            fds = new ClientFdTable(IommufdServer.this, c, link, pidfd, memoryPosix);
            decoder = new dev.jiommu.abi.AbiDecoder(c.context, c.user, fds, c.context.accounting());
        }

        private long ioctl(int cmd, long arg) {
            lock.lock();
            try {
                ctx.newCall(pid);
                for (DerivedFile f : derived.values().toArray(DerivedFile[]::new)) {
                    f.releaseIfClosed(memoryPosix);
                }
                boolean touchesMemory = movesBytes(cmd, arg);
                if (touchesMemory) {
                    ctx.syncIn();
                }
                long result = decoder.ioctl(cmd, arg);
                if (touchesMemory) {
                    ctx.syncOut();
                }
                return result;
            } finally {
                lock.unlock();
            }
        }

        /**
         * {@return whether the command moves bytes between a device and pinned memory}, so the frames
         * must be synced with the client around it. Of every command the mock platform has, only the
         * selftest's ACCESS_RW does (MD_CHECK_MAP, ACCESS_PAGES and the dirty operations compare page
         * identity or bits, never bytes); a platform whose devices DMA on other commands adds them here.
         * Reading the struct's head here also fills the read window the decoder then reads from.
         */
        private boolean movesBytes(int cmd, long arg) {
            if (IoctlNumbers.nr(cmd) != TEST_CMD_NR) {
                return false;
            }
            try {
                byte[] head = ctx.user.read(arg, 8);
                int op = (head[4] & 0xff) | (head[5] & 0xff) << 8 | (head[6] & 0xff) << 16 | (head[7] & 0xff) << 24;
                return op == TestCmdStruct.OP_ACCESS_RW;
            } catch (ErrnoException e) {
                return false; // the decoder answers EFAULT
            }
        }

        private boolean mmap(long offset, long lengthBytes) {
            byte[] bytes;
            long handle;
            lock.lock();
            try {
                Iommufd.MmioMapping m;
                try {
                    m = ctx.context.mmap(offset, lengthBytes);
                } catch (ErrnoException e) {
                    return link.reply(-e.rawErrno());
                }
                handle = ctx.addMapping(m);
                long n = Math.min(lengthBytes, Math.min(m.memory().byteSize(), Wire.MAX_PAYLOAD_BYTES));
                bytes = m.memory().asSlice(0, n).toArray(ValueLayout.JAVA_BYTE);
            } finally {
                lock.unlock();
            }
            return link.send(Wire.REPLY, 0, 0, handle, bytes, -1);
        }

        private void detach() {
            if (ctx == null) {
                return;
            }
            lock.lock();
            try {
                ctx.connections--;
                closeIfUnused(ctx);
            } finally {
                lock.unlock();
            }
        }
    }

    /**
     * Closes a context nothing names any more: no connection and no derived file (a fault queue or
     * vEVENTQ fd keeps its context alive, as the kernel's file holds a reference on its ictx). Under the lock.
     */
    void closeIfUnused(ClientContext c) {
        if (c.connections == 0 && c.derivedFiles == 0 && contexts.remove(c.token) != null) {
            c.close();
        }
    }

    void locked(Runnable r) {
        lock.lock();
        try {
            r.run();
        } finally {
            lock.unlock();
        }
    }

    /** process_vm_readv/writev through a native bounce buffer. */
    private record ProcessVm(Posix posix) implements RemoteUserMemory.ProcessAccess {
        @Override
        public synchronized long read(int pid, long va, byte[] dst, int offset, int length) {
            MemorySegment buf = posix.scratch(length);
            long n = posix.vmRead(pid, va, buf, length);
            if (n > 0) {
                MemorySegment.copy(buf, ValueLayout.JAVA_BYTE, 0, dst, offset, (int) n);
            }
            return n;
        }

        @Override
        public synchronized long write(int pid, long va, byte[] src, int offset, int length) {
            MemorySegment buf = posix.scratch(length);
            MemorySegment.copy(src, offset, buf, ValueLayout.JAVA_BYTE, 0, length);
            return posix.vmWrite(pid, va, buf, length);
        }
    }
}
