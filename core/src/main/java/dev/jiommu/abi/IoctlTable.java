package dev.jiommu.abi;

import java.util.Arrays;
import java.util.List;
import java.util.Objects;

import static dev.jiommu.abi.IoctlOp.op;

/**
 * The iommufd command table (iommufd-uapi.md §1.3) as rows of data, indexed by command number:
 * every command 0x80–0x95, and the selftest's IOMMU_TEST_CMD (0xa0). The
 * handlers live by family in {@link IoasCommands}, {@link HwptCommands}, {@link ViommuCommands} and
 * {@link TestCommands}; the VFIO container ioctls of the same fd in {@link VfioCommands}. The
 * flyweights they use are this table's own (one table per decoder, like the decoder's buffer).
 *
 * <p>IOAS_NOIOMMU_GET_PA (0x95) is in the table as in the kernel's; whether it does anything is the
 * context's switch (the kernel's CONFIG_IOMMUFD_NOIOMMU), EOPNOTSUPP when off.
 */
public final class IoctlTable {
    /** Commands 0x80 … 0xa0: the table's span (the selftest command is compiled in). */
    private static final int SPAN = 0x21;

    /** {@code IOMMU_OPTION_OP_SET}, {@code IOMMU_OPTION_OP_GET}. */
    static final int OPTION_OP_SET = 0;
    static final int OPTION_OP_GET = 1;

    /** Undo of a new object whose ID the caller never learnt. */
    static final AbiCall.Undo DESTROY_OBJECT = (call, id, unused) -> call.iommufd().destroy(id);
    /** Undo of a new fd (and the object behind it, when {@code id} is not 0). */
    static final AbiCall.Undo CLOSE_FD_AND_DESTROY = (call, fd, id) -> {
        call.fds().close(fd);
        if (id != 0) {
            call.iommufd().destroy(id);
        }
    };
    /** Undo of a selftest PASID attach. */
    static final AbiCall.Undo PASID_DETACH = (call, stdevId, pasid) -> call.iommufd().selftest().pasidDetach(stdevId, pasid);
    /** Undo of a selftest ACCESS_PAGES pin. */
    static final AbiCall.Undo DESTROY_ACCESS_PAGES = (call, access, item) -> call.iommufd().selftest().destroyAccessPages(access, item);

    private final IoctlOp[] ops = new IoctlOp[SPAN];
    private final IoasCommands ioas = new IoasCommands();
    private final HwptCommands hwpt = new HwptCommands();
    private final ViommuCommands viommu = new ViommuCommands();
    private final TestCommands test = new TestCommands();
    private final VfioCommands vfioCommands = new VfioCommands();

    /** {@return the table of every command this build knows} */
    public static IoctlTable standard() {
        return new IoctlTable();
    }

