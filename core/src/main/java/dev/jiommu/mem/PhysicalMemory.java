package dev.jiommu.mem;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * Emulated physical memory: a sparse, off-heap address space whose frames are handed out at
 * deterministic synthetic addresses, read and written with bounds checks, and updated atomically
 * where hardware does (accessed and dirty bits).
 *
 * <p>An address is usable only between {@link #allocate} (or {@link #adopt}) and {@link #free};
 * any other access throws {@link BadPhysicalAddressException} (EFAULT). Memory is little-endian, as
 * every IOMMU structure is. Allocated memory reads as zero until written.
 *
 * <p>Thread safety: any thread may read, write and compare-and-set at any time without locking.
 * Allocation, freeing and adoption serialize on this object's monitor. Freeing memory that another
 * thread still accesses is the caller's bug (the emulators free nothing a walk may still read).
 */
public final class PhysicalMemory implements AutoCloseable {
    /* Implementation notes
     *
     * The address space [baseAddress, endAddress) is cut into 2 MiB chunks. A chunk's backing
     * segment is created on its first write (reads of an untouched chunk return zeros), or is a
     * 2 MiB slice of a segment the caller adopted. Two frame bitmaps: `used` says the allocator may
     * not hand the frame out; `backed` says accesses are allowed. They differ only for the tail of an
     * adopted segment's last chunk (used, not backed).
     *
     * Allocation is first-fit from the lowest address, so the same sequence of calls yields the same
     * addresses in every run. Each frame has one software word (ownerWord), as struct page has a
     * private field: the page-table code keeps a table's live-entry count there.
     */

    /** log2 of the frame size. */
    public static final int FRAME_SHIFT = 12;
    /** The frame (allocation granule) size in bytes. */
    public static final long FRAME_BYTES = 1L << FRAME_SHIFT;
    /** Where {@link #create(long)} starts the address space: low, so 32-bit table pointers reach it. */
    public static final long DEFAULT_BASE_ADDRESS = 0x20_0000L;

    static final int CHUNK_SHIFT = 21;
    static final long CHUNK_BYTES = 1L << CHUNK_SHIFT;
    private static final long CHUNK_MASK = CHUNK_BYTES - 1;
    private static final int FRAMES_PER_CHUNK = 1 << (CHUNK_SHIFT - FRAME_SHIFT);

    /** Native order: every structure is little-endian and so is every host jiommu runs on (checked below). */
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG;
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT;
    private static final VarHandle LONG_HANDLE = LONG.varHandle();
    private static final VarHandle CHUNKS = MethodHandles.arrayElementVarHandle(MemorySegment[].class);

    static {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new ExceptionInInitializerError("jiommu emulates little-endian memory on little-endian hosts only");
        }
    }

    private final long baseAddress;
    private final long endAddress;
    private final Arena arena = Arena.ofShared();
    /** Backing per chunk; null until first written. Published with release, read with acquire. */
    private final MemorySegment[] chunks;
    /** One software word per frame, per chunk, created with the chunk's first allocation. Guarded by this. */
    private final long[][] ownerWords;
    /** Chunks whose backing is a caller's segment. Guarded by this. */
    private final boolean[] adoptedChunks;
    /** Frames the allocator may not hand out. Guarded by this. */
    private final long[] used;
    /** Frames that may be accessed. Written under this, read without it. */
    private final long[] backed;
    /** No free frame lies below this frame index. Guarded by this. */
    private long firstFreeHint;
    private long allocatedFrames;
    private long residentChunks;

    private PhysicalMemory(long baseAddress, long sizeBytes) {
        if (baseAddress < 0 || (baseAddress & CHUNK_MASK) != 0) {
            throw new IllegalArgumentException("baseAddress must be a non-negative multiple of 2 MiB: 0x" + Long.toHexString(baseAddress));
        }
        if (sizeBytes <= 0 || (sizeBytes & CHUNK_MASK) != 0 || sizeBytes > (1L << 46)) {
            throw new IllegalArgumentException("sizeBytes must be a positive multiple of 2 MiB up to 64 TiB: 0x" + Long.toHexString(sizeBytes));
        }
        this.baseAddress = baseAddress;
        this.endAddress = Math.addExact(baseAddress, sizeBytes);
        long frames = sizeBytes >>> FRAME_SHIFT;
        int chunkCount = Math.toIntExact(sizeBytes >>> CHUNK_SHIFT);
        this.chunks = new MemorySegment[chunkCount];
        this.ownerWords = new long[chunkCount][];
        this.adoptedChunks = new boolean[chunkCount];
        this.used = new long[Math.toIntExact((frames + 63) >>> 6)];
        this.backed = new long[used.length];
    }

    /** {@return physical memory of {@code sizeBytes} (a multiple of 2 MiB) at {@link #DEFAULT_BASE_ADDRESS}} */
    public static PhysicalMemory create(long sizeBytes) {
        return new PhysicalMemory(DEFAULT_BASE_ADDRESS, sizeBytes);
    }

    /** {@return physical memory covering [{@code baseAddress}, {@code baseAddress + sizeBytes})} */
    public static PhysicalMemory create(long baseAddress, long sizeBytes) {
        return new PhysicalMemory(baseAddress, sizeBytes);
    }

    public long baseAddress() {
        return baseAddress;
    }

    /** {@return the first address past the address space} */
    public long endAddress() {
        return endAddress;
    }

    // ---- allocation ------------------------------------------------------------------------

    /** {@return the address of one zeroed frame} */
    public long allocateFrame() {
        return allocate(FRAME_BYTES, FRAME_BYTES);
    }

    /**
     * Allocates {@code sizeBytes} of zeroed, contiguous memory aligned to {@code alignBytes}.
     *
     * @throws ErrnoException EINVAL for a size that is not a positive multiple of the frame size or an
     *         alignment that is not a power of two; ENOMEM when no such run is free
     */
    public synchronized long allocate(long sizeBytes, long alignBytes) {
        if (sizeBytes <= 0 || (sizeBytes & (FRAME_BYTES - 1)) != 0) {
            throw ErrnoException.of(Errno.EINVAL, "allocate sizeBytes=0x%x: not a positive multiple of 0x%x", sizeBytes, FRAME_BYTES);
        }
        if (Long.bitCount(alignBytes) != 1) {
            throw ErrnoException.of(Errno.EINVAL, "allocate alignBytes=0x%x: not a power of two", alignBytes);
        }
        long frames = sizeBytes >>> FRAME_SHIFT;
        long alignFrames = Math.max(1, alignBytes >>> FRAME_SHIFT);
        long totalFrames = (endAddress - baseAddress) >>> FRAME_SHIFT;
        // Alignment is of the physical address, so align frame numbers counted from address 0.
        long baseFrame = baseAddress >>> FRAME_SHIFT;
        long candidate = alignUp(baseFrame + firstFreeHint, alignFrames) - baseFrame;
        while (candidate + frames <= totalFrames) {
            long blocker = firstUsed(candidate, frames);
            if (blocker < 0) {
                markAllocated(candidate, frames);
                if (frames == 1 || candidate == firstFreeHint) {
                    advanceHint();
                }
                long pa = baseAddress + (candidate << FRAME_SHIFT);
                zero(pa, sizeBytes);
                return pa;
            }
            candidate = alignUp(baseFrame + nextFree(blocker), alignFrames) - baseFrame;
        }
        throw ErrnoException.of(Errno.ENOMEM, "allocate sizeBytes=0x%x alignBytes=0x%x: no free run in [0x%x, 0x%x)",
                sizeBytes, alignBytes, baseAddress, endAddress);
    }

    /**
     * Returns memory from {@link #allocate} (whole allocation or any frame-aligned part of it).
     *
     * @throws ErrnoException EINVAL if any frame of the range is not allocated or is adopted memory
     */
    public synchronized void free(long pa, long sizeBytes) {
        long first = frameIndexChecked(pa, sizeBytes, "free");
        long frames = sizeBytes >>> FRAME_SHIFT;
        for (long f = first; f < first + frames; f++) {
            if (!bit(used, f) || !bit(backed, f) || adopted(f)) {
                throw ErrnoException.of(Errno.EINVAL, "free pa=0x%x sizeBytes=0x%x: frame 0x%x is not allocated memory",
                        pa, sizeBytes, baseAddress + (f << FRAME_SHIFT));
            }
        }
        for (long f = first; f < first + frames; f++) {
            clearBit(backed, f);
            clearBit(used, f);
            ownerWords[(int) (f / FRAMES_PER_CHUNK)][(int) (f % FRAMES_PER_CHUNK)] = 0;
        }
        allocatedFrames -= frames;
        firstFreeHint = Math.min(firstFreeHint, first);
    }

    /**
     * Makes a caller's segment part of physical memory, as a VMM registers guest RAM: it gets a fresh
     * 2 MiB-aligned physical range whose bytes are the segment's own.
     *
     * @return the physical address of the segment's first byte
     * @throws ErrnoException EINVAL for a segment that is empty or not a multiple of the frame size;
     *         ENOMEM when the address space has no room
     */
    public synchronized long adopt(MemorySegment segment) {
        long sizeBytes = segment.byteSize();
        if (sizeBytes == 0 || (sizeBytes & (FRAME_BYTES - 1)) != 0) {
            throw ErrnoException.of(Errno.EINVAL, "adopt byteSize=0x%x: not a positive multiple of 0x%x", sizeBytes, FRAME_BYTES);
        }
        long chunkCount = (sizeBytes + CHUNK_MASK) >>> CHUNK_SHIFT;
        long reservedBytes = chunkCount << CHUNK_SHIFT;
        long totalChunks = chunks.length;
        for (long c = 0; c + chunkCount <= totalChunks; c++) {
            boolean free = true;
            for (long k = c; k < c + chunkCount && free; k++) {
                free = chunks[(int) k] == null && firstUsed(k * FRAMES_PER_CHUNK, FRAMES_PER_CHUNK) < 0;
            }
            if (!free) {
                continue;
            }
            long firstFrame = c * FRAMES_PER_CHUNK;
            markAllocated(firstFrame, reservedBytes >>> FRAME_SHIFT);
            for (long f = firstFrame + (sizeBytes >>> FRAME_SHIFT); f < firstFrame + (reservedBytes >>> FRAME_SHIFT); f++) {
                clearBit(backed, f);
            }
            allocatedFrames -= (reservedBytes - sizeBytes) >>> FRAME_SHIFT;
            for (long k = 0; k < chunkCount; k++) {
                long offset = k << CHUNK_SHIFT;
                MemorySegment slice = segment.asSlice(offset, Math.min(CHUNK_BYTES, sizeBytes - offset));
                adoptedChunks[(int) (c + k)] = true;
                CHUNKS.setRelease(chunks, (int) (c + k), slice);
            }
            advanceHint();
            return baseAddress + (c << CHUNK_SHIFT);
        }
        throw ErrnoException.of(Errno.ENOMEM, "adopt byteSize=0x%x: no free 2 MiB-aligned range", sizeBytes);
    }

    /**
     * Gives back a range obtained from {@link #adopt}; the caller's segment is untouched.
     *
     * @throws ErrnoException EINVAL if {@code pa} is not the start of an adopted range
     */
    public synchronized void unadopt(long pa, long sizeBytes) {
        long first = frameIndexChecked(pa, sizeBytes, "unadopt");
        if ((pa & CHUNK_MASK) != 0 || !adopted(first)) {
            throw ErrnoException.of(Errno.EINVAL, "unadopt pa=0x%x: not an adopted range", pa);
        }
        long chunkCount = (sizeBytes + CHUNK_MASK) >>> CHUNK_SHIFT;
        int firstChunk = (int) (first / FRAMES_PER_CHUNK);
        for (int c = firstChunk; c < firstChunk + chunkCount; c++) {
            CHUNKS.setRelease(chunks, c, null);
            adoptedChunks[c] = false;
            long f0 = (long) c * FRAMES_PER_CHUNK;
            for (long f = f0; f < f0 + FRAMES_PER_CHUNK; f++) {
                clearBit(backed, f);
                clearBit(used, f);
            }
            ownerWords[c] = null;
        }
        allocatedFrames -= sizeBytes >>> FRAME_SHIFT;
        firstFreeHint = Math.min(firstFreeHint, first);
    }

    /** {@return whether every byte of [pa, pa + lengthBytes) may be accessed} */
    public boolean isBacked(long pa, long lengthBytes) {
        if (lengthBytes <= 0 || pa < baseAddress || pa >= endAddress || endAddress - pa < lengthBytes) {
            return false;
        }
        long first = (pa - baseAddress) >>> FRAME_SHIFT;
        long last = (pa - baseAddress + lengthBytes - 1) >>> FRAME_SHIFT;
        for (long f = first; f <= last; f++) {
            if (!bit(backed, f)) {
                return false;
            }
        }
        return true;
    }

    /** {@return the number of frames currently allocated or adopted} */
    public synchronized long allocatedFrames() {
        return allocatedFrames;
    }

    /** {@return the bytes of host memory actually backing allocator-owned chunks (the sparse footprint)} */
    public synchronized long residentBytes() {
        return residentChunks << CHUNK_SHIFT;
    }

    // ---- the owner's software word ---------------------------------------------------------

    /** {@return the software word of the frame holding {@code pa} (0 after allocation)} */
    public long ownerWord(long pa) {
        long f = frameIndex(pa, 1);
        return ownerWords[(int) (f / FRAMES_PER_CHUNK)][(int) (f % FRAMES_PER_CHUNK)];
    }

    /** Sets the software word of the frame holding {@code pa}; only its owner may, under its own lock. */
    public void ownerWord(long pa, long value) {
        long f = frameIndex(pa, 1);
        ownerWords[(int) (f / FRAMES_PER_CHUNK)][(int) (f % FRAMES_PER_CHUNK)] = value;
    }

    // ---- 64- and 32-bit access -------------------------------------------------------------

    /** {@return the naturally aligned 64-bit value at {@code pa}, read once (READ_ONCE)} */
    public long read64(long pa) {
        checkAligned(pa, 8);
        frameIndex(pa, 8);
        MemorySegment chunk = chunkForRead(pa);
        return chunk == null ? 0 : (long) LONG_HANDLE.getAcquire(chunk, pa & CHUNK_MASK);
    }

    /** Stores a naturally aligned 64-bit value at {@code pa}, visible to other threads' later reads (WRITE_ONCE). */
    public void write64(long pa, long value) {
        checkAligned(pa, 8);
        frameIndex(pa, 8);
        LONG_HANDLE.setRelease(chunkForWrite(pa), pa & CHUNK_MASK, value);
    }

    /** Atomically replaces {@code expected} by {@code value} at {@code pa}; {@return whether it did} */
    public boolean compareAndSet64(long pa, long expected, long value) {
        checkAligned(pa, 8);
        frameIndex(pa, 8);
        return LONG_HANDLE.compareAndSet(chunkForWrite(pa), pa & CHUNK_MASK, expected, value);
    }

    /** {@return the naturally aligned 32-bit value at {@code pa}} */
    public int read32(long pa) {
        checkAligned(pa, 4);
        frameIndex(pa, 4);
        MemorySegment chunk = chunkForRead(pa);
        return chunk == null ? 0 : chunk.get(INT, pa & CHUNK_MASK);
    }

    /** Stores a naturally aligned 32-bit value at {@code pa}. */
    public void write32(long pa, int value) {
        checkAligned(pa, 4);
        frameIndex(pa, 4);
        chunkForWrite(pa).set(INT, pa & CHUNK_MASK, value);
    }

    // ---- bulk access -----------------------------------------------------------------------

    /** Copies [pa, pa + lengthBytes) into {@code dst} at {@code dstOffset}. */
    public void read(long pa, MemorySegment dst, long dstOffset, long lengthBytes) {
        checkRange(pa, lengthBytes);
        long done = 0;
        while (done < lengthBytes) {
            long at = pa + done;
            long n = Math.min(lengthBytes - done, CHUNK_BYTES - (at & CHUNK_MASK));
            MemorySegment chunk = chunkForRead(at);
            if (chunk == null) {
                dst.asSlice(dstOffset + done, n).fill((byte) 0);
            } else {
                MemorySegment.copy(chunk, at & CHUNK_MASK, dst, dstOffset + done, n);
            }
            done += n;
        }
    }

    /** Copies {@code lengthBytes} of {@code src} at {@code srcOffset} to [pa, pa + lengthBytes). */
    public void write(long pa, MemorySegment src, long srcOffset, long lengthBytes) {
        checkRange(pa, lengthBytes);
        long done = 0;
        while (done < lengthBytes) {
            long at = pa + done;
            long n = Math.min(lengthBytes - done, CHUNK_BYTES - (at & CHUNK_MASK));
            MemorySegment.copy(src, srcOffset + done, chunkForWrite(at), at & CHUNK_MASK, n);
            done += n;
        }
    }

    /** {@return a new array holding [pa, pa + lengthBytes)} */
    public byte[] readBytes(long pa, int lengthBytes) {
        byte[] out = new byte[lengthBytes];
        read(pa, MemorySegment.ofArray(out), 0, lengthBytes);
        return out;
    }

    /** Writes {@code bytes} at {@code pa}. */
    public void writeBytes(long pa, byte[] bytes) {
        write(pa, MemorySegment.ofArray(bytes), 0, bytes.length);
    }

    /** Sets [pa, pa + lengthBytes) to {@code value}. */
    public void fill(long pa, long lengthBytes, byte value) {
        checkRange(pa, lengthBytes);
        long done = 0;
        while (done < lengthBytes) {
            long at = pa + done;
            long n = Math.min(lengthBytes - done, CHUNK_BYTES - (at & CHUNK_MASK));
            MemorySegment chunk = value == 0 ? chunkForRead(at) : chunkForWrite(at);
            if (chunk != null) {
                chunk.asSlice(at & CHUNK_MASK, n).fill(value);
            }
            done += n;
        }
    }

    /** Releases all host memory; any later access fails. Adopted segments stay the caller's. */
    @Override
    public void close() {
        arena.close();
    }

    // ---- internals -------------------------------------------------------------------------

    private void zero(long pa, long lengthBytes) {
        fill(pa, lengthBytes, (byte) 0);
    }

    private MemorySegment chunkForRead(long pa) {
        return (MemorySegment) CHUNKS.getAcquire(chunks, (int) ((pa - baseAddress) >>> CHUNK_SHIFT));
    }

    private MemorySegment chunkForWrite(long pa) {
        int index = (int) ((pa - baseAddress) >>> CHUNK_SHIFT);
        MemorySegment chunk = (MemorySegment) CHUNKS.getAcquire(chunks, index);
        return chunk != null ? chunk : materialize(index);
    }

    private synchronized MemorySegment materialize(int index) {
        MemorySegment chunk = chunks[index];
        if (chunk == null) {
            chunk = arena.allocate(CHUNK_BYTES, FRAME_BYTES);
            residentChunks++;
            CHUNKS.setRelease(chunks, index, chunk);
        }
        return chunk;
    }

    /** {@return the frame index of pa}, after checking that the access lies in one backed frame */
    private long frameIndex(long pa, int lengthBytes) {
        if (pa < baseAddress || pa >= endAddress) {
            throw new BadPhysicalAddressException(pa, lengthBytes, "outside the address space");
        }
        long f = (pa - baseAddress) >>> FRAME_SHIFT;
        if (!bit(backed, f)) {
            throw new BadPhysicalAddressException(pa, lengthBytes, "frame not allocated");
        }
        return f;
    }

    private void checkRange(long pa, long lengthBytes) {
        if (lengthBytes < 0 || !(lengthBytes == 0 || isBacked(pa, lengthBytes))) {
            throw new BadPhysicalAddressException(pa, lengthBytes, "range not wholly allocated");
        }
    }

    private static void checkAligned(long pa, int bytes) {
        if ((pa & (bytes - 1)) != 0) {
            throw new BadPhysicalAddressException(pa, bytes, "misaligned " + bytes * 8 + "-bit access");
        }
    }

    private long frameIndexChecked(long pa, long sizeBytes, String what) {
        if (pa < baseAddress || (pa & (FRAME_BYTES - 1)) != 0 || sizeBytes <= 0 || (sizeBytes & (FRAME_BYTES - 1)) != 0
                || endAddress - pa < sizeBytes) {
            throw ErrnoException.of(Errno.EINVAL, "%s pa=0x%x sizeBytes=0x%x: not a frame-aligned range of this memory", what, pa, sizeBytes);
        }
        return (pa - baseAddress) >>> FRAME_SHIFT;
    }

    private boolean adopted(long frame) {
        return adoptedChunks[(int) (frame / FRAMES_PER_CHUNK)];
    }

    private void markAllocated(long firstFrame, long frames) {
        for (long f = firstFrame; f < firstFrame + frames; f++) {
            setBit(used, f);
            setBit(backed, f);
            int c = (int) (f / FRAMES_PER_CHUNK);
            if (ownerWords[c] == null) {
                ownerWords[c] = new long[FRAMES_PER_CHUNK];
            }
        }
        allocatedFrames += frames;
    }

    /** {@return the first used frame in [first, first + count), or -1} */
    private long firstUsed(long first, long count) {
        long end = first + count;
        long f = first;
        while (f < end) {
            long word = used[(int) (f >>> 6)] >>> (f & 63);
            if (word != 0) {
                long hit = f + Long.numberOfTrailingZeros(word);
                return hit < end ? hit : -1;
            }
            f = (f | 63) + 1;
        }
        return -1;
    }

    /** {@return the first free frame at or after {@code from} (may be past the end)} */
    private long nextFree(long from) {
        long f = from;
        long limit = (long) used.length << 6;
        while (f < limit) {
            long word = ~used[(int) (f >>> 6)] >>> (f & 63);
            if (word != 0) {
                return f + Long.numberOfTrailingZeros(word);
            }
            f = (f | 63) + 1;
        }
        return limit;
    }

    private void advanceHint() {
        firstFreeHint = nextFree(firstFreeHint);
    }

    private static long alignUp(long value, long align) {
        return (value + align - 1) & -align;
    }

    private static boolean bit(long[] bits, long index) {
        return (bits[(int) (index >>> 6)] & (1L << index)) != 0;
    }

    private static void setBit(long[] bits, long index) {
        bits[(int) (index >>> 6)] |= 1L << index;
    }

    private static void clearBit(long[] bits, long index) {
        bits[(int) (index >>> 6)] &= ~(1L << index);
    }
}
