package dev.jiommu.abi;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.iommufd.IommufdContext;
import dev.jiommu.iommufd.PinAccounting;
import dev.jiommu.mem.UserMemory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Bytes to typed API to bytes: runs one {@code ioctl(fd, cmd, arg)} of a caller whose memory is
 * {@code caller}, exactly as the kernel's dispatcher does (iommufd-uapi.md §1.4), and returns what
 * the syscall returns: a value ≥ 0, or −errno. Nothing escapes but a result: a bad pointer is
 * −EFAULT, every {@link ErrnoException} its errno. Numbers outside iommufd's range go to the VFIO
 * container ioctls of the same fd (§7).
 *
 * <p>The decoder stands for one caller: its memory, its file descriptors (commands that hand out a
 * file install it there, IOAS_MAP_FILE and the selftest's fd arguments look fds up there) and its
 * process's pin accounting (what IOAS_CHANGE_PROCESS calls "the calling process"). One decoder per
 * caller and thread: the kernel-side struct buffer and the table's flyweights are reused from call
 * to call.
 */
public final class AbiDecoder {
    /** Room for the largest struct of the table. */
    private static final int BUFFER_BYTES = 256;
    private static final int TAIL_CHUNK_BYTES = (int) UserMemory.PAGE_BYTES;

    private final IoctlTable table;
    private final UserMemory caller;
    private final MemorySegment buffer = Arena.ofAuto().allocate(BUFFER_BYTES, 8);
    /** Where the leading {@code u32 size} is read, before the struct's length is known. */
    private final MemorySegment sizeField = Arena.ofAuto().allocate(Integer.BYTES, Integer.BYTES);
    /** buffer's slices by length, made once. */
    private final MemorySegment[] slices = new MemorySegment[BUFFER_BYTES + 1];
    private final AbiCall call;

    /**
     * A decoder for an in-JVM caller: a fresh {@link LocalFdTable}, and as the calling process the
     * context's own pin accounting when {@code iommufd} is an {@link IommufdContext} (so
     * IOAS_CHANGE_PROCESS keeps the charges where they are), a new unlimited one otherwise.
     */
    public AbiDecoder(Iommufd iommufd, UserMemory caller) {
        this(iommufd, caller, new LocalFdTable(), iommufd instanceof IommufdContext context
                ? context.accounting() : new PinAccounting(IommufdContext.UNLIMITED));
    }

    /**
     * @param fds           the caller's file descriptors
     * @param callerProcess the pin accounting of the caller's process, fixed for the decoder's life
     */
    public AbiDecoder(Iommufd iommufd, UserMemory caller, FdTable fds, PinAccounting callerProcess) {
        this(iommufd, caller, fds, callerProcess, IoctlTable.standard());
    }

    public AbiDecoder(Iommufd iommufd, UserMemory caller, FdTable fds, PinAccounting callerProcess, IoctlTable table) {
        this.table = table;
        this.caller = caller;
        this.call = new AbiCall(iommufd, caller, fds, callerProcess);
    }

    /** {@return the syscall's result for {@code ioctl(fd, cmd, arg)}: ≥ 0, or −errno} */
    public long ioctl(int cmd, long arg) {
        try {
            return dispatch(cmd, arg);
        } catch (ErrnoException e) {
            return -e.rawErrno();
        }
    }

    private long dispatch(int cmd, long arg) {
        int nr = IoctlNumbers.nr(cmd);
        IoctlOp op = table.lookup(nr);
        if (op == null && !table.isIommufdNumber(nr)) {
            call.reset(null);
            return table.vfio(cmd, arg, call);
        }
        long userSize = Integer.toUnsignedLong(readU32(arg));
        if (op == null || op.cmd() != cmd) {
            throw ErrnoException.of(Errno.ENOTTY, "ioctl 0x%x: not an iommufd command", cmd);
        }
        if (userSize < op.minSizeBytes()) {
            throw ErrnoException.of(Errno.EINVAL, "%s: size %d below the minimum %d", op.name(), userSize, op.minSizeBytes());
        }
        int kernelSize = (int) op.sizeBytes();
        MemorySegment struct = slice(kernelSize);
        struct.fill((byte) 0);
        int copied = (int) Math.min(userSize, kernelSize);
        caller.read(arg, struct, 0, copied);
        if (userSize > kernelSize) {
            checkZeroTail(op, arg + kernelSize, userSize - kernelSize);
        }
        call.reset(struct);
        long result;
        try {
            result = op.handler().handle(call);
        } catch (ErrnoException e) {
            if (call.responding()) {
                writeBack(arg, struct, copied); // a fault here makes the call EFAULT instead
            }
            throw e;
        }
        if (call.responding()) {
            try {
                writeBack(arg, struct, copied);
            } catch (ErrnoException fault) {
                undo();
                throw fault;
            }
        }
        return result;
    }

    /** The kernel aborts what the caller was never told about; a failure of that is not the caller's concern. */
    private void undo() {
        try {
            call.runUndo();
        } catch (ErrnoException ignored) {
            // the object went some other way already (the caller closed the fd, destroyed the ID)
        }
    }

    private MemorySegment slice(int length) {
        MemorySegment slice = slices[length];
        if (slice == null) {
            slice = buffer.asSlice(0, length);
            slices[length] = slice;
        }
        return slice;
    }

    /** The part of a newer caller's struct this build does not know must be zero (E2BIG otherwise). */
    private void checkZeroTail(IoctlOp op, long at, long lengthBytes) {
        // Page by page, so a non-zero byte before an unmapped page is E2BIG, as the kernel's word-wise scan finds it.
        for (long done = 0; done < lengthBytes; ) {
            long from = at + done;
            int n = (int) Math.min(lengthBytes - done, TAIL_CHUNK_BYTES - (from & (TAIL_CHUNK_BYTES - 1)));
            byte[] chunk = caller.read(from, n);
            done += n;
            for (byte b : chunk) {
                if (b != 0) {
                    throw ErrnoException.of(Errno.E2BIG, "%s: %d bytes past the known struct are not zero", op.name(), lengthBytes);
                }
            }
        }
    }

    /** Copies back what the handler answered, never past the caller's size. */
    private void writeBack(long arg, MemorySegment struct, int copied) {
        long from = call.respondOffset();
        long to = Math.min(copied, from + Math.min(call.respondBytes(), copied));
        if (from < to) {
            caller.write(arg + from, struct, from, (int) (to - from));
        }
    }

    private int readU32(long arg) {
        caller.read(arg, sizeField, 0, Integer.BYTES);
        return sizeField.get(Layouts.U32, 0);
    }
}