    private IoctlTable() {
        add(op("IOMMU_DESTROY", IoctlNumbers.DESTROY, DestroyStruct.LAYOUT, "id", ioas::destroy));
        add(op("IOMMU_IOAS_ALLOC", IoctlNumbers.IOAS_ALLOC, IoasAllocStruct.LAYOUT, "out_ioas_id", ioas::ioasAlloc));
        add(op("IOMMU_IOAS_ALLOW_IOVAS", IoctlNumbers.IOAS_ALLOW_IOVAS, IoasAllowIovasStruct.LAYOUT, "allowed_iovas", ioas::allowIovas));
        add(op("IOMMU_IOAS_COPY", IoctlNumbers.IOAS_COPY, IoasCopyStruct.LAYOUT, "src_iova", ioas::ioasCopy));
        add(op("IOMMU_IOAS_IOVA_RANGES", IoctlNumbers.IOAS_IOVA_RANGES, IoasIovaRangesStruct.LAYOUT, "out_iova_alignment", ioas::iovaRanges));
        add(op("IOMMU_IOAS_MAP", IoctlNumbers.IOAS_MAP, IoasMapStruct.LAYOUT, "iova", ioas::ioasMap));
        add(op("IOMMU_IOAS_UNMAP", IoctlNumbers.IOAS_UNMAP, IoasUnmapStruct.LAYOUT, "length", ioas::ioasUnmap));
        add(op("IOMMU_OPTION", IoctlNumbers.OPTION, OptionStruct.LAYOUT, "val64", ioas::option));
        add(op("IOMMU_VFIO_IOAS", IoctlNumbers.VFIO_IOAS, VfioIoasStruct.LAYOUT, "__reserved", ioas::vfioIoas));
        add(op("IOMMU_HWPT_ALLOC", IoctlNumbers.HWPT_ALLOC, HwptAllocStruct.LAYOUT, "__reserved", hwpt::hwptAlloc));
        add(op("IOMMU_GET_HW_INFO", IoctlNumbers.GET_HW_INFO, HwInfoStruct.LAYOUT, "__reserved", hwpt::getHwInfo));
        add(op("IOMMU_HWPT_SET_DIRTY_TRACKING", IoctlNumbers.HWPT_SET_DIRTY_TRACKING, HwptSetDirtyTrackingStruct.LAYOUT, "__reserved",
                hwpt::setDirtyTracking));
        add(op("IOMMU_HWPT_GET_DIRTY_BITMAP", IoctlNumbers.HWPT_GET_DIRTY_BITMAP, HwptGetDirtyBitmapStruct.LAYOUT, "data",
                hwpt::getDirtyBitmap));
        add(op("IOMMU_HWPT_INVALIDATE", IoctlNumbers.HWPT_INVALIDATE, HwptInvalidateStruct.LAYOUT, "__reserved", hwpt::invalidate));
        add(op("IOMMU_FAULT_QUEUE_ALLOC", IoctlNumbers.FAULT_QUEUE_ALLOC, FaultAllocStruct.LAYOUT, "out_fault_fd", viommu::faultQueueAlloc));
        add(op("IOMMU_IOAS_MAP_FILE", IoctlNumbers.IOAS_MAP_FILE, IoasMapFileStruct.LAYOUT, "iova", ioas::ioasMapFile));
        add(op("IOMMU_VIOMMU_ALLOC", IoctlNumbers.VIOMMU_ALLOC, ViommuAllocStruct.LAYOUT, "out_viommu_id", viommu::viommuAlloc));
        add(op("IOMMU_VDEVICE_ALLOC", IoctlNumbers.VDEVICE_ALLOC, VdeviceAllocStruct.LAYOUT, "virt_id", viommu::vdeviceAlloc));
        add(op("IOMMU_IOAS_CHANGE_PROCESS", IoctlNumbers.IOAS_CHANGE_PROCESS, IoasChangeProcessStruct.LAYOUT, "__reserved",
                ioas::changeProcess));
        add(op("IOMMU_VEVENTQ_ALLOC", IoctlNumbers.VEVENTQ_ALLOC, VeventqAllocStruct.LAYOUT, "out_veventq_fd", viommu::veventqAlloc));
        add(op("IOMMU_HW_QUEUE_ALLOC", IoctlNumbers.HW_QUEUE_ALLOC, HwQueueAllocStruct.LAYOUT, "length", viommu::hwQueueAlloc));
        add(op("IOMMU_IOAS_NOIOMMU_GET_PA", IoctlNumbers.IOAS_NOIOMMU_GET_PA, IoasNoIommuGetPaStruct.LAYOUT, "out_phys",
                ioas::noIommuGetPa));
        add(op("IOMMU_TEST_CMD", IoctlNumbers.TEST_CMD, TestCmdStruct.LAYOUT, "last", test::testCmd));
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

    /** The VFIO container ioctls on the same fd (§7); ENOTTY for anything else. */
    long vfio(int cmd, long arg, AbiCall call) {
        return vfioCommands.ioctl(cmd, arg, call);
    }
}
