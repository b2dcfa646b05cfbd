package dev.jiommu.abi;

import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommufd.IommufdContext;
import dev.jiommu.iommufd.IommufdException;
import dev.jiommu.iommufd.IommufdFile;
import dev.jiommu.iommufd.PinAccounting;
import dev.jiommu.mem.DmaBuf;
import dev.jiommu.mem.MemoryFile;
import dev.jiommu.mem.UserMemory;

import java.time.Duration;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * The typed API through the bytes of the ABI and back, for the {@code *AbiTest} twins of the
 * typed conformance tests: an {@link AbiClient} whose ioctls run in an {@link AbiDecoder} over a
 * real {@link IommufdContext}, with the caller's memory and fd table the decoder's.
 *
 * <p>Files the decoder hands out (fault queue, vEVENTQ, selftest access, selftest dma-buf) live in
 * its {@link LocalFdTable}; memfds and dma-bufs given to the typed calls are installed there once,
 * and their fd is what the struct carries. Not ioctls, so straight to the context: {@link #mmap}
 * and the multi-ID vDEVICE (no upstream ABI, docs/vdevice-multi-id.md).
 */
public final class AbiIommufd extends AbiClient {
    private final IommufdContext ctx;
    private final UserMemory caller;
    private final long scratchVa;
    private final LocalFdTable fds = new LocalFdTable();
    private final AbiDecoder decoder;
    /** Memfds and dma-bufs as the caller's fds: installed once, on first use, or as DMABUF_GET answered. */
    private final Map<Object, Integer> fdOf = new IdentityHashMap<>();

    /**
     * @param ctx          the context the decoder drives
     * @param caller       the caller's memory (the context's user memory)
     * @param scratchVa    a writable region of {@code caller} no test touches, at least two pages
     * @param scratchBytes its length
     */
    public AbiIommufd(IommufdContext ctx, UserMemory caller, long scratchVa, long scratchBytes) {
        super(scratchBytes);
        this.scratchVa = scratchVa;
        this.ctx = ctx;
        this.caller = caller;
        this.decoder = new AbiDecoder(ctx, caller, fds, ctx.accounting());
    }

    /** {@return the decoder's fd table (what a test sees as its open fds)} */
    public LocalFdTable fds() {
        return fds;
    }

    @Override
    protected long scratchVa() {
        return scratchVa;
    }

    @Override
    protected long ioctl(int cmd, long arg) {
        return decoder.ioctl(cmd, arg);
    }

    @Override
    protected void writeUser(long va, byte[] bytes) {
        caller.write(va, bytes);
    }

    @Override
    protected byte[] readUser(long va, int length) {
        return caller.read(va, length);
    }

    @Override
    protected int fdOf(Object file) {
        Integer fd = fdOf.get(file);
        if (fd == null) {
            fd = switch (file) {
                case MemoryFile f -> fds.install(f);
                case DmaBuf b -> fds.install(b);
                default -> throw new IllegalArgumentException("not a file a test passes: " + file);
            };
            fdOf.put(file, fd);
        }
        return fd;
    }

    @Override
    protected IommufdFile openedFile(int fd) {
        return new FdFile(fd, (IommufdFile) fds.lookup(fd));
    }

    @Override
    protected DmaBuf openedDmaBuf(int fd) {
        DmaBuf buf = (DmaBuf) fds.lookup(fd);
        fdOf.put(buf, fd);
        return buf;
    }

    @Override
    protected void closeFd(int fd) {
        try {
            fds.close(fd);
        } catch (ErrnoException e) {
            throw e instanceof IommufdException ie ? ie : new IommufdException(e.errno(), e.getMessage());
        }
    }

    /** The calling process is the decoder's; another process is another caller, so it gets a decoder of its own. */
    @Override
    protected long changeProcess(PinAccounting process, long arg) {
        return new AbiDecoder(ctx, caller, fds, process).ioctl(IoctlNumbers.IOAS_CHANGE_PROCESS, arg);
    }

    @Override
    protected int vdeviceAllocMulti(int viommuId, int devId, long[] virtIds) {
        return ctx.vdeviceAlloc(viommuId, devId, virtIds);
    }

    /** An mmap of the fd, not an ioctl: the context answers it. */
    @Override
    public MmioMapping mmap(long offset, long lengthBytes) {
        return ctx.mmap(offset, lengthBytes);
    }

    @Override
    public String backend() {
        return ctx.backend() + " through the ABI";
    }

    @Override
    public java.lang.foreign.MemorySegment allocateUserMemory(long lengthBytes) {
        return ctx.allocateUserMemory(lengthBytes);
    }

    @Override
    public void close() {
        ctx.close();
    }

    /**
     * A queue file as its fd: reads, writes and polls are file operations on it; closing it is
     * close(fd), once, as the typed file closes once: a second close(fd) would be EBADF, or close
     * whatever file has reused the number since.
     */
    private final class FdFile implements IommufdFile {
        private final int fd;
        private final IommufdFile file;
        private boolean closed;

        FdFile(int fd, IommufdFile file) {
            this.fd = fd;
            this.file = file;
        }

        @Override
        public int read(byte[] buffer) {
            return file.read(buffer);
        }

        @Override
        public int read(byte[] buffer, Duration timeout) throws InterruptedException {
            return file.read(buffer, timeout);
        }

        @Override
        public int write(byte[] buffer) {
            return file.write(buffer);
        }

        @Override
        public int poll() {
            return file.poll();
        }

        @Override
        public synchronized void close() {
            if (closed) {
                return;
            }
            closed = true;
            closeFd(fd);
        }
    }
}
