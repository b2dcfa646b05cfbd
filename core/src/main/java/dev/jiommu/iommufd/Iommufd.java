package dev.jiommu.iommufd;

import dev.jiommu.mem.DmaBuf;
import dev.jiommu.mem.MemoryFile;
import dev.jiommu.pt.DirtyBitmap;

import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * The typed iommufd API: one instance is one open {@code /dev/iommu} (a context). A method per
 * command, arguments as Java values, results as records; every failure an
 * {@link IommufdException} with the errno the kernel returns, and a failed call changes nothing
 * unless its documentation says what partial progress it reports.
 *
 * <p>IOVAs, lengths and user addresses are unsigned 64-bit values in {@code long}s. User addresses
 * are virtual addresses of the context's {@link dev.jiommu.mem.UserMemory}.
 */
public interface Iommufd extends AutoCloseable {
    /**
     * Opens an iommufd: the kernel's {@code /dev/iommu} where this process can open it, the emulated
     * one otherwise ({@link IommufdProvider}s, tried by priority; {@link #backend()} says which one
     * answered, and the choice is logged at INFO).
     *
     * @throws IommufdException ENODEV, naming each backend's refusal, when none opens
     */
    static Iommufd open() {
        return IommufdProvider.openBest();
    }

    /** {@return which backend answers, e.g. "emulated" or "kernel /dev/iommu"} */
    String backend();

    /**
     * {@return {@code lengthBytes} (rounded up to pages) of fresh zeroed memory that IOAS_MAP takes
     * by its {@link MemorySegment#address()}}: native memory for the kernel, memory registered with
     * the context's user memory for the emulated backend. It lives until the context closes.
     *
     * @throws IommufdException EOPNOTSUPP where the context's user memory cannot take new memory
     */
    MemorySegment allocateUserMemory(long lengthBytes);

    /** IOAS_MAP / IOAS_COPY flag: map exactly at the given IOVA. */
    int MAP_FIXED_IOVA = 1;
    /** IOAS_MAP / IOAS_COPY flag: DMA may write. */
    int MAP_WRITEABLE = 1 << 1;
    /** IOAS_MAP / IOAS_COPY flag: DMA may read. */
    int MAP_READABLE = 1 << 2;

    /** IOMMU_DESTROY: destroys any object by ID. ENOENT unknown, EBUSY in use. */
    void destroy(int id);

    /** IOMMU_IOAS_ALLOC: {@return the new IOAS's ID}. */
    int ioasAlloc();

    /** What IOMMU_IOAS_IOVA_RANGES reports: the usable ranges and the alignment every map must keep. */
    record IovaRanges(List<IovaRange> ranges, long iovaAlignment) {
    }

    /** IOMMU_IOAS_IOVA_RANGES (the whole list; the ABI layer applies the caller's capacity). */
    IovaRanges ioasIovaRanges(int ioasId);

    /** IOMMU_IOAS_ALLOW_IOVAS: replaces the allowed list (empty clears it). */
    void ioasAllowIovas(int ioasId, List<IovaRange> allowed);

    /**
     * IOMMU_IOAS_MAP: maps [userVa, userVa + lengthBytes) of the caller's memory.
     *
     * @param flags {@link #MAP_FIXED_IOVA}, {@link #MAP_WRITEABLE}, {@link #MAP_READABLE}
     * @param iova  where to map with MAP_FIXED_IOVA, ignored otherwise
     * @return the IOVA mapped
     */
    long ioasMap(int ioasId, int flags, long userVa, long lengthBytes, long iova);

    /** IOMMU_IOAS_MAP_FILE: maps [start, start + lengthBytes) of {@code file}. {@return the IOVA mapped} */
    long ioasMapFile(int ioasId, int flags, MemoryFile file, long start, long lengthBytes, long iova);

    /**
     * IOMMU_IOAS_MAP_FILE of a dma-buf: maps [start, start + lengthBytes) of the exporter's memory
     * directly (nothing pinned or charged). ENODEV while revoked; a revocation drops its areas from
     * every domain, and such areas cannot be split. {@return the IOVA mapped}
     */
    long ioasMapFile(int ioasId, int flags, DmaBuf buf, long start, long lengthBytes, long iova);

    /** IOMMU_IOAS_COPY: maps the pages behind a source range again, sharing their pins. {@return the IOVA} */
    long ioasCopy(int dstIoasId, int flags, int srcIoasId, long srcIova, long lengthBytes, long dstIova);

    /** The IOAS_UNMAP length that, with IOVA 0, unmaps everything. */
    long UNMAP_ALL_LENGTH = -1L;

    /**
     * IOMMU_IOAS_UNMAP: removes every area inside the range; {@return the bytes unmapped}. On ENOENT
     * or EBUSY the areas before the offending one are already gone, as in the kernel.
     */
    long ioasUnmap(int ioasId, long iova, long lengthBytes);

