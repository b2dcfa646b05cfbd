package dev.jiommu.abi;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.mem.UserMemory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static dev.jiommu.abi.Layouts.U32;

/**
 * Bytes to typed API to bytes: runs one {@code ioctl(fd, cmd, arg)} of a caller whose memory is
 * {@code caller}, exactly as the kernel's dispatcher does (iommufd-uapi.md §1.4), and returns what
 * the syscall returns: a value ≥ 0, or −errno. Nothing escapes but a result: a bad pointer is
 * −EFAULT, every {@link ErrnoException} its errno.
 *
 * <p>One decoder per caller and thread: the kernel-side struct buffer is reused from call to call.
 */
public final class AbiDecoder {
    /** Room for the largest struct of the table. */
    private static final int BUFFER_BYTES = 256;
    private static final int TAIL_CHUNK_BYTES = 4096;

    private final IoctlTable table;
    private final UserMemory caller;
    private final MemorySegment buffer = Arena.ofAuto().allocate(BUFFER_BYTES, 8);
    private final AbiCall call;

    public AbiDecoder(Iommufd iommufd, UserMemory caller) {
        this(iommufd, caller, IoctlTable.standard());
    }

    public AbiDecoder(Iommufd iommufd, UserMemory caller, IoctlTable table) {
        this.table = table;
        this.caller = caller;
        this.call = new AbiCall(iommufd, caller);
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
            return table.vfio(cmd, arg, call);
        }
        long userSize = Integer.toUnsignedLong(readU32(arg));
        if (op == null || op.cmd() != cmd) {
            throw ErrnoException.of(Errno.ENOTTY, "ioctl 0x%x: not an iommufd command", cmd);
        }
        if (userSize < op.minSizeBytes()) {
            throw ErrnoException.of(Errno.EINVAL, "%s: size %d below the minimum %d", op.name(), userSize, op.minSizeBytes());
        }
        long kernelSize = op.sizeBytes();
        MemorySegment struct = buffer.asSlice(0, kernelSize);
        struct.fill((byte) 0);
        long copied = Math.min(userSize, kernelSize);
        MemorySegment.copy(MemorySegment.ofArray(caller.read(arg, (int) copied)), 0, struct, 0, copied);
        if (userSize > kernelSize) {
            checkZeroTail(op, arg + kernelSize, userSize - kernelSize);
        }
        call.reset(struct);
        long result;
        try {
            result = op.handler().handle(call);
        } catch (ErrnoException e) {
            if (call.responding()) {
                writeBack(arg, struct, copied);
            }
            throw e;
        }
        if (call.responding()) {
            writeBack(arg, struct, copied);
        }
        return result;
    }

    /** The part of a newer caller's struct this build does not know must be zero (E2BIG otherwise). */
    private void checkZeroTail(IoctlOp op, long at, long lengthBytes) {
        for (long done = 0; done < lengthBytes; done += TAIL_CHUNK_BYTES) {
            byte[] chunk = caller.read(at + done, (int) Math.min(TAIL_CHUNK_BYTES, lengthBytes - done));
            for (byte b : chunk) {
                if (b != 0) {
                    throw ErrnoException.of(Errno.E2BIG, "%s: %d bytes past the known struct are not zero", op.name(), lengthBytes);
                }
            }
        }
    }

    private void writeBack(long arg, MemorySegment struct, long bytes) {
        caller.write(arg, struct.asSlice(0, bytes).toArray(Layouts.U8));
    }

    private int readU32(long arg) {
        byte[] bytes = caller.read(arg, 4);
        return MemorySegment.ofArray(bytes).get(U32, 0);
    }
}
