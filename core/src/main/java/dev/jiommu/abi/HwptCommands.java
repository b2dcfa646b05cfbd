package dev.jiommu.abi;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.iommufd.IommufdException;
import dev.jiommu.mem.UserMemory;
import dev.jiommu.pt.DirtyBitmap;

import java.lang.foreign.MemorySegment;

/**
 * The handlers of the page-table commands (the kernel's hw_pagetable.c, and device.c's
 * GET_HW_INFO): HWPT_ALLOC, GET_HW_INFO, HWPT_SET_DIRTY_TRACKING, HWPT_GET_DIRTY_BITMAP and
 * HWPT_INVALIDATE, with their user buffers: the stage-1 payload, the vendor info buffer, the dirty
 * bitmap and the invalidation array.
 */
final class HwptCommands {
    /** The kernel's bound on one invalidation entry (PAGE_SIZE). */
    static final long INVALIDATE_ENTRY_MAX_BYTES = UserMemory.PAGE_BYTES;
    /** The kernel's bound on entries per call (IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX). */
    static final long INVALIDATE_ENTRY_NUM_MAX = 1L << 19;
    /** Invalidation entries are handed to the driver in batches of at most this many bytes. */
    private static final int INVALIDATE_BATCH_BYTES = 64 << 10;
    private static final int PAGE = (int) UserMemory.PAGE_BYTES;

    private final HwptAllocStruct hwptAlloc = new HwptAllocStruct();
    private final HwInfoStruct hwInfo = new HwInfoStruct();
    private final HwptSetDirtyTrackingStruct setDirtyTracking = new HwptSetDirtyTrackingStruct();
    private final HwptGetDirtyBitmapStruct getDirtyBitmap = new HwptGetDirtyBitmapStruct();
    private final HwptInvalidateStruct invalidate = new HwptInvalidateStruct();
    /** The batch array {@link #entries} hands out, reused while batches keep their length. */
    private byte[] entryBuffer = new byte[0];
    private final byte[] zeroPage = new byte[PAGE];

