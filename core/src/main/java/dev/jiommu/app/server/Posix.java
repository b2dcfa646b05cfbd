package dev.jiommu.app.server;

import dev.jiommu.abi.LinuxSyscalls;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The Linux calls the server makes, through FFM: Unix sockets with SCM_RIGHTS and SO_PEERCRED,
 * process_vm_readv/writev, pidfd_open/pidfd_getfd, fstat, pread/pwrite (open, close, ioctl and poll are
 * the kernel backend's {@link LinuxSyscalls}). One instance per thread:
 * it owns its errno capture and scratch buffers (errno can change between calls, and a capture
 * segment shared by threads would mix them up). Results are the syscall's, or −errno.
 */
final class Posix implements AutoCloseable {
    static final int AF_UNIX = 1;
    static final int SOCK_STREAM = 1;
    static final int SOCK_CLOEXEC = 0x80000;
    static final int SOL_SOCKET = 1;
    static final int SO_PEERCRED = 17;
    static final int SCM_RIGHTS = 1;
    static final int MSG_NOSIGNAL = 0x4000;
    static final int MSG_CMSG_CLOEXEC = 0x40000000;
    static final int SHUT_RDWR = 2;
    static final int F_GETFL = 3;
    static final int O_ACCMODE = 3;
    static final int S_IFMT = 0xf000;
    static final int S_IFREG = 0x8000;
    static final int EINTR = 4;
    static final int EBADF = 9;
    static final int EPIPE = 32;
    private static final long SYS_PIDFD_OPEN = 434;
    private static final long SYS_PIDFD_GETFD = 438;
    private static final long SYS_PIDFD_SEND_SIGNAL = 424;
    /** struct stat on x86-64 and arm64 generic: st_dev, st_ino (u64 each), then mode at 24 (x86-64). */
    private static final int STAT_BYTES = 256;
    private static final long ST_INO_OFFSET = 8;
    private static final long ST_MODE_OFFSET = 24;
    private static final long ST_SIZE_OFFSET = 48;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    private static final MemoryLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = Linker.Option.captureStateLayout().varHandle(MemoryLayout.PathElement.groupElement("errno"));

    private static final MethodHandle SOCKET$MH = fn("socket", JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT);
    private static final MethodHandle BIND$MH = fn("bind", JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT);
    private static final MethodHandle CONNECT$MH = fn("connect", JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT);
    private static final MethodHandle LISTEN$MH = fn("listen", JAVA_INT, JAVA_INT, JAVA_INT);
    private static final MethodHandle ACCEPT4$MH = fn("accept4", JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT);
    private static final MethodHandle SHUTDOWN$MH = fn("shutdown", JAVA_INT, JAVA_INT, JAVA_INT);
    private static final MethodHandle SENDMSG$MH = fn("sendmsg", JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT);
    private static final MethodHandle RECVMSG$MH = fn("recvmsg", JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT);
    private static final MethodHandle GETSOCKOPT$MH = fn("getsockopt", JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS);
    private static final MethodHandle SOCKETPAIR$MH = fn("socketpair", JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS);
    private static final MethodHandle VM_READV$MH = fn("process_vm_readv", JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS, JAVA_LONG, JAVA_LONG);
    private static final MethodHandle VM_WRITEV$MH = fn("process_vm_writev", JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS, JAVA_LONG, JAVA_LONG);
    private static final MethodHandle SYSCALL3$MH = LINKER.downcallHandle(LIBC.findOrThrow("syscall"),
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG),
            Linker.Option.firstVariadicArg(1), Linker.Option.captureCallState("errno"));
    private static final MethodHandle SYSCALL4$MH = LINKER.downcallHandle(LIBC.findOrThrow("syscall"),
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG),
            Linker.Option.firstVariadicArg(1), Linker.Option.captureCallState("errno"));
    private static final MethodHandle PRLIMIT$MH = fn("prlimit", JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS);
    private static final MethodHandle FSTAT$MH = fn("fstat", JAVA_INT, JAVA_INT, ADDRESS);
    private static final MethodHandle FCNTL$MH = LINKER.downcallHandle(LIBC.findOrThrow("fcntl"),
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT),
            Linker.Option.firstVariadicArg(2), Linker.Option.captureCallState("errno"));
    private static final MethodHandle PREAD$MH = fn("pread", JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG);
    private static final MethodHandle PWRITE$MH = fn("pwrite", JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG);
    private static final MethodHandle CHMOD$MH = fn("chmod", JAVA_INT, ADDRESS, JAVA_INT);
    private static final MethodHandle UNLINK$MH = fn("unlink", JAVA_INT, ADDRESS);
    private static final MethodHandle GETUID$MH = LINKER.downcallHandle(LIBC.findOrThrow("getuid"), FunctionDescriptor.of(JAVA_INT));

    private static MethodHandle fn(String name, ValueLayout result, MemoryLayout... args) {
        return LINKER.downcallHandle(LIBC.findOrThrow(name), FunctionDescriptor.of(result, args),
                Linker.Option.captureCallState("errno"));
    }

    private final Arena arena = Arena.ofShared();
    private final MemorySegment capture = arena.allocate(CAPTURE);
    /** msghdr (56) + iovec (16) + cmsg space (24) + int[2] + ucred, laid out once. */
    private final MemorySegment msg = arena.allocate(256, 8);
    private final MemorySegment stat = arena.allocate(STAT_BYTES, 8);
    private MemorySegment scratch = arena.allocate(64 * 1024, 4096);

    /** {@return errno of the last call made through this instance} */
    int errno() {
        return (int) ERRNO.get(capture, 0L);
    }

    private long check(long r) {
        return r < 0 ? -errno() : r;
    }

    /** {@return a native buffer of at least {@code bytes}, this instance's, overwritten by the next call} */
    MemorySegment scratch(long bytes) {
        if (scratch.byteSize() < bytes) {
            scratch = arena.allocate(Math.max(bytes, scratch.byteSize() * 2), 4096);
        }
        return scratch;
    }

    static int getuid() {
        try {
            return (int) GETUID$MH.invokeExact();
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    // ---- sockets ---------------------------------------------------------------------------

    /** {@return a listening Unix stream socket at {@code path} (replacing a stale one), mode 0600, or −errno} */
    int listenUnix(String path, int backlog) {
        try (Arena local = Arena.ofConfined()) {
            byte[] name = path.getBytes(StandardCharsets.UTF_8);
            if (name.length >= 108) {
                return -36; // ENAMETOOLONG
            }
            MemorySegment cpath = local.allocateFrom(path);
            int unused = (int) UNLINK$MH.invokeExact(capture, cpath);
            int s = (int) check((int) SOCKET$MH.invokeExact(capture, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
            if (s < 0) {
                return s;
            }
            MemorySegment addr = local.allocate(110);
            addr.set(ValueLayout.JAVA_SHORT, 0, (short) AF_UNIX);
            MemorySegment.copy(name, 0, addr, ValueLayout.JAVA_BYTE, 2, name.length);
            // Tighten the umask-free way: bind, then chmod before listen lets anyone connect.
            long r = check((int) BIND$MH.invokeExact(capture, s, addr, 2 + name.length + 1));
            if (r == 0) {
                r = check((int) CHMOD$MH.invokeExact(capture, cpath, 0600));
            }
            if (r == 0) {
                r = check((int) LISTEN$MH.invokeExact(capture, s, backlog));
            }
            if (r < 0) {
                close(s);
                return (int) r;
            }
            return s;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** {@return a Unix stream socket connected to {@code path}, or −errno} */
    int connectUnix(String path) {
        try (Arena local = Arena.ofConfined()) {
            byte[] name = path.getBytes(StandardCharsets.UTF_8);
            int s = (int) check((int) SOCKET$MH.invokeExact(capture, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
            if (s < 0) {
                return s;
            }
            MemorySegment addr = local.allocate(110);
            addr.set(ValueLayout.JAVA_SHORT, 0, (short) AF_UNIX);
            MemorySegment.copy(name, 0, addr, ValueLayout.JAVA_BYTE, 2, name.length);
            int r = (int) check((int) CONNECT$MH.invokeExact(capture, s, addr, 2 + name.length + 1));
            if (r < 0) {
                close(s);
                return r;
            }
            return s;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    void unlink(String path) {
        try (Arena local = Arena.ofConfined()) {
            int unused = (int) UNLINK$MH.invokeExact(capture, local.allocateFrom(path));
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    int accept(int listener) {
        try {
            return (int) check((int) ACCEPT4$MH.invokeExact(capture, listener, MemorySegment.NULL, MemorySegment.NULL, SOCK_CLOEXEC));
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** {@return {pid, uid, gid} of the peer, or null} */
    int[] peerCredentials(int socket) {
        try {
            MemorySegment cred = msg.asSlice(200, 12);
            MemorySegment len = msg.asSlice(216, 4);
            len.set(JAVA_INT, 0, 12);
            int r = (int) GETSOCKOPT$MH.invokeExact(capture, socket, SOL_SOCKET, SO_PEERCRED, cred, len);
            if (r != 0) {
                return null;
            }
            return new int[] {cred.get(JAVA_INT, 0), cred.get(JAVA_INT, 4), cred.get(JAVA_INT, 8)};
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** {@return two connected stream sockets (close-on-exec), or null with {@link #errno()} set} */
    int[] socketPair() {
        try {
            MemorySegment fds = msg.asSlice(224, 8);
            int r = (int) SOCKETPAIR$MH.invokeExact(capture, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds);
            return r != 0 ? null : new int[] {fds.get(JAVA_INT, 0), fds.get(JAVA_INT, 4)};
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** close(2), the kernel backend's binding. {@return 0, or −errno} */
    int close(int fd) {
        return LinuxSyscalls.close(fd);
    }

    void shutdown(int fd) {
        try {
            int unused = (int) SHUTDOWN$MH.invokeExact(capture, fd, SHUT_RDWR);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /**
     * Sends [from, from + length) of {@code data} whole, the first byte carrying {@code fd} when
     * it is ≥ 0. {@return 0, or −errno}
     */
    int send(int socket, MemorySegment data, long length, int fd) {
        long done = 0;
        while (done < length) {
            long r = sendmsg(socket, data.asSlice(done, length - done), done == 0 ? fd : -1);
            if (r == -EINTR) {
                continue;
            }
            if (r < 0) {
                return (int) r;
            }
            done += r;
        }
        return 0;
    }

    private long sendmsg(int socket, MemorySegment data, int fd) {
        try {
            MemorySegment hdr = msg.asSlice(0, 56);
            MemorySegment iov = msg.asSlice(56, 16);
            MemorySegment cmsg = msg.asSlice(72, 24);
            hdr.fill((byte) 0);
            iov.set(ADDRESS, 0, data);
            iov.set(JAVA_LONG, 8, data.byteSize());
            hdr.set(ADDRESS, 16, iov);           // msg_iov
            hdr.set(JAVA_LONG, 24, 1);           // msg_iovlen
            if (fd >= 0) {
                cmsg.set(JAVA_LONG, 0, 20);      // cmsg_len = CMSG_LEN(sizeof(int))
                cmsg.set(JAVA_INT, 8, SOL_SOCKET);
                cmsg.set(JAVA_INT, 12, SCM_RIGHTS);
                cmsg.set(JAVA_INT, 16, fd);
                hdr.set(ADDRESS, 32, cmsg);      // msg_control
                hdr.set(JAVA_LONG, 40, 24);      // msg_controllen = CMSG_SPACE(sizeof(int))
            }
            return check((long) SENDMSG$MH.invokeExact(capture, socket, hdr, MSG_NOSIGNAL));
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /**
     * Receives exactly {@code length} bytes into {@code data}. {@return the fd that rode on them
     * (or −1 when none), or {@link Integer#MIN_VALUE} at end of stream, or −errno − 1 on error}
     */
    int receive(int socket, MemorySegment data, long length) {
        long done = 0;
        int fd = -1;
        try {
            while (done < length) {
                MemorySegment hdr = msg.asSlice(0, 56);
                MemorySegment iov = msg.asSlice(56, 16);
                MemorySegment cmsg = msg.asSlice(72, 24);
                hdr.fill((byte) 0);
                cmsg.fill((byte) 0);
                iov.set(ADDRESS, 0, data.asSlice(done));
                iov.set(JAVA_LONG, 8, length - done);
                hdr.set(ADDRESS, 16, iov);
                hdr.set(JAVA_LONG, 24, 1);
                hdr.set(ADDRESS, 32, cmsg);
                hdr.set(JAVA_LONG, 40, 24);
                long r = check((long) RECVMSG$MH.invokeExact(capture, socket, hdr, MSG_CMSG_CLOEXEC));
                if (r == -EINTR) {
                    continue;
                }
                if (r < 0) {
                    return (int) r - 1;
                }
                if (r == 0) {
                    return Integer.MIN_VALUE;
                }
                if (hdr.get(JAVA_LONG, 40) >= 20 && cmsg.get(JAVA_INT, 8) == SOL_SOCKET && cmsg.get(JAVA_INT, 12) == SCM_RIGHTS) {
                    fd = cmsg.get(JAVA_INT, 16);
                }
                done += r;
            }
            return fd;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    static final short POLLHUP = 0x10;
    static final short POLLRDHUP = 0x2000;

    static final short POLLIN = 0x1;

    /** {@return whether the peer of {@code socket} has closed (poll without waiting)} */
    boolean peerClosed(int socket) {
        int revents = poll(socket, POLLRDHUP, 0);
        return revents > 0 && (revents & (POLLHUP | POLLRDHUP)) != 0;
    }

    /** {@return poll's revents for one fd (0 on timeout), or −errno} */
    int poll(int fd, short events, int timeoutMs) {
        return LinuxSyscalls.poll(fd, events, timeoutMs);
    }

    // ---- other processes -------------------------------------------------------------------

    /** process_vm_readv of [va, va + length) of {@code pid} into {@code dst}. {@return bytes, or −errno} */
    long vmRead(int pid, long va, MemorySegment dst, long length) {
        return vm(VM_READV$MH, pid, va, dst, length);
    }

    long vmWrite(int pid, long va, MemorySegment src, long length) {
        return vm(VM_WRITEV$MH, pid, va, src, length);
    }

    private long vm(MethodHandle call, int pid, long va, MemorySegment local, long length) {
        try {
            MemorySegment iovs = msg.asSlice(96, 32);
            iovs.set(ADDRESS, 0, local);
            iovs.set(JAVA_LONG, 8, length);
            iovs.set(JAVA_LONG, 16, va);
            iovs.set(JAVA_LONG, 24, length);
            return check((long) call.invokeExact(capture, pid, iovs, 1L, iovs.asSlice(16), 1L, 0L));
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** {@return a pidfd for {@code pid}, or −errno} */
    int pidfdOpen(int pid) {
        try {
            return (int) check((long) SYSCALL3$MH.invokeExact(capture, SYS_PIDFD_OPEN, (long) pid, 0L, 0L));
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    private static final long SYS_CAPGET = 125;
    private static final int CAP_VERSION_3 = 0x20080522;
    private static final int RLIMIT_MEMLOCK = 8;

    /** {@return the effective capability set of {@code pid} (bits 0 to 63), or −1} */
    long effectiveCapabilities(int pid) {
        try {
            MemorySegment hdr = msg.asSlice(160, 8);
            MemorySegment data = msg.asSlice(168, 24);
            hdr.set(JAVA_INT, 0, CAP_VERSION_3);
            hdr.set(JAVA_INT, 4, pid);
            long r = (long) SYSCALL3$MH.invokeExact(capture, SYS_CAPGET, hdr.address(), data.address(), 0L);
            if (r != 0) {
                return -1;
            }
            return Integer.toUnsignedLong(data.get(JAVA_INT, 0)) | Integer.toUnsignedLong(data.get(JAVA_INT, 12)) << 32;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** {@return RLIMIT_MEMLOCK (soft) of {@code pid} in bytes, {@link Long#MAX_VALUE} when unlimited, or −1} */
    long memlockLimit(int pid) {
        try {
            MemorySegment old = msg.asSlice(192, 16);
            int r = (int) PRLIMIT$MH.invokeExact(capture, pid, RLIMIT_MEMLOCK, MemorySegment.NULL, old);
            if (r != 0) {
                return -1;
            }
            long cur = old.get(JAVA_LONG, 0);
            return cur == -1L ? Long.MAX_VALUE : cur;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** {@return whether the process behind {@code pidfd} is still running (signal 0 through the pidfd)} */
    boolean pidfdAlive(int pidfd) {
        try {
            return (long) SYSCALL4$MH.invokeExact(capture, SYS_PIDFD_SEND_SIGNAL, (long) pidfd, 0L, 0L, 0L) == 0;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** {@return a duplicate, in this process, of fd {@code fd} of the process behind {@code pidfd}, or −errno} */
    int pidfdGetfd(int pidfd, int fd) {
        try {
            return (int) check((long) SYSCALL3$MH.invokeExact(capture, SYS_PIDFD_GETFD, (long) pidfd, (long) fd, 0L));
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** What fstat says of an fd. */
    record Stat(long inode, int mode, long sizeBytes) {
        boolean regular() {
            return (mode & S_IFMT) == S_IFREG;
        }
    }

    /** {@return fstat of {@code fd}, or null} */
    Stat fstat(int fd) {
        try {
            int r = (int) FSTAT$MH.invokeExact(capture, fd, stat);
            return r != 0 ? null : new Stat(stat.get(JAVA_LONG, ST_INO_OFFSET), stat.get(JAVA_INT, ST_MODE_OFFSET), stat.get(JAVA_LONG, ST_SIZE_OFFSET));
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** {@return the fd's access mode (O_RDONLY 0, O_WRONLY 1, O_RDWR 2), or −errno} */
    int accessMode(int fd) {
        try {
            int r = (int) check((int) FCNTL$MH.invokeExact(capture, fd, F_GETFL, 0));
            return r < 0 ? r : r & O_ACCMODE;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** {@return open(path, O_RDONLY | O_CLOEXEC), or −errno} */
    int openReadOnly(String path) {
        return LinuxSyscalls.open(path, LinuxSyscalls.O_RDONLY);
    }

    /** {@return ioctl(fd, request, arg), or −errno} */
    int ioctl(int fd, long request, MemorySegment arg) {
        return (int) LinuxSyscalls.ioctl(fd, (int) request, arg.address());
    }

    long pread(int fd, MemorySegment dst, long length, long offset) {
        try {
            return check((long) PREAD$MH.invokeExact(capture, fd, dst, length, offset));
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    long pwrite(int fd, MemorySegment src, long length, long offset) {
        try {
            return check((long) PWRITE$MH.invokeExact(capture, fd, src, length, offset));
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    @Override
    public void close() {
        arena.close();
    }
}