    /**
     * IOMMU_IOAS_CHANGE_PROCESS, in the terms of a userspace stack: the kernel moves every pin
     * charge to the calling process; here the caller names the {@link PinAccounting} of the process
     * that takes over (its pinned_vm and locked_vm), and later maps are charged to it too. Every area
     * of every IOAS must be file-backed (MAP_FILE), else EINVAL; ENOMEM when the new owner's limit
     * refuses the charge. Nothing changes on failure.
     */
    void ioasChangeProcess(PinAccounting process);

    /** What IOAS_NOIOMMU_GET_PA answers: where an IOVA's bytes are, and how far they run contiguously. */
    record PhysicalRange(long physicalAddress, long lengthBytes) {
    }

    /**
     * The flag bit an ABI decoder sets for a non-zero {@code __reserved} of IOAS_NOIOMMU_GET_PA,
     * which the kernel refuses like an unknown flag.
     */
    int NOIOMMU_RESERVED_SET = 1 << 31;

    /**
     * IOMMU_IOAS_NOIOMMU_GET_PA: the physical address behind {@code iova} and the bytes from it that
     * are physically contiguous, at most {@code maxLengthBytes}, for the unsafe DMA of a device
     * without an IOMMU. EOPNOTSUPP where the context has no no-IOMMU support, EPERM without
     * CAP_SYS_RAWIO, then EOPNOTSUPP for flags, EINVAL for a zero length, EOVERFLOW for an IOVA of
     * 2^64 − 1, ENOENT for an unknown IOAS or an unmapped IOVA.
     */
    PhysicalRange ioasNoIommuGetPa(int flags, int ioasId, long iova, long maxLengthBytes);

    /** IOMMU_OPTION ids. */
    int OPTION_RLIMIT_MODE = 0;
    int OPTION_HUGE_PAGES = 1;

    /** IOMMU_OPTION SET; {@return the value as the kernel writes it back} */
    long optionSet(int optionId, int objectId, long value);

    /** IOMMU_OPTION GET. */
    long optionGet(int optionId, int objectId);

    /** IOMMU_VFIO_IOAS ops. */
    int VFIO_IOAS_GET = 0;
    int VFIO_IOAS_SET = 1;
    int VFIO_IOAS_CLEAR = 2;

    /** IOMMU_VFIO_IOAS: {@return the compat IOAS for GET, otherwise {@code ioasId}} */
    int vfioIoas(int op, int ioasId);

    /** IOMMU_HWPT_ALLOC flags. */
    int HWPT_ALLOC_NEST_PARENT = 1;
    int HWPT_ALLOC_DIRTY_TRACKING = 1 << 1;
    int HWPT_ALLOC_FAULT_ID_VALID = 1 << 2;
    int HWPT_ALLOC_PASID = 1 << 3;
    /** {@code IOMMU_HWPT_DATA_NONE}: no driver payload. */
    int HWPT_DATA_NONE = 0;

    /**
     * IOMMU_HWPT_ALLOC: a paging HWPT on an IOAS (manual: never auto-selected, never auto-destroyed),
     * for the IOMMU behind device {@code devId}; the device is not attached.
     *
     * @param dataType a driver payload type, or {@link #HWPT_DATA_NONE} with empty {@code data}
     * @param faultId  a FAULT object when {@code flags} has FAULT_ID_VALID
     * @return the new HWPT's ID
     */
    int hwptAlloc(int flags, int devId, int ptId, int dataType, byte[] data, int faultId);

    /**
     * IOMMU_HWPT_INVALIDATE: runs {@code entryNum} driver entries of {@code entryLen} bytes against a
     * nested HWPT's caches. {@return the entries handled}; on failure the exception's
     * {@link IommufdException#progress()} says how many were handled before the bad one. A null
     * {@code entries} is a null data_uptr: EINVAL unless {@code entryNum} is 0.
     */
    int hwptInvalidate(int hwptId, int dataType, int entryLen, int entryNum, byte[] entries);

    /** What IOMMU_FAULT_QUEUE_ALLOC returns: the FAULT object and its file. */
    record FaultQueueAlloc(int faultId, IommufdFile file) {
    }

    /**
     * IOMMU_FAULT_QUEUE_ALLOC: a queue for the I/O page faults of HWPTs allocated with its ID. Read
     * 40-byte {@code iommu_hwpt_pgfault} records from the file, write 8-byte responses back.
     */
    FaultQueueAlloc faultQueueAlloc(int flags);

    /** {@code IOMMU_VIOMMU_TYPE_DEFAULT}: reserved, refused. */
    int VIOMMU_TYPE_DEFAULT = 0;

