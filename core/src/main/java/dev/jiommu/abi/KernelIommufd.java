package dev.jiommu.abi;

import dev.jiommu.errno.Errno;
import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.iommufd.IommufdException;
import dev.jiommu.iommufd.IommufdFile;
import dev.jiommu.iommufd.IommufdProvider;
import dev.jiommu.iommufd.PinAccounting;
import dev.jiommu.mem.DmaBuf;
import dev.jiommu.mem.MemoryFile;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The typed API over the real kernel: an open {@code /dev/iommu}, every call the uAPI struct in
 * native memory and a real {@code ioctl(2)} through the FFM API ({@link LinuxSyscalls}). User
 * addresses are this process's own: map {@link MemorySegment#address()} of native memory that stays
 * mapped while the kernel holds it.
 *
 * <p>Where the emulated backend takes Java objects for files, the kernel needs file descriptors:
 * {@link #ioasMapFile(int, int, int, long, long, long)} maps a memfd or dma-buf by fd, and the
 * overloads taking an emulated {@link MemoryFile} or {@link DmaBuf} are EOPNOTSUPP, as are the
 * selftest's dma-buf (a real dma-buf fd is not an emulated {@link DmaBuf}) and the multi-ID vDEVICE
 * (no upstream ABI). IOAS_CHANGE_PROCESS charges this process, whatever accounting the call names:
 * in the kernel the calling process is the one that takes over. Devices are bound through their
 * VFIO cdev ({@link VfioCdev}).
 *
 * <p>Calls may come from several threads: each thread builds its structs in a scratch region of its
 * own. {@link #close()} closes the fd, which destroys every object, as closing {@code /dev/iommu}
 * does.
 */
public final class KernelIommufd extends AbiClient {
    /** Where the kernel's iommufd lives. */
    public static final String DEV_IOMMU = "/dev/iommu";
    private static final long SCRATCH_BYTES = 64 * 1024;

    private final int fd;
    private final String path;
    private final ThreadLocal<MemorySegment> scratch = ThreadLocal.withInitial(
            () -> Arena.ofAuto().allocate(SCRATCH_BYTES, PAYLOAD_OFFSET));
    private volatile boolean closed;
    /** Memory handed out by {@link #allocateUserMemory}, freed after the fd is closed (when the kernel has unpinned it). */
    private final List<Arena> userMemory = new ArrayList<>();

    private KernelIommufd(int fd, String path) {
        super(SCRATCH_BYTES);
        this.fd = fd;
        this.path = path;
    }

    /** Opens {@link #DEV_IOMMU}. @throws IommufdException with open(2)'s errno (ENOENT where there is no iommufd) */
    public static KernelIommufd open() {
        return open(DEV_IOMMU);
    }

    /** Opens the iommufd at {@code path}. @throws IommufdException with open(2)'s errno */
    public static KernelIommufd open(String path) {
        int fd = LinuxSyscalls.open(path, LinuxSyscalls.O_RDWR);
        if (fd < 0) {
            throw failure(-fd, "open(%s)", path);
        }
        return new KernelIommufd(fd, path);
    }

    /** {@return the fd of the open iommufd (VFIO_DEVICE_BIND_IOMMUFD names it)} */
    public int fd() {
        return fd;
    }

    @Override
    public String toString() {
        return "KernelIommufd[" + path + ", fd " + fd + "]";
    }

    static IommufdException failure(int errno, String format, Object... args) {
        String call = String.format(Locale.ROOT, format, args);
        return new IommufdException(Errno.of(errno), call + " returned -" + errno);
    }

    // ---- the transport ----------------------------------------------------------------------------------

    @Override
    protected long scratchVa() {
        return scratch.get().address();
    }

    @Override
    protected long ioctl(int cmd, long arg) {
        if (closed) {
            return -Errno.EBADF.number();
        }
        return LinuxSyscalls.ioctl(fd, cmd, arg);
    }

    @Override
    protected void writeUser(long va, byte[] bytes) {
        MemorySegment.copy(bytes, 0, LinuxSyscalls.at(va, bytes.length), ValueLayout.JAVA_BYTE, 0, bytes.length);
    }

    @Override
    protected byte[] readUser(long va, int length) {
        return LinuxSyscalls.at(va, length).toArray(ValueLayout.JAVA_BYTE);
    }

    @Override
    protected int fdOf(Object file) {
        throw IommufdException.of(Errno.EOPNOTSUPP, "the kernel backend maps files by fd (ioasMapFile with an int fd), not %s",
                file.getClass().getSimpleName());
    }

    @Override
    protected IommufdFile openedFile(int fileFd) {
        return new KernelFile(fileFd);
    }

    /** A real dma-buf is an fd, not an emulated buffer: the fd is closed again and the call refused. */
    @Override
    protected DmaBuf openedDmaBuf(int bufFd) {
        LinuxSyscalls.close(bufFd);
        throw IommufdException.of(Errno.EOPNOTSUPP, "the kernel backend has no emulated DmaBuf for dma-buf fd %d", bufFd);
    }

    @Override
    protected void closeFd(int fileFd) {
        int rc = LinuxSyscalls.close(fileFd);
        if (rc < 0) {
            throw failure(-rc, "close(%d)", fileFd);
        }
    }

    @Override
    protected long changeProcess(PinAccounting process, long arg) {
        return ioctl(IoctlNumbers.IOAS_CHANGE_PROCESS, arg);
    }

    @Override
    protected int vdeviceAllocMulti(int viommuId, int devId, long[] virtIds) {
        throw IommufdException.of(Errno.EOPNOTSUPP, "the kernel has no vDEVICE with %d virtual IDs (docs/vdevice-multi-id.md)",
                virtIds.length);
    }

    /** mmap(2) of the iommufd (a driver's MMIO window); closing the mapping is the munmap. */
    @Override
    public MmioMapping mmap(long offset, long lengthBytes) {
        long at = LinuxSyscalls.mmap(0, lengthBytes, LinuxSyscalls.PROT_READ | LinuxSyscalls.PROT_WRITE,
                LinuxSyscalls.MAP_SHARED, fd, offset);
        if (at < 0) {
            throw failure((int) -at, "mmap(iommufd, offset 0x%x, length 0x%x)", offset, lengthBytes);
        }
        return new MmioMapping(offset, LinuxSyscalls.at(at, lengthBytes), () -> LinuxSyscalls.munmap(at, lengthBytes));
    }

    @Override
    public String backend() {
        return "kernel " + path;
    }

    @Override
    public synchronized MemorySegment allocateUserMemory(long lengthBytes) {
        if (closed) {
            throw IommufdException.of(Errno.EBADF, "allocateUserMemory: %s is closed", path);
        }
        if (lengthBytes <= 0) {
            throw IommufdException.of(Errno.EINVAL, "allocateUserMemory: length %d", lengthBytes);
        }
        Arena arena = Arena.ofShared();
        userMemory.add(arena);
        return arena.allocate((lengthBytes + PAYLOAD_OFFSET - 1) & -PAYLOAD_OFFSET, PAYLOAD_OFFSET);
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            LinuxSyscalls.close(fd);
            userMemory.forEach(Arena::close);
            userMemory.clear();
        }
    }

    /** The kernel backend for {@link dev.jiommu.iommufd.Iommufd#open()}: first choice wherever /dev/iommu opens. */
    public static final class Provider implements IommufdProvider {
        @Override
        public String name() {
            return "kernel " + DEV_IOMMU;
        }

        @Override
        public int priority() {
            return 100;
        }

        @Override
        public Iommufd open() {
            return KernelIommufd.open();
        }
    }

    /**
     * A fault queue or vEVENTQ fd: the kernel's read, write and poll. The kernel's reads of these
     * queues never wait (an empty queue reads 0 bytes), which is the typed read; the timed read
     * polls first.
     */
    private static final class KernelFile implements IommufdFile {
        private final int fd;
        private boolean closed;

        KernelFile(int fd) {
            this.fd = fd;
        }

        @Override
        public int read(byte[] buffer) {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment staging = arena.allocate(Math.max(1, buffer.length));
                long n = LinuxSyscalls.read(fd, staging.asSlice(0, buffer.length));
                if (n < 0) {
                    throw failure((int) -n, "read(fd %d, %d bytes)", fd, buffer.length);
                }
                MemorySegment.copy(staging, ValueLayout.JAVA_BYTE, 0, buffer, 0, (int) n);
                return (int) n;
            }
        }

        @Override
        public int read(byte[] buffer, Duration timeout) {
            int ready = LinuxSyscalls.poll(fd, LinuxSyscalls.POLLIN, (int) Math.min(Integer.MAX_VALUE, Math.max(0, timeout.toMillis())));
            if (ready < 0) {
                throw failure(-ready, "poll(fd %d)", fd);
            }
            return (ready & LinuxSyscalls.POLLIN) == 0 ? 0 : read(buffer);
        }

        @Override
        public int write(byte[] buffer) {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment staging = arena.allocate(Math.max(1, buffer.length));
                MemorySegment.copy(buffer, 0, staging, ValueLayout.JAVA_BYTE, 0, buffer.length);
                long n = LinuxSyscalls.write(fd, staging.asSlice(0, buffer.length));
                if (n < 0) {
                    throw failure((int) -n, "write(fd %d, %d bytes)", fd, buffer.length);
                }
                return (int) n;
            }
        }

        @Override
        public int poll() {
            // poll(2) reports only the events asked for: ask for every bit the typed poll knows.
            int ready = LinuxSyscalls.poll(fd, (short) (IommufdFile.POLLIN | IommufdFile.POLLRDNORM | IommufdFile.POLLOUT), 0);
            if (ready < 0) {
                throw failure(-ready, "poll(fd %d)", fd);
            }
            return ready;
        }

        @Override
        public synchronized void close() {
            if (!closed) {
                closed = true;
                LinuxSyscalls.close(fd);
            }
        }
    }
}
