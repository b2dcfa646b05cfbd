package dev.jiommu.abi;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommufd.IommufdException;
import dev.jiommu.iommufd.IovaRange;
import dev.jiommu.iommufd.VfioContainer;
import dev.jiommu.mem.UserMemory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * The VFIO container ioctls iommufd answers on its own fd (the kernel's vfio_compat.c,
 * iommufd-uapi.md §7), against {@link VfioContainer}. Unlike iommufd's commands these have no size
 * word up front: three take an integer argument, and the struct ones start with {@code argsz}, which
 * only has to cover the struct's first version; they read that much whatever {@code argsz} says.
 */
final class VfioCommands {
    static final int INFO_FLAG_PGSIZES = 1;
    static final int INFO_FLAG_CAPS = 1 << 1;
    static final int CAP_IOVA_RANGE = 1;
    static final int CAP_DMA_AVAIL = 3;

    private static final int INFO_MIN_BYTES = (int) VfioIommuType1InfoStruct.MIN_SIZE_BYTES;
    private static final int INFO_BYTES = (int) VfioIommuType1InfoStruct.SIZE_BYTES;
    private static final int DMA_AVAIL_BYTES = (int) VfioIommuType1InfoDmaAvailStruct.SIZE_BYTES;
    private static final int IOVA_CAP_BYTES = (int) VfioIommuType1InfoCapIovaRangeStruct.SIZE_BYTES;
    private static final int RANGE_BYTES = VfioIommuType1InfoCapIovaRangeStruct.RANGE_BYTES;
    /** Where a capability header keeps the offset of the next one. */
    private static final int CAP_NEXT_OFFSET = 4;

    /** The caller's struct, or the capability being built, before it goes back. */
    private final MemorySegment scratch = Arena.ofAuto().allocate(64, 8);
    private final VfioIommuType1InfoStruct info = new VfioIommuType1InfoStruct();
    private final VfioIommuType1DmaMapStruct map = new VfioIommuType1DmaMapStruct();
    private final VfioIommuType1DmaUnmapStruct unmap = new VfioIommuType1DmaUnmapStruct();
    private final VfioIommuType1InfoDmaAvailStruct dmaAvail = new VfioIommuType1InfoDmaAvailStruct();
    private final VfioIommuType1InfoCapIovaRangeStruct iovaCap = new VfioIommuType1InfoCapIovaRangeStruct();

    /** {@return the ioctl's value} ENOTTY for anything but the six container ioctls iommufd knows */
    long ioctl(int cmd, long arg, AbiCall call) {
        VfioContainer vfio = call.iommufd().vfio();
        if (cmd == IoctlNumbers.VFIO_GET_API_VERSION) {
            return vfio.apiVersion();
        }
        if (cmd == IoctlNumbers.VFIO_CHECK_EXTENSION) {
            // The argument is an unsigned long: no extension number is above 2^31.
            return arg < 0 || arg > Integer.MAX_VALUE ? 0 : vfio.checkExtension((int) arg);
        }
        if (cmd == IoctlNumbers.VFIO_SET_IOMMU) {
            if (arg < 0 || arg > Integer.MAX_VALUE) {
                throw ErrnoException.of(Errno.EINVAL, "set_iommu: type 0x%x is neither TYPE1 nor TYPE1v2", arg);
            }
            vfio.setIommu((int) arg);
            return 0;
        }
        if (cmd == IoctlNumbers.VFIO_IOMMU_GET_INFO) {
            return getInfo(call.caller(), vfio, arg);
        }
        if (cmd == IoctlNumbers.VFIO_IOMMU_MAP_DMA) {
            return mapDma(call.caller(), vfio, arg);
        }
        if (cmd == IoctlNumbers.VFIO_IOMMU_UNMAP_DMA) {
            return unmapDma(call.caller(), vfio, arg);
        }
        throw ErrnoException.of(Errno.ENOTTY, "ioctl 0x%x: not a VFIO container command iommufd answers", cmd);
    }

    /** Reads {@code lengthBytes} of the caller's struct into the scratch buffer. */
    private MemorySegment readStruct(UserMemory caller, long arg, int lengthBytes) {
        MemorySegment.copy(caller.read(arg, lengthBytes), 0, scratch, Layouts.U8, 0, lengthBytes);
        return scratch;
    }

    private void writeScratch(UserMemory caller, long va, int lengthBytes) {
        caller.write(va, scratch.asSlice(0, lengthBytes).toArray(Layouts.U8));
    }

