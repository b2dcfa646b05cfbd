package dev.jiommu.abi;

/**
 * How iommufd and VFIO number their ioctls: {@code _IO(';', nr)}, no direction or size bits, so the
 * value is {@code 0x3B00 | nr} (iommufd-uapi.md §1.2).
 */
public final class IoctlNumbers {
    /** The ioctl type letter iommufd shares with VFIO. */
    public static final int TYPE = ';';
    /** iommufd's first command number. */
    public static final int IOMMUFD_BASE = 0x80;
    /** VFIO's first command number (VFIO_BASE = 100). */
    public static final int VFIO_BASE = 100;

    public static final int DESTROY = io(0x80);
    public static final int IOAS_ALLOC = io(0x81);
    public static final int IOAS_ALLOW_IOVAS = io(0x82);
    public static final int IOAS_COPY = io(0x83);
    public static final int IOAS_IOVA_RANGES = io(0x84);
    public static final int IOAS_MAP = io(0x85);
    public static final int IOAS_UNMAP = io(0x86);
    public static final int OPTION = io(0x87);
    public static final int VFIO_IOAS = io(0x88);
    public static final int HWPT_ALLOC = io(0x89);
    public static final int GET_HW_INFO = io(0x8a);
    public static final int HWPT_SET_DIRTY_TRACKING = io(0x8b);
    public static final int HWPT_GET_DIRTY_BITMAP = io(0x8c);
    public static final int HWPT_INVALIDATE = io(0x8d);
    public static final int FAULT_QUEUE_ALLOC = io(0x8e);
    public static final int IOAS_MAP_FILE = io(0x8f);
    public static final int VIOMMU_ALLOC = io(0x90);
    public static final int VDEVICE_ALLOC = io(0x91);
    public static final int IOAS_CHANGE_PROCESS = io(0x92);
    public static final int VEVENTQ_ALLOC = io(0x93);
    public static final int HW_QUEUE_ALLOC = io(0x94);
    public static final int IOAS_NOIOMMU_GET_PA = io(0x95);
    public static final int TEST_CMD = io(0xa0);

    /** The VFIO container ioctls iommufd answers on the same fd (§7): {@code _IO(';', VFIO_BASE + n)}. */
    public static final int VFIO_GET_API_VERSION = io(VFIO_BASE);
    public static final int VFIO_CHECK_EXTENSION = io(VFIO_BASE + 1);
    public static final int VFIO_SET_IOMMU = io(VFIO_BASE + 2);
    public static final int VFIO_IOMMU_GET_INFO = io(VFIO_BASE + 12);
    public static final int VFIO_IOMMU_MAP_DMA = io(VFIO_BASE + 13);
    public static final int VFIO_IOMMU_UNMAP_DMA = io(VFIO_BASE + 14);
    /** Not supported by iommufd: ENOTTY. */
    public static final int VFIO_IOMMU_DIRTY_PAGES = io(VFIO_BASE + 17);

    private IoctlNumbers() {
    }

    /** {@return {@code _IO(';', nr)}} */
    public static int io(int nr) {
        return (TYPE << 8) | nr;
    }

    /** {@return the command number of an ioctl value (its {@code _IOC_NR})} */
    public static int nr(int cmd) {
        return cmd & 0xff;
    }
}
