package dev.jiommu.abi;

import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.iommufd.PinAccounting;
import dev.jiommu.mem.UserMemory;

import java.lang.foreign.MemorySegment;

/**
 * One command in flight: the kernel-side copy of the caller's struct (already size-checked and
 * zero-extended), the typed API it runs against, and the caller: its memory (where the pointers
 * inside the struct point), its file descriptors and its pin accounting.
 *
 * <p>A handler calls {@link #respond()} when the struct must be copied back, even if it then fails
 * (IOVA_RANGES with EMSGSIZE, HWPT_INVALIDATE's entry count), or {@link #respondField} when only one
 * field goes back (OPTION's {@code val64}). When the copy back faults the call is EFAULT, and what
 * {@link #undoIfUnanswered} registered runs first: the kernel aborts an object whose ID the caller
 * never learnt.
 */
public final class AbiCall {
    /** What takes back a command's effect when its answer cannot be written: two ints say what. */
    @FunctionalInterface
    public interface Undo {
        void undo(AbiCall call, int a, int b);
    }

    private final Iommufd iommufd;
    private final UserMemory caller;
    private final FdTable fds;
    private final PinAccounting process;
    private MemorySegment struct;
    private long respondOffset;
    private long respondBytes;
    private Undo undo;
    private int undoA;
    private int undoB;

    AbiCall(Iommufd iommufd, UserMemory caller, FdTable fds, PinAccounting process) {
        this.iommufd = iommufd;
        this.caller = caller;
        this.fds = fds;
        this.process = process;
    }

    void reset(MemorySegment struct) {
        this.struct = struct;
        this.respondBytes = 0;
        this.undo = null;
    }

    public Iommufd iommufd() {
        return iommufd;
    }

    /** {@return the caller's memory: where user pointers inside the struct point} */
    public UserMemory caller() {
        return caller;
    }

    /** {@return the caller's file descriptors} */
    public FdTable fds() {
        return fds;
    }

    /** {@return the pin accounting of the calling process (IOAS_CHANGE_PROCESS moves charges to it)} */
    public PinAccounting process() {
        return process;
    }

    /** {@return the struct, {@code sizeBytes()} of the command's layout, zero past what the caller sent} */
    public MemorySegment struct() {
        return struct;
    }

    /** Copies the struct back to the caller (up to the caller's size) when the call returns. */
    public void respond() {
        respondOffset = 0;
        respondBytes = Long.MAX_VALUE;
    }

    /** Copies back only [offset, offset + lengthBytes) of the struct when the call returns. */
    public void respondField(long offset, long lengthBytes) {
        respondOffset = offset;
        respondBytes = lengthBytes;
    }

    /** Registers what to take back if the answer cannot be written (a new object, an fd, an attach). */
    public void undoIfUnanswered(Undo undo, int a, int b) {
        this.undo = undo;
        this.undoA = a;
        this.undoB = b;
    }

    boolean responding() {
        return respondBytes != 0;
    }

    long respondOffset() {
        return respondOffset;
    }

    long respondBytes() {
        return respondBytes;
    }

    void runUndo() {
        if (undo != null) {
            undo.undo(this, undoA, undoB);
        }
    }
}