    /** What IOMMU_VIOMMU_ALLOC returns: the vIOMMU's ID and the driver payload written back. */
    record ViommuAlloc(int viommuId, byte[] outData) {
        public ViommuAlloc {
            outData = outData.clone();
        }

        @Override
        public byte[] outData() {
            return outData.clone();
        }
    }

    /**
     * IOMMU_VIOMMU_ALLOC: a vIOMMU of {@code type} on the nest-parent HWPT {@code hwptId}, behind the
     * IOMMU of device {@code devId}, with an optional driver payload (may be empty).
     */
    ViommuAlloc viommuAlloc(int flags, int type, int devId, int hwptId, byte[] data);

    /** IOMMU_VDEVICE_ALLOC: device {@code devId} as the vIOMMU's guest knows it. {@return the vDEVICE's ID} */
    int vdeviceAlloc(int viommuId, int devId, long virtId);

    /**
     * IOMMU_VDEVICE_ALLOC for a device with several physical (stream) IDs, one virtual ID each, in the
     * order the device reports them (beyond upstream: the seeds asked for it; the proposed ABI is in
     * docs/vdevice-multi-id.md). A one-element array is the upstream call.
     */
    int vdeviceAlloc(int viommuId, int devId, long[] virtIds);

    /** What IOMMU_VEVENTQ_ALLOC returns: the vEVENTQ object and its file. */
    record VeventqAlloc(int veventqId, IommufdFile file) {
    }

    /** IOMMU_VEVENTQ_ALLOC: a queue of at most {@code depth} events of {@code type} from a vIOMMU. */
    VeventqAlloc veventqAlloc(int flags, int viommuId, int type, int depth);

    /**
     * IOMMU_HW_QUEUE_ALLOC: queue {@code index} of {@code type} of a vIOMMU, in guest memory at
     * {@code nestingParentIova} of the parent's IOAS, which stays pinned and locked (unmap: EBUSY).
     * {@return the HW queue's ID}
     */
    int hwQueueAlloc(int flags, int viommuId, int type, int index, long nestingParentIova, long lengthBytes);

    /** An mmap of a driver MMIO window of this context; {@link #close()} is the munmap. */
    record MmioMapping(long offset, MemorySegment memory, Runnable unmapper) implements AutoCloseable {
        @Override
        public void close() {
            unmapper.run();
        }
    }

    /** mmap of the iommufd: exactly a registered window's offset and length, else ENXIO; its owner stays busy until closed. */
    MmioMapping mmap(long offset, long lengthBytes);

    /** IOMMU_GET_HW_INFO flag: {@code inDataType} says which vendor struct to report. */
    int HW_INFO_FLAG_INPUT_TYPE = 1;
    /** GET_HW_INFO capability bits. */
    long HW_CAP_DIRTY_TRACKING = 1;
    long HW_CAP_PCI_PASID_EXEC = 1 << 1;
    long HW_CAP_PCI_PASID_PRIV = 1 << 2;
    long HW_CAP_PCI_ATS_NOT_SUPPORTED = 1 << 3;

    /** What IOMMU_GET_HW_INFO reports: the vendor struct (type and bytes), PASID width, capabilities. */
    record HwInfo(int dataType, byte[] data, int maxPasidLog2, long capabilities) {
        public HwInfo {
            data = data.clone();
        }

        @Override
        public byte[] data() {
            return data.clone();
        }
    }

    /** IOMMU_GET_HW_INFO for device {@code devId}. */
    HwInfo getHwInfo(int devId, int flags, int inDataType);

    /** IOMMU_HWPT_SET_DIRTY_TRACKING flag. */
    int DIRTY_TRACKING_ENABLE = 1;

    /** IOMMU_HWPT_SET_DIRTY_TRACKING: enabling clears every dirty bit first, so tracking starts clean. */
    void hwptSetDirtyTracking(int hwptId, int flags);

    /** IOMMU_HWPT_GET_DIRTY_BITMAP flag: report without clearing. */
    int GET_DIRTY_BITMAP_NO_CLEAR = 1;

    /**
     * IOMMU_HWPT_GET_DIRTY_BITMAP: {@return a bitmap of [iova, iova + length) at {@code pageSize}
     * granularity}; the ABI layer ORs it into the caller's buffer, as the kernel does.
     */
    DirtyBitmap hwptGetDirtyBitmap(int hwptId, int flags, long iova, long lengthBytes, long pageSize);

    /** The VFIO type1 container interface on this context (legacy users). */
    VfioContainer vfio();

    /** The selftest operations (IOMMU_TEST_CMD); EOPNOTSUPP-free only when the platform has a mock bus. */
    IommufdSelftest selftest();

    /** Destroys every object, releases every pin. */
    @Override
    void close();
}
