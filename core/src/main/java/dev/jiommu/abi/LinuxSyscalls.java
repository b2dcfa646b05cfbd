package dev.jiommu.abi;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * The few libc calls the kernel backend makes, through the FFM API, each returning what the
 * syscall returns: a value ≥ 0, or −errno (errno captured right after the call, before the JVM
 * can clobber it). The same convention as {@link AbiDecoder#ioctl}, so an emulated and a real
 * ioctl read alike. {@code ioctl} and {@code open} are variadic in C, and are bound as such
 * ({@link Linker.Option#firstVariadicArg}); calling them as if they were not is undefined on
 * x86-64, where the caller must say how many vector registers carry arguments.
 */
public final class LinuxSyscalls {
    public static final int O_RDONLY = 0;
    public static final int O_RDWR = 2;
    public static final int O_CLOEXEC = 0x80000;
    public static final int PROT_READ = 1;
    public static final int PROT_WRITE = 2;
    public static final int MAP_SHARED = 1;
    public static final int MAP_PRIVATE = 2;
    public static final int MAP_ANONYMOUS = 0x20;
    public static final int MAP_HUGETLB = 0x40000;
    public static final int MAP_FIXED_NOREPLACE = 0x100000;
    public static final short POLLIN = 0x1;
    public static final short POLLOUT = 0x4;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");

    private static final MethodHandle OPEN = bind("open", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT),
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle CLOSE = bind("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle IOCTL = bind("ioctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG),
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle READ = bind("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle WRITE = bind("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle POLL = bind("poll", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
    private static final MethodHandle MMAP = bind("mmap",
            FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle MUNMAP = bind("munmap", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
    /** struct pollfd { int fd; short events; short revents; }. */
    private static final long POLLFD_BYTES = 8;
    /** mmap's MAP_FAILED. */
    private static final long MAP_FAILED = -1L;

    private LinuxSyscalls() {
    }

    private static MethodHandle bind(String name, FunctionDescriptor descriptor, Linker.Option... options) {
        Linker.Option[] all = new Linker.Option[options.length + 1];
        System.arraycopy(options, 0, all, 0, options.length);
        all[options.length] = CAPTURE_ERRNO;
        MemorySegment symbol = LIBC.find(name).orElseThrow(() -> new UnsatisfiedLinkError("libc has no " + name));
        // The call state comes first: every handle takes (MemorySegment capture, args...).
        return LINKER.downcallHandle(symbol, descriptor, all);
    }

    /** Call state of the current thread's last call; one per thread, never freed (a few bytes). */
    private static final ThreadLocal<MemorySegment> STATE = ThreadLocal.withInitial(() -> Arena.global().allocate(CAPTURE));

    private static long result(long value, MemorySegment state) {
        return value == -1 ? -(int) ERRNO.get(state, 0L) : value;
    }

    /** open(2) with O_CLOEXEC added. {@return the fd, or −errno} */
    public static int open(String path, int flags) {
        MemorySegment state = STATE.get();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment cPath = arena.allocateFrom(path);
            return (int) result((int) OPEN.invokeExact(state, cPath, flags | O_CLOEXEC, 0), state);
        } catch (Throwable t) {
            throw unexpected("open", t);
        }
    }

    /** close(2). {@return 0, or −errno} */
    public static int close(int fd) {
        MemorySegment state = STATE.get();
        try {
            return (int) result((int) CLOSE.invokeExact(state, fd), state);
        } catch (Throwable t) {
            throw unexpected("close", t);
        }
    }

    /** ioctl(2) with a pointer-or-integer argument. {@return its value (≥ 0), or −errno} */
    public static long ioctl(int fd, int cmd, long arg) {
        MemorySegment state = STATE.get();
        try {
            // The request is an unsigned long: iommufd's numbers are small, so zero-extend.
            return result((int) IOCTL.invokeExact(state, fd, Integer.toUnsignedLong(cmd), arg), state);
        } catch (Throwable t) {
            throw unexpected("ioctl", t);
        }
    }

    /** read(2) into {@code buffer}. {@return bytes read, or −errno} */
    public static long read(int fd, MemorySegment buffer) {
        MemorySegment state = STATE.get();
        try {
            return result((long) READ.invokeExact(state, fd, buffer, buffer.byteSize()), state);
        } catch (Throwable t) {
            throw unexpected("read", t);
        }
    }

    /** write(2) of {@code buffer}. {@return bytes written, or −errno} */
    public static long write(int fd, MemorySegment buffer) {
        MemorySegment state = STATE.get();
        try {
            return result((long) WRITE.invokeExact(state, fd, buffer, buffer.byteSize()), state);
        } catch (Throwable t) {
            throw unexpected("write", t);
        }
    }

    /**
     * poll(2) of one fd for {@code events}, waiting up to {@code timeoutMillis} (−1: forever).
     * {@return the revents (0 on timeout), or −errno}
     */
    public static int poll(int fd, short events, int timeoutMillis) {
        MemorySegment state = STATE.get();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pollfd = arena.allocate(POLLFD_BYTES, 4);
            pollfd.set(JAVA_INT, 0, fd);
            pollfd.set(JAVA_SHORT, 4, events);
            long n = result((int) POLL.invokeExact(state, pollfd, 1L, timeoutMillis), state);
            return n < 0 ? (int) n : Short.toUnsignedInt(pollfd.get(JAVA_SHORT, 6));
        } catch (Throwable t) {
            throw unexpected("poll", t);
        }
    }

    /**
     * mmap(2). {@return the mapping's address (user addresses are below 2^47, so never negative),
     * or −errno}
     */
    public static long mmap(long address, long lengthBytes, int prot, int flags, int fd, long offset) {
        MemorySegment state = STATE.get();
        try {
            MemorySegment at = (MemorySegment) MMAP.invokeExact(state, MemorySegment.ofAddress(address), lengthBytes, prot,
                    flags, fd, offset);
            return at.address() == MAP_FAILED ? -(int) ERRNO.get(state, 0L) : at.address();
        } catch (Throwable t) {
            throw unexpected("mmap", t);
        }
    }

    /** munmap(2) of [address, address + lengthBytes). {@return 0, or −errno} */
    public static int munmap(long address, long lengthBytes) {
        MemorySegment state = STATE.get();
        try {
            return (int) result((int) MUNMAP.invokeExact(state, MemorySegment.ofAddress(address), lengthBytes), state);
        } catch (Throwable t) {
            throw unexpected("munmap", t);
        }
    }

    private static IllegalStateException unexpected(String call, Throwable t) {
        if (t instanceof RuntimeException e) {
            throw e;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException(call + " through FFM", t);
    }

    /** {@return a segment of {@code lengthBytes} at a native address the caller owns} */
    static MemorySegment at(long address, long lengthBytes) {
        return MemorySegment.ofAddress(address).reinterpret(lengthBytes);
    }
}
