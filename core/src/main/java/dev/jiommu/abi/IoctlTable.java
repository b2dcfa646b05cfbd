package dev.jiommu.abi;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.iommufd.IovaRange;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

import static dev.jiommu.abi.IoctlOp.op;

/**
 * The iommufd command table (iommufd-uapi.md §1.3) as rows of data, indexed by command number.
 * Handlers decode their struct, call the typed API and encode the answer; the flyweights they use
 * are this table's own (one table per decoder, like the decoder's buffer).
 */
public final class IoctlTable {
    /** Commands 0x80 … 0xa0: the table's span (the selftest command is compiled in). */
    private static final int SPAN = 0x21;

    private final IoctlOp[] ops = new IoctlOp[SPAN];
    private final DestroyStruct destroy = new DestroyStruct();
    private final IoasAllocStruct ioasAlloc = new IoasAllocStruct();
    private final IoasMapStruct ioasMap = new IoasMapStruct();
    private final IoasUnmapStruct ioasUnmap = new IoasUnmapStruct();
    private final IoasIovaRangesStruct iovaRanges = new IoasIovaRangesStruct();

    /** {@return the table of every command this build knows} */
    public static IoctlTable standard() {
        return new IoctlTable();
    }

    private IoctlTable() {
        add(op("IOMMU_DESTROY", IoctlNumbers.DESTROY, DestroyStruct.LAYOUT, "id", this::destroy));
        add(op("IOMMU_IOAS_ALLOC", IoctlNumbers.IOAS_ALLOC, IoasAllocStruct.LAYOUT, "out_ioas_id", this::ioasAlloc));
        add(op("IOMMU_IOAS_IOVA_RANGES", IoctlNumbers.IOAS_IOVA_RANGES, IoasIovaRangesStruct.LAYOUT, "out_iova_alignment", this::iovaRanges));
        add(op("IOMMU_IOAS_MAP", IoctlNumbers.IOAS_MAP, IoasMapStruct.LAYOUT, "iova", this::ioasMap));
        add(op("IOMMU_IOAS_UNMAP", IoctlNumbers.IOAS_UNMAP, IoasUnmapStruct.LAYOUT, "length", this::ioasUnmap));
    }

    private void add(IoctlOp op) {
        int slot = IoctlNumbers.nr(op.cmd()) - IoctlNumbers.IOMMUFD_BASE;
        if (ops[slot] != null) {
            throw new IllegalStateException("bug: two rows for command 0x" + Integer.toHexString(op.cmd()));
        }
        ops[slot] = op;
    }

    /** {@return the row for command number {@code nr}, or null} */
    IoctlOp lookup(int nr) {
        int slot = nr - IoctlNumbers.IOMMUFD_BASE;
        return slot >= 0 && slot < SPAN ? ops[slot] : null;
    }

    /** {@return whether {@code nr} falls in iommufd's range (an empty slot there is ENOTTY, not VFIO)} */
    boolean isIommufdNumber(int nr) {
        return nr >= IoctlNumbers.IOMMUFD_BASE && nr < IoctlNumbers.IOMMUFD_BASE + SPAN;
    }

    /** {@return the rows, in command order} */
    public List<IoctlOp> ops() {
        return Arrays.stream(ops).filter(Objects::nonNull).toList();
    }

    /** The VFIO container ioctls on the same fd (§7); ENOTTY for what is not (yet) decoded here. */
    long vfio(int cmd, long arg, AbiCall call) {
        throw ErrnoException.of(Errno.ENOTTY, "ioctl 0x%x: not a supported VFIO container command", cmd);
    }

    // ---- handlers ---------------------------------------------------------------------------------

    private long destroy(AbiCall call) {
        call.iommufd().destroy(destroy.wrap(call.struct(), 0).id());
        return 0;
    }

    private long ioasAlloc(AbiCall call) {
        IoasAllocStruct s = ioasAlloc.wrap(call.struct(), 0);
        if (s.flags() != 0) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "ioas_alloc: flags 0x%x", s.flags());
        }
        int id = call.iommufd().ioasAlloc();
        s.outIoasId(id);
        call.respond();
        return 0;
    }

    private long iovaRanges(AbiCall call) {
        IoasIovaRangesStruct s = iovaRanges.wrap(call.struct(), 0);
        if (s.reserved() != 0) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "iova_ranges: __reserved is 0x%x", s.reserved());
        }
        Iommufd.IovaRanges ranges = call.iommufd().ioasIovaRanges(s.ioasId());
        long capacity = s.numIovas();
        List<IovaRange> list = ranges.ranges();
        int written = (int) Math.min(capacity, list.size());
        if (written > 0) {
            ByteBuffer out = ByteBuffer.allocate(written * IoasIovaRangesStruct.RANGE_BYTES).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < written; i++) {
                out.putLong(list.get(i).start()).putLong(list.get(i).last());
            }
            call.caller().write(s.allowedIovas(), out.array());
        }
        s.numIovas(list.size()).outIovaAlignment(ranges.iovaAlignment());
        call.respond();
        if (capacity < list.size()) {
            throw ErrnoException.of(Errno.EMSGSIZE, "iova_ranges: %d ranges, room for %d", list.size(), capacity);
        }
        return 0;
    }

    private long ioasMap(AbiCall call) {
        IoasMapStruct s = ioasMap.wrap(call.struct(), 0);
        if (s.reserved() != 0) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "ioas_map: __reserved is 0x%x", s.reserved());
        }
        long iova = call.iommufd().ioasMap(s.ioasId(), s.flags(), s.userVa(), s.lengthBytes(), s.iova());
        s.iova(iova);
        call.respond();
        return 0;
    }

    private long ioasUnmap(AbiCall call) {
        IoasUnmapStruct s = ioasUnmap.wrap(call.struct(), 0);
        long unmapped = call.iommufd().ioasUnmap(s.ioasId(), s.iova(), s.lengthBytes());
        s.lengthBytes(unmapped);
        call.respond();
        return 0;
    }
}