    /*
     * The fixed part goes back up to min(argsz, its size); the capabilities follow it, DMA_AVAIL then
     * IOVA_RANGE, each 8-byte aligned, each written only where argsz has room for it (IOVA_RANGE's
     * ranges one by one, its header once all fit). A header's next is written once argsz reaches the
     * start of the next capability, cap_offset only when argsz holds the whole chain, and argsz
     * always becomes the size of the whole chain. Nothing is written past argsz.
     */
    private long getInfo(UserMemory caller, VfioContainer vfio, long arg) {
        long argsz = info.wrap(readStruct(caller, arg, INFO_MIN_BYTES), 0).argszBytes();
        if (argsz < INFO_MIN_BYTES) {
            throw ErrnoException.of(Errno.EINVAL, "iommu_get_info: argsz %d below %d", argsz, INFO_MIN_BYTES);
        }
        int fixedBytes = (int) Math.min(argsz, INFO_BYTES);
        VfioContainer.Info reported = vfio.info();

        long total = INFO_BYTES;
        long dmaAvailAt = total;
        if (argsz - total >= DMA_AVAIL_BYTES) {
            dmaAvail.wrap(scratch, 0).id(CAP_DMA_AVAIL).version(1).next(0).avail(reported.dmaAvailable());
            writeScratch(caller, arg + total, DMA_AVAIL_BYTES);
        }
        total += align8(DMA_AVAIL_BYTES);

        List<IovaRange> ranges = reported.iovaRanges();
        long iovaCapAt = total;
        if (argsz > total) {
            long room = argsz - total;
            for (int i = 0; i < ranges.size(); i++) {
                if (room >= IOVA_CAP_BYTES + (long) RANGE_BYTES * (i + 1)) {
                    scratch.set(Layouts.U64, 0, ranges.get(i).start());
                    scratch.set(Layouts.U64, 8, ranges.get(i).last());
                    writeScratch(caller, arg + iovaCapAt + IOVA_CAP_BYTES + (long) RANGE_BYTES * i, RANGE_BYTES);
                }
            }
            if (room >= IOVA_CAP_BYTES + (long) RANGE_BYTES * ranges.size()) {
                scratch.fill((byte) 0);
                iovaCap.wrap(scratch, 0).id(CAP_IOVA_RANGE).version(1).next(0).nrIovas(ranges.size());
                writeScratch(caller, arg + iovaCapAt, IOVA_CAP_BYTES);
            }
        }
        if (argsz >= iovaCapAt) {
            scratch.set(Layouts.U32, 0, (int) iovaCapAt);
            writeScratch(caller, arg + dmaAvailAt + CAP_NEXT_OFFSET, Integer.BYTES);
        }
        total += align8(IOVA_CAP_BYTES + (long) RANGE_BYTES * ranges.size());

        scratch.fill((byte) 0);
        info.wrap(scratch, 0).argszBytes((int) total).flags(INFO_FLAG_PGSIZES | INFO_FLAG_CAPS).iovaPgsizes(reported.iovaPageSizes())
                .capOffset(argsz >= total ? INFO_BYTES : 0);
        writeScratch(caller, arg, fixedBytes);
        return 0;
    }

    private static long align8(long bytes) {
        return (bytes + 7) & -8L;
    }

    private long mapDma(UserMemory caller, VfioContainer vfio, long arg) {
        VfioIommuType1DmaMapStruct s = map.wrap(readStruct(caller, arg, (int) VfioIommuType1DmaMapStruct.MIN_SIZE_BYTES), 0);
        if (s.argszBytes() < VfioIommuType1DmaMapStruct.MIN_SIZE_BYTES) {
            throw ErrnoException.of(Errno.EINVAL, "map_dma: argsz %d below %d", s.argszBytes(), VfioIommuType1DmaMapStruct.MIN_SIZE_BYTES);
        }
        vfio.mapDma(s.flags(), s.vaddr(), s.iova(), s.sizeBytes());
        return 0;
    }

    /*
     * size goes back with the bytes unmapped, also when the unmap itself failed part way (the typed
     * call says so through progressBytes); a refusal before the unmap (flags, no compat IOAS, a
     * split that cannot be made) writes nothing.
     */
    private long unmapDma(UserMemory caller, VfioContainer vfio, long arg) {
        int minBytes = (int) VfioIommuType1DmaUnmapStruct.MIN_SIZE_BYTES;
        VfioIommuType1DmaUnmapStruct s = unmap.wrap(readStruct(caller, arg, minBytes), 0);
        if (s.argszBytes() < minBytes) {
            throw ErrnoException.of(Errno.EINVAL, "unmap_dma: argsz %d below %d", s.argszBytes(), minBytes);
        }
        long unmapped;
        try {
            unmapped = vfio.unmapDma(s.flags(), s.iova(), s.sizeBytes());
        } catch (IommufdException e) {
            if (e.progressBytes() >= 0) {
                s.sizeBytes(e.progressBytes());
                writeScratch(caller, arg, minBytes);
            }
            throw e;
        }
        s.sizeBytes(unmapped);
        writeScratch(caller, arg, minBytes);
        return 0;
    }
}