    long hwptAlloc(AbiCall call) {
        HwptAllocStruct s = hwptAlloc.wrap(call.struct(), 0);
        if (s.reserved() != 0) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "hwpt_alloc: __reserved is 0x%x", s.reserved());
        }
        // Checked before the payload is read, so a NONE payload's pointer is never touched.
        if ((s.dataType() == Iommufd.HWPT_DATA_NONE) != (s.dataLenBytes() == 0)) {
            throw ErrnoException.of(Errno.EINVAL, "hwpt_alloc: data_type %d with data_len %d", s.dataType(), s.dataLenBytes());
        }
        byte[] data = UserData.read(call.caller(), s.dataUptr(), s.dataLenBytes(), "hwpt_alloc");
        int id = call.iommufd().hwptAlloc(s.flags(), s.devId(), s.ptId(), s.dataType(), data, s.faultId());
        s.outHwptId(id);
        call.respond();
        call.undoIfUnanswered(IoctlTable.DESTROY_OBJECT, id, 0);
        return 0;
    }

    /*
     * The vendor struct goes to the caller's buffer: min(data_len, what the driver has) bytes, the
     * rest of the buffer zeroed, and data_len set to what the driver has, so a caller learns the
     * size a newer driver reports.
     */
    long getHwInfo(AbiCall call) {
        HwInfoStruct s = hwInfo.wrap(call.struct(), 0);
        if ((s.reserved(0) | s.reserved(1) | s.reserved(2)) != 0) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "get_hw_info: __reserved is not zero");
        }
        Iommufd.HwInfo info = call.iommufd().getHwInfo(s.devId(), s.flags(), s.inDataType());
        byte[] data = info.data();
        long bufferBytes = s.dataLenBytes();
        int copied = (int) Math.min(bufferBytes, data.length);
        UserMemory caller = call.caller();
        if (copied > 0) {
            caller.write(s.dataUptr(), copied == data.length ? data : java.util.Arrays.copyOf(data, copied));
        }
        zeroFill(caller, s.dataUptr() + copied, bufferBytes - copied);
        s.dataLenBytes(data.length).outDataType(info.dataType()).outMaxPasidLog2(info.maxPasidLog2())
                .outCapabilities(info.capabilities());
        call.respond();
        return 0;
    }

    /** clear_user: page by page, so what precedes an unmapped page is cleared before the EFAULT. */
    private void zeroFill(UserMemory caller, long va, long lengthBytes) {
        for (long done = 0; done < lengthBytes; ) {
            long at = va + done;
            int n = (int) Math.min(lengthBytes - done, PAGE - (at & (PAGE - 1)));
            caller.write(at, n == PAGE ? zeroPage : new byte[n]);
            done += n;
        }
    }

    long setDirtyTracking(AbiCall call) {
        HwptSetDirtyTrackingStruct s = setDirtyTracking.wrap(call.struct(), 0);
        call.iommufd().hwptSetDirtyTracking(s.hwptId(), s.flags());
        return 0;
    }

    long getDirtyBitmap(AbiCall call) {
        HwptGetDirtyBitmapStruct s = getDirtyBitmap.wrap(call.struct(), 0);
        if (s.reserved() != 0) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "get_dirty_bitmap: __reserved is 0x%x", s.reserved());
        }
        DirtyBitmap bitmap = call.iommufd().hwptGetDirtyBitmap(s.hwptId(), s.flags(), s.iova(), s.lengthBytes(), s.pageSizeBytes());
        orIntoUser(call.caller(), s.data(), bitmap);
        return 0;
    }

    /*
     * The kernel sets the dirty bits in the user's bitmap (an OR: the caller zeroes it first) through
     * the pages it pins for the purpose, and only pins a page when a bit falls in it; a page it cannot
     * pin loses its bits and the call still succeeds (7.3.4 drops iova_bitmap_for_each's result).
     * Bit n is bit n % 8 of byte n / 8, whatever the buffer's alignment. The same here, one user page
     * at a time.
     */
    private static void orIntoUser(UserMemory caller, long data, DirtyBitmap bitmap) {
        long bitmapBytes = (bitmap.pages() + 7) >>> 3;
        for (long bit = bitmap.nextSetBit(0); bit >= 0; ) {
            long firstByte = bit >>> 3;
            long va = data + firstByte;
            long endByte = Math.min(bitmapBytes, firstByte + (PAGE - (va & (PAGE - 1))));
            int n = (int) (endByte - firstByte);
            try {
                byte[] bytes = caller.read(va, n);
                long word = 0;
                for (int i = 0; i < n; i++) {
                    long index = firstByte + i;
                    if (i == 0 || (index & 7) == 0) {
                        word = bitmap.word(index >>> 3);
                    }
                    bytes[i] |= (byte) (word >>> ((index & 7) << 3));
                }
                caller.write(va, bytes);
            } catch (ErrnoException unwritable) {
                // dropped, as the kernel drops the bits of a bitmap page it cannot pin
            }
            bit = bitmap.nextSetBit(endByte << 3);
        }
    }

    /*
     * entry_num goes back whatever happens: the entries handled before a failure, 0 when the call
     * failed before the driver ran. The array is read and handed over a batch at a time; an entry
     * that cannot be read ends the call with EFAULT after the entries before it were handled, as the
     * per-entry copy of iommu_copy_struct_from_user_array does.
     */
    long invalidate(AbiCall call) {
        HwptInvalidateStruct s = invalidate.wrap(call.struct(), 0);
        long entries = s.entryNum();
        long entryBytes = s.entryLenBytes();
        s.entryNum(0);
        call.respond();
        if (s.reserved() != 0) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "hwpt_invalidate: __reserved is 0x%x", s.reserved());
        }
        if (entries != 0 && (s.dataUptr() == 0 || entryBytes == 0 || entryBytes > INVALIDATE_ENTRY_MAX_BYTES
                || entries > INVALIDATE_ENTRY_NUM_MAX)) {
            throw ErrnoException.of(Errno.EINVAL, "hwpt_invalidate: %d entries of %d bytes at 0x%x", entries, entryBytes, s.dataUptr());
        }
        Iommufd iommufd = call.iommufd();
        if (entries == 0) {
            // Only the type is checked; entry_len is not bounded then, and any length past an int's is as good as its largest.
            int anyLen = (int) Math.min(entryBytes, Integer.MAX_VALUE);
            s.entryNum(iommufd.hwptInvalidate(s.hwptId(), s.dataType(), anyLen, 0, UserData.NONE));
            return 0;
        }
        int len = (int) entryBytes;
        int perBatch = Math.max(1, INVALIDATE_BATCH_BYTES / len);
        int done = 0;
        while (done < entries) {
            int n = (int) Math.min(perBatch, entries - done);
            long at = s.dataUptr() + (long) done * len;
            byte[] batch;
            ErrnoException fault = null;
            try {
                batch = entries(n * len);
                call.caller().read(at, MemorySegment.ofArray(batch), 0, n * len);
            } catch (ErrnoException e) {
                fault = e;
                n = readableEntries(call.caller(), at, n, len);
                batch = n == 0 ? UserData.NONE : call.caller().read(at, n * len);
            }
            try {
                done += iommufd.hwptInvalidate(s.hwptId(), s.dataType(), len, n, batch);
            } catch (ErrnoException e) {
                int handled = e instanceof IommufdException ie ? Math.max(0, ie.progress()) : 0;
                s.entryNum(done + handled);
                throw e;
            }
            s.entryNum(done);
            if (fault != null) {
                throw fault;
            }
        }
        return 0;
    }

    /**
     * {@return an array of exactly {@code lengthBytes} for a batch of entries}: the last one again when
     * the length repeats, as a guest's invalidations usually do (the driver copies what it keeps).
     */
    private byte[] entries(int lengthBytes) {
        if (entryBuffer.length != lengthBytes) {
            entryBuffer = new byte[lengthBytes];
        }
        return entryBuffer;
    }

    /** {@return how many whole entries from {@code at} can be read, fewer than {@code n}} */
    private static int readableEntries(UserMemory caller, long at, int n, int len) {
        for (int k = 0; k < n; k++) {
            try {
                caller.read(at + (long) k * len, len);
            } catch (ErrnoException fault) {
                return k;
            }
        }
        throw new IllegalStateException("bug: " + n + " entries at 0x" + Long.toHexString(at) + " faulted together but not one by one");
    }
}
