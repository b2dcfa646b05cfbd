package dev.jiommu.abi;

import dev.jiommu.errno.Errno;
import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.iommufd.IommufdException;
import dev.jiommu.iommufd.IommufdFile;
import dev.jiommu.iommufd.IommufdSelftest;
import dev.jiommu.iommufd.IovaRange;
import dev.jiommu.iommufd.PinAccounting;
import dev.jiommu.iommufd.VfioContainer;
import dev.jiommu.mem.DmaBuf;
import dev.jiommu.mem.MemoryFile;
import dev.jiommu.mem.UserMemory;
import dev.jiommu.pt.DirtyBitmap;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import static dev.jiommu.abi.Layouts.U16;
import static dev.jiommu.abi.Layouts.U32;
import static dev.jiommu.abi.Layouts.U64;
import static dev.jiommu.abi.Layouts.U8;

/**
 * The typed API spoken as the ABI: every call is encoded into its uAPI struct in a scratch region
 * of the caller's memory, handed to an ioctl, and decoded back; a negative return becomes an
 * {@link IommufdException} with that errno (the kernel's message does not cross the ABI, so the
 * message names the command). Progress the ABI reports goes into the exception as the typed call
 * reports it: HWPT_INVALIDATE's entry_num, VFIO UNMAP_DMA's size.
 *
 * <p>Who answers the ioctl is the subclass's business: {@link KernelIommufd} calls the real
 * {@code ioctl(2)} on a {@code /dev/iommu} fd, a test's client runs an {@link AbiDecoder} over an
 * emulated context. So are the few calls that are not ioctls of the iommufd (an mmap of the fd,
 * the queue files' reads and writes, passing a memfd or dma-buf as an fd) and the ones with no
 * upstream ABI.
 *
 * <p>Layout of the scratch region: the struct at its start, payloads (arrays, driver data,
 * bitmaps) from {@link #PAYLOAD_OFFSET}. One call at a time: the region is shared.
 */
public abstract class AbiClient implements Iommufd {
    /** Where payloads start in the scratch region; the struct page comes first. */
    protected static final long PAYLOAD_OFFSET = UserMemory.PAGE_BYTES;
    /** GET_HW_INFO's first buffer; a driver reporting more is asked again with room for all of it. */
    private static final int HW_INFO_BUFFER_BYTES = 64;

    private final long scratchBytes;
    private final Selftest selftest = new Selftest();
    private final Vfio vfio = new Vfio();

    /** @param scratchBytes the length of the scratch region, at least two pages */
    protected AbiClient(long scratchBytes) {
        if (scratchBytes <= PAYLOAD_OFFSET) {
            throw new IllegalArgumentException("scratch of " + scratchBytes + " bytes leaves no room for payloads");
        }
        this.scratchBytes = scratchBytes;
    }

    // ---- what a transport provides ---------------------------------------------------------------------

    /**
     * {@return the scratch region of the calling thread: a writable region of the caller's memory
     * of the constructor's length that nothing else touches during a call}
     */
    protected abstract long scratchVa();

    /** Runs {@code ioctl(fd, cmd, arg)} on the iommufd. {@return its value: ≥ 0, or −errno} */
    protected abstract long ioctl(int cmd, long arg);

    /** Writes {@code bytes} at {@code va} of the caller's memory (the scratch region). */
    protected abstract void writeUser(long va, byte[] bytes);

    /** {@return {@code length} bytes at {@code va} of the caller's memory (the scratch region)} */
    protected abstract byte[] readUser(long va, int length);

    /** {@return the caller's fd for {@code file}}, for IOAS_MAP_FILE and the selftest's fd arguments */
    protected abstract int fdOf(Object file);

    /** {@return the file a command handed out as {@code fd} (a fault queue or vEVENTQ), closing with the fd} */
    protected abstract IommufdFile openedFile(int fd);

    /** {@return the dma-buf the selftest's DMABUF_GET handed out as {@code fd}} */
    protected abstract DmaBuf openedDmaBuf(int fd);

    /** close(fd) of an fd a command handed out. */
    protected abstract void closeFd(int fd);

    // ---- encoding ------------------------------------------------------------------------------------

    /** One uAPI struct being built and read back, in the kernel's byte order; fields named by dotted path. */
    private static final class Arg {
        final String name;
        final StructLayout layout;
        final MemorySegment seg;

        Arg(String name, StructLayout layout) {
            this.name = name;
            this.layout = layout;
            this.seg = MemorySegment.ofArray(new byte[(int) layout.byteSize()]);
            seg.set(U32, 0, (int) layout.byteSize()); // size, or a VFIO struct's argsz
        }

        Arg put(String path, long value) {
            MemoryLayout.PathElement[] p = path(path);
            long at = layout.byteOffset(p);
            switch ((int) layout.select(p).byteSize()) {
                case 1 -> seg.set(U8, at, (byte) value);
                case 2 -> seg.set(U16, at, (short) value);
                case 4 -> seg.set(U32, at, (int) value);
                case 8 -> seg.set(U64, at, value);
                default -> throw new IllegalArgumentException(name + "." + path + " is not a scalar");
            }
            return this;
        }

        /** {@return the field, unsigned} */
        long get(String path) {
            MemoryLayout.PathElement[] p = path(path);
            long at = layout.byteOffset(p);
            return switch ((int) layout.select(p).byteSize()) {
                case 1 -> Byte.toUnsignedLong(seg.get(U8, at));
                case 2 -> Short.toUnsignedLong(seg.get(U16, at));
                case 4 -> Integer.toUnsignedLong(seg.get(U32, at));
                case 8 -> seg.get(U64, at);
                default -> throw new IllegalArgumentException(name + "." + path + " is not a scalar");
            };
        }

        int getInt(String path) {
            return (int) get(path);
        }

        private static MemoryLayout.PathElement[] path(String path) {
            String[] names = path.split("\\.");
            MemoryLayout.PathElement[] p = new MemoryLayout.PathElement[names.length];
            for (int i = 0; i < names.length; i++) {
                p[i] = MemoryLayout.PathElement.groupElement(names[i]);
            }
            return p;
        }
    }

    /** Writes the struct to the scratch region, runs the ioctl, reads the struct back. {@return the ioctl's value} */
    private long ioctl(int cmd, Arg arg) {
        byte[] bytes = arg.seg.toArray(ValueLayout.JAVA_BYTE);
        writeUser(scratchVa(), bytes);
        long result = ioctl(cmd, scratchVa());
        MemorySegment.copy(readUser(scratchVa(), bytes.length), 0, arg.seg, U8, 0, bytes.length);
        if (result < 0) {
            throw failed(arg.name, result);
        }
        return result;
    }

    /** An ioctl whose argument is an integer, not a struct. */
    private long ioctlValue(int cmd, long value, String name) {
        long result = ioctl(cmd, value);
        if (result < 0) {
            throw failed(name, result);
        }
        return result;
    }

    private static IommufdException failed(String name, long result) {
        int raw = (int) -result;
        Errno errno = Errno.of(raw);
        return new IommufdException(errno, String.format(Locale.ROOT, "%s through the ABI returned -%d", name, raw));
    }

    /** {@return the user address of a payload written to the scratch region (0 for null)} */
    private long payload(byte[] bytes) {
        return payloadAt(0, bytes);
    }

    private long payloadAt(long offset, byte[] bytes) {
        if (bytes == null) {
            return 0;
        }
        long va = payloadVa(offset, bytes.length);
        if (bytes.length > 0) {
            writeUser(va, bytes);
        }
        return va;
    }

    private long payloadVa(long offset, long lengthBytes) {
        if (PAYLOAD_OFFSET + offset + lengthBytes > scratchBytes) {
            throw new IllegalStateException("scratch region too small for a payload of " + lengthBytes + " bytes");
        }
        return scratchVa() + PAYLOAD_OFFSET + offset;
    }

    // ---- the iommufd commands ---------------------------------------------------------------------------

    @Override
    public void destroy(int id) {
        ioctl(IoctlNumbers.DESTROY, new Arg("IOMMU_DESTROY", DestroyStruct.LAYOUT).put("id", id));
    }

    @Override
    public int ioasAlloc() {
        Arg a = new Arg("IOMMU_IOAS_ALLOC", IoasAllocStruct.LAYOUT);
        ioctl(IoctlNumbers.IOAS_ALLOC, a);
        return a.getInt("out_ioas_id");
    }

    /* Asks with room for a few ranges; on EMSGSIZE num_iovas says how many there are, so ask again with that. */
    @Override
    public IovaRanges ioasIovaRanges(int ioasId) {
        long capacity = 8;
        while (true) {
            long uptr = payloadVa(0, capacity * IoasIovaRangesStruct.RANGE_BYTES);
            Arg a = new Arg("IOMMU_IOAS_IOVA_RANGES", IoasIovaRangesStruct.LAYOUT)
                    .put("ioas_id", ioasId).put("num_iovas", capacity).put("allowed_iovas", uptr);
            try {
                ioctl(IoctlNumbers.IOAS_IOVA_RANGES, a);
            } catch (IommufdException e) {
                if (e.errno() == Errno.EMSGSIZE && a.get("num_iovas") > capacity) {
                    capacity = a.get("num_iovas");
                    continue;
                }
                throw e;
            }
            int n = a.getInt("num_iovas");
            ByteBuffer in = ByteBuffer.wrap(n == 0 ? new byte[0] : readUser(uptr, n * IoasIovaRangesStruct.RANGE_BYTES))
                    .order(ByteOrder.LITTLE_ENDIAN);
            List<IovaRange> ranges = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                ranges.add(new IovaRange(in.getLong(), in.getLong()));
            }
            return new IovaRanges(List.copyOf(ranges), a.get("out_iova_alignment"));
        }
    }

    @Override
    public void ioasAllowIovas(int ioasId, List<IovaRange> allowed) {
        ByteBuffer out = ByteBuffer.allocate(allowed.size() * IoasIovaRangesStruct.RANGE_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        for (IovaRange r : allowed) {
            out.putLong(r.start()).putLong(r.last());
        }
        long uptr = payload(out.array());
        ioctl(IoctlNumbers.IOAS_ALLOW_IOVAS, new Arg("IOMMU_IOAS_ALLOW_IOVAS", IoasAllowIovasStruct.LAYOUT)
                .put("ioas_id", ioasId).put("num_iovas", allowed.size()).put("allowed_iovas", uptr));
    }

    @Override
    public long ioasMap(int ioasId, int flags, long userVa, long lengthBytes, long iova) {
        Arg a = new Arg("IOMMU_IOAS_MAP", IoasMapStruct.LAYOUT).put("flags", flags).put("ioas_id", ioasId)
                .put("user_va", userVa).put("length", lengthBytes).put("iova", iova);
        ioctl(IoctlNumbers.IOAS_MAP, a);
        return a.get("iova");
    }

    @Override
    public long ioasMapFile(int ioasId, int flags, MemoryFile file, long start, long lengthBytes, long iova) {
        return ioasMapFile(ioasId, flags, fdOf(file), start, lengthBytes, iova);
    }

    @Override
    public long ioasMapFile(int ioasId, int flags, DmaBuf buf, long start, long lengthBytes, long iova) {
        return ioasMapFile(ioasId, flags, fdOf(buf), start, lengthBytes, iova);
    }

    /** IOMMU_IOAS_MAP_FILE of the caller's file descriptor {@code fd} (a memfd or dma-buf). {@return the IOVA mapped} */
    public long ioasMapFile(int ioasId, int flags, int fd, long start, long lengthBytes, long iova) {
        Arg a = new Arg("IOMMU_IOAS_MAP_FILE", IoasMapFileStruct.LAYOUT).put("flags", flags).put("ioas_id", ioasId)
                .put("fd", fd).put("start", start).put("length", lengthBytes).put("iova", iova);
        ioctl(IoctlNumbers.IOAS_MAP_FILE, a);
        return a.get("iova");
    }

    @Override
    public long ioasCopy(int dstIoasId, int flags, int srcIoasId, long srcIova, long lengthBytes, long dstIova) {
        Arg a = new Arg("IOMMU_IOAS_COPY", IoasCopyStruct.LAYOUT).put("flags", flags).put("dst_ioas_id", dstIoasId)
                .put("src_ioas_id", srcIoasId).put("length", lengthBytes).put("dst_iova", dstIova).put("src_iova", srcIova);
        ioctl(IoctlNumbers.IOAS_COPY, a);
        return a.get("dst_iova");
    }

    /** The reserved-field marker goes back into {@code __reserved}, so a test can send one through the bytes. */
    @Override
    public PhysicalRange ioasNoIommuGetPa(int flags, int ioasId, long iova, long maxLengthBytes) {
        Arg a = new Arg("IOMMU_IOAS_NOIOMMU_GET_PA", IoasNoIommuGetPaStruct.LAYOUT).put("flags", flags & ~NOIOMMU_RESERVED_SET)
                .put("__reserved", (flags & NOIOMMU_RESERVED_SET) != 0 ? 1 : 0).put("ioas_id", ioasId).put("iova", iova)
                .put("length", maxLengthBytes);
        ioctl(IoctlNumbers.IOAS_NOIOMMU_GET_PA, a);
        return new PhysicalRange(a.get("out_phys"), a.get("length"));
    }

    @Override
    public long ioasUnmap(int ioasId, long iova, long lengthBytes) {
        Arg a = new Arg("IOMMU_IOAS_UNMAP", IoasUnmapStruct.LAYOUT).put("ioas_id", ioasId).put("iova", iova).put("length", lengthBytes);
        ioctl(IoctlNumbers.IOAS_UNMAP, a);
        return a.get("length");
    }

    /** IOAS_CHANGE_PROCESS as the ioctl: the calling process is the transport's to say ({@link #changeProcess}). */
    @Override
    public void ioasChangeProcess(PinAccounting process) {
        Arg a = new Arg("IOMMU_IOAS_CHANGE_PROCESS", IoasChangeProcessStruct.LAYOUT);
        writeUser(scratchVa(), a.seg.toArray(ValueLayout.JAVA_BYTE));
        long result = changeProcess(process, scratchVa());
        if (result < 0) {
            throw failed(a.name, result);
        }
    }

    /**
     * Runs IOMMU_IOAS_CHANGE_PROCESS (its struct at {@code arg}) as the process whose accounting is
     * {@code process}. {@return the ioctl's value}
     */
    protected abstract long changeProcess(PinAccounting process, long arg);

    @Override
    public long optionSet(int optionId, int objectId, long value) {
        return option(IoctlTable.OPTION_OP_SET, optionId, objectId, value);
    }

    @Override
    public long optionGet(int optionId, int objectId) {
        return option(IoctlTable.OPTION_OP_GET, optionId, objectId, 0);
    }

    private long option(int op, int optionId, int objectId, long value) {
        Arg a = new Arg("IOMMU_OPTION", OptionStruct.LAYOUT).put("option_id", optionId).put("op", op)
                .put("object_id", objectId).put("val64", value);
        ioctl(IoctlNumbers.OPTION, a);
        return a.get("val64");
    }

    @Override
    public int vfioIoas(int op, int ioasId) {
        Arg a = new Arg("IOMMU_VFIO_IOAS", VfioIoasStruct.LAYOUT).put("ioas_id", ioasId).put("op", op);
        ioctl(IoctlNumbers.VFIO_IOAS, a);
        return op == VFIO_IOAS_GET ? a.getInt("ioas_id") : ioasId;
    }

    @Override
    public int hwptAlloc(int flags, int devId, int ptId, int dataType, byte[] data, int faultId) {
        long uptr = data == null || data.length == 0 ? 0 : payload(data);
        Arg a = new Arg("IOMMU_HWPT_ALLOC", HwptAllocStruct.LAYOUT).put("flags", flags).put("dev_id", devId).put("pt_id", ptId)
                .put("data_type", dataType).put("data_len", data == null ? 0 : data.length).put("data_uptr", uptr)
                .put("fault_id", faultId);
        ioctl(IoctlNumbers.HWPT_ALLOC, a);
        return a.getInt("out_hwpt_id");
    }

    @Override
    public int hwptInvalidate(int hwptId, int dataType, int entryLen, int entryNum, byte[] entries) {
        Arg a = new Arg("IOMMU_HWPT_INVALIDATE", HwptInvalidateStruct.LAYOUT).put("hwpt_id", hwptId).put("data_uptr", payload(entries))
                .put("data_type", dataType).put("entry_len", entryLen).put("entry_num", entryNum);
        try {
            ioctl(IoctlNumbers.HWPT_INVALIDATE, a);
        } catch (IommufdException e) {
            throw e.withProgress(a.getInt("entry_num"));
        }
        return a.getInt("entry_num");
    }

    @Override
    public HwInfo getHwInfo(int devId, int flags, int inDataType) {
        int bufferBytes = HW_INFO_BUFFER_BYTES;
        while (true) {
            long uptr = payloadVa(0, bufferBytes);
            Arg a = new Arg("IOMMU_GET_HW_INFO", HwInfoStruct.LAYOUT).put("flags", flags).put("dev_id", devId)
                    .put("data_len", bufferBytes).put("data_uptr", uptr).put("data_type.in_data_type", inDataType);
            ioctl(IoctlNumbers.GET_HW_INFO, a);
            int length = a.getInt("data_len");
            if (length > bufferBytes) {
                bufferBytes = length;
                continue;
            }
            byte[] data = length == 0 ? new byte[0] : readUser(uptr, length);
            return new HwInfo(a.getInt("data_type.out_data_type"), data, a.getInt("out_max_pasid_log2"), a.get("out_capabilities"));
        }
    }

    @Override
    public void hwptSetDirtyTracking(int hwptId, int flags) {
        ioctl(IoctlNumbers.HWPT_SET_DIRTY_TRACKING, new Arg("IOMMU_HWPT_SET_DIRTY_TRACKING", HwptSetDirtyTrackingStruct.LAYOUT)
                .put("flags", flags).put("hwpt_id", hwptId));
    }

    /*
     * The kernel ORs the dirty bits into the caller's bitmap; a zeroed bitmap read back is the
     * report. Arguments the kernel refuses get a bitmap of no size: the call fails before using it.
     */
    @Override
    public DirtyBitmap hwptGetDirtyBitmap(int hwptId, int flags, long iova, long lengthBytes, long pageSize) {
        boolean sane = pageSize > 0 && Long.bitCount(pageSize) == 1 && lengthBytes > 0 && (lengthBytes & (pageSize - 1)) == 0;
        int pageShift = Long.numberOfTrailingZeros(pageSize);
        long pages = sane ? lengthBytes >>> pageShift : 0;
        long bitmapBytes = (pages + 7) >>> 3;
        long uptr = payloadVa(0, bitmapBytes);
        if (bitmapBytes > 0) {
            writeUser(uptr, new byte[(int) bitmapBytes]);
        }
        ioctl(IoctlNumbers.HWPT_GET_DIRTY_BITMAP, new Arg("IOMMU_HWPT_GET_DIRTY_BITMAP", HwptGetDirtyBitmapStruct.LAYOUT)
                .put("hwpt_id", hwptId).put("flags", flags).put("iova", iova).put("length", lengthBytes)
                .put("page_size", pageSize).put("data", uptr));
        DirtyBitmap bitmap = new DirtyBitmap(iova, pageShift, pages);
        byte[] bits = readUser(uptr, (int) bitmapBytes);
        for (long i = 0; i < pages; i++) {
            if ((bits[(int) (i >>> 3)] >>> (i & 7) & 1) != 0) {
                long at = iova + (i << pageShift);
                bitmap.mark(at, at + pageSize - 1);
            }
        }
        return bitmap;
    }

    @Override
    public FaultQueueAlloc faultQueueAlloc(int flags) {
        Arg a = new Arg("IOMMU_FAULT_QUEUE_ALLOC", FaultAllocStruct.LAYOUT).put("flags", flags);
        ioctl(IoctlNumbers.FAULT_QUEUE_ALLOC, a);
        int fd = a.getInt("out_fault_fd");
        return new FaultQueueAlloc(a.getInt("out_fault_id"), openedFile(fd));
    }

    /* The driver writes its answer into the caller's data buffer, so only data.length bytes come back. */
    @Override
    public ViommuAlloc viommuAlloc(int flags, int type, int devId, int hwptId, byte[] data) {
        byte[] in = data == null ? new byte[0] : data;
        long uptr = in.length == 0 ? 0 : payload(in);
        Arg a = new Arg("IOMMU_VIOMMU_ALLOC", ViommuAllocStruct.LAYOUT).put("flags", flags).put("type", type).put("dev_id", devId)
                .put("hwpt_id", hwptId).put("data_len", in.length).put("data_uptr", uptr);
        ioctl(IoctlNumbers.VIOMMU_ALLOC, a);
        return new ViommuAlloc(a.getInt("out_viommu_id"), in.length == 0 ? new byte[0] : readUser(uptr, in.length));
    }

    @Override
    public int vdeviceAlloc(int viommuId, int devId, long virtId) {
        Arg a = new Arg("IOMMU_VDEVICE_ALLOC", VdeviceAllocStruct.LAYOUT).put("viommu_id", viommuId).put("dev_id", devId)
                .put("virt_id", virtId);
        ioctl(IoctlNumbers.VDEVICE_ALLOC, a);
        return a.getInt("out_vdevice_id");
    }

    /** One ID is the upstream call; several have no ABI yet (docs/vdevice-multi-id.md): {@link #vdeviceAllocMulti}. */
    @Override
    public int vdeviceAlloc(int viommuId, int devId, long[] virtIds) {
        return virtIds.length == 1 ? vdeviceAlloc(viommuId, devId, virtIds[0]) : vdeviceAllocMulti(viommuId, devId, virtIds);
    }

    /** A vDEVICE with several virtual IDs, which no upstream ioctl carries. */
    protected abstract int vdeviceAllocMulti(int viommuId, int devId, long[] virtIds);

    @Override
    public VeventqAlloc veventqAlloc(int flags, int viommuId, int type, int depth) {
        Arg a = new Arg("IOMMU_VEVENTQ_ALLOC", VeventqAllocStruct.LAYOUT).put("flags", flags).put("viommu_id", viommuId)
                .put("type", type).put("veventq_depth", depth);
        ioctl(IoctlNumbers.VEVENTQ_ALLOC, a);
        int fd = a.getInt("out_veventq_fd");
        return new VeventqAlloc(a.getInt("out_veventq_id"), openedFile(fd));
    }

    @Override
    public int hwQueueAlloc(int flags, int viommuId, int type, int index, long nestingParentIova, long lengthBytes) {
        Arg a = new Arg("IOMMU_HW_QUEUE_ALLOC", HwQueueAllocStruct.LAYOUT).put("flags", flags).put("viommu_id", viommuId)
                .put("type", type).put("index", index).put("nesting_parent_iova", nestingParentIova).put("length", lengthBytes);
        ioctl(IoctlNumbers.HW_QUEUE_ALLOC, a);
        return a.getInt("out_hw_queue_id");
    }

    @Override
    public VfioContainer vfio() {
        return vfio;
    }

    @Override
    public IommufdSelftest selftest() {
        return selftest;
    }

    // ---- IOMMU_TEST_CMD -----------------------------------------------------------------------------------

    /** IOMMU_TEST_CMD, one op per call; access handles are the access fds it hands out. */
    private final class Selftest implements IommufdSelftest {
        private Arg cmd(int op, int id) {
            return new Arg("IOMMU_TEST_CMD op " + op, TestCmdStruct.LAYOUT).put("op", op).put("id", id);
        }

        private Arg run(Arg a) {
            ioctl(IoctlNumbers.TEST_CMD, a);
            return a;
        }

        @Override
        public void addReserved(int ioasId, long start, long lengthBytes) {
            run(cmd(TestCmdStruct.OP_ADD_RESERVED, ioasId).put("union.add_reserved.start", start)
                    .put("union.add_reserved.length", lengthBytes));
        }

        @Override
        public MockDomain mockDomain(int ptId) {
            Arg a = run(cmd(TestCmdStruct.OP_MOCK_DOMAIN, ptId));
            return new MockDomain(a.getInt("union.mock_domain.out_stdev_id"), a.getInt("union.mock_domain.out_hwpt_id"),
                    a.getInt("union.mock_domain.out_idev_id"));
        }

        @Override
        public MockDomain mockDomainFlags(int ptId, int deviceFlags) {
            Arg a = run(cmd(TestCmdStruct.OP_MOCK_DOMAIN_FLAGS, ptId).put("union.mock_domain_flags.dev_flags", deviceFlags));
            return new MockDomain(a.getInt("union.mock_domain_flags.out_stdev_id"), a.getInt("union.mock_domain_flags.out_hwpt_id"),
                    a.getInt("union.mock_domain_flags.out_idev_id"));
        }

        @Override
        public int mockDomainReplace(int stdevId, int ptId) {
            return run(cmd(TestCmdStruct.OP_MOCK_DOMAIN_REPLACE, stdevId).put("union.mock_domain_replace.pt_id", ptId))
                    .getInt("union.mock_domain_replace.pt_id");
        }

        @Override
        public void mdCheckMap(int hwptId, long iova, long lengthBytes, long uptr) {
            run(cmd(TestCmdStruct.OP_MD_CHECK_MAP, hwptId).put("union.check_map.iova", iova).put("union.check_map.length", lengthBytes)
                    .put("union.check_map.uptr", uptr));
        }

        @Override
        public void mdCheckRefs(long uptr, long lengthBytes, int refs) {
            run(cmd(TestCmdStruct.OP_MD_CHECK_REFS, 0).put("union.check_refs.length", lengthBytes).put("union.check_refs.uptr", uptr)
                    .put("union.check_refs.refs", refs));
        }

        @Override
        public int createAccess(int ioasId, int flags) {
            return run(cmd(TestCmdStruct.OP_CREATE_ACCESS, ioasId).put("union.create_access.flags", flags))
                    .getInt("union.create_access.out_access_fd");
        }

        @Override
        public void closeAccess(int accessFd) {
            closeFd(accessFd);
        }

        @Override
        public void destroyAccessPages(int accessFd, int accessPagesId) {
            run(cmd(TestCmdStruct.OP_DESTROY_ACCESS_PAGES, accessFd).put("union.destroy_access_pages.access_pages_id", accessPagesId));
        }

        @Override
        public int accessPages(int accessFd, int flags, long iova, long lengthBytes, long uptr) {
            return run(cmd(TestCmdStruct.OP_ACCESS_PAGES, accessFd).put("union.access_pages.flags", flags)
                    .put("union.access_pages.iova", iova).put("union.access_pages.length", lengthBytes)
                    .put("union.access_pages.uptr", uptr)).getInt("union.access_pages.out_access_pages_id");
        }

        @Override
        public void accessRw(int accessFd, long iova, long lengthBytes, long uptr, int flags) {
            run(cmd(TestCmdStruct.OP_ACCESS_RW, accessFd).put("union.access_rw.iova", iova).put("union.access_rw.length", lengthBytes)
                    .put("union.access_rw.uptr", uptr).put("union.access_rw.flags", flags));
        }

        @Override
        public long dirty(int hwptId, int flags, long iova, long lengthBytes, long pageSize, long uptr) {
            return run(cmd(TestCmdStruct.OP_DIRTY, hwptId).put("union.dirty.flags", flags).put("union.dirty.iova", iova)
                    .put("union.dirty.length", lengthBytes).put("union.dirty.page_size", pageSize).put("union.dirty.uptr", uptr))
                    .get("union.dirty.out_nr_dirty");
        }

        @Override
        public int pasidAttach(int stdevId, int pasid, int ptId) {
            return run(cmd(TestCmdStruct.OP_PASID_ATTACH, stdevId).put("union.pasid_attach.pasid", pasid)
                    .put("union.pasid_attach.pt_id", ptId)).getInt("union.pasid_attach.pt_id");
        }

        @Override
        public int pasidReplace(int stdevId, int pasid, int ptId) {
            return run(cmd(TestCmdStruct.OP_PASID_REPLACE, stdevId).put("union.pasid_replace.pasid", pasid)
                    .put("union.pasid_replace.pt_id", ptId)).getInt("union.pasid_replace.pt_id");
        }

        @Override
        public void pasidDetach(int stdevId, int pasid) {
            run(cmd(TestCmdStruct.OP_PASID_DETACH, stdevId).put("union.pasid_detach.pasid", pasid));
        }

        @Override
        public void pasidCheckHwpt(int stdevId, int pasid, int hwptId) {
            run(cmd(TestCmdStruct.OP_PASID_CHECK_HWPT, stdevId).put("union.pasid_check.pasid", pasid)
                    .put("union.pasid_check.hwpt_id", hwptId));
        }

        @Override
        public void mdCheckIotlb(int hwptId, int slot, int iotlb) {
            run(cmd(TestCmdStruct.OP_MD_CHECK_IOTLB, hwptId).put("union.check_iotlb.id", slot).put("union.check_iotlb.iotlb", iotlb));
        }

        @Override
        public void devCheckCache(int devId, int slot, int cache) {
            run(cmd(TestCmdStruct.OP_DEV_CHECK_CACHE, devId).put("union.check_dev_cache.id", slot)
                    .put("union.check_dev_cache.cache", cache));
        }

        @Override
        public void triggerIopf(int devId, int pasid, int grpid, int perm, long addr) {
            run(cmd(TestCmdStruct.OP_TRIGGER_IOPF, 0).put("union.trigger_iopf.dev_id", devId).put("union.trigger_iopf.pasid", pasid)
                    .put("union.trigger_iopf.grpid", grpid).put("union.trigger_iopf.perm", perm).put("union.trigger_iopf.addr", addr));
        }

        @Override
        public void triggerVevent(int devId) {
            run(cmd(TestCmdStruct.OP_TRIGGER_VEVENT, 0).put("union.trigger_vevent.dev_id", devId));
        }

        /** The answer is the ioctl's value: an fd in the caller's table. */
        @Override
        public DmaBuf dmabufGet(long lengthBytes) {
            if (lengthBytes < 0 || lengthBytes > 0xffff_ffffL) {
                throw IommufdException.of(Errno.EINVAL, "dmabuf_get: length 0x%x does not fit the u32 of the ABI", lengthBytes);
            }
            int fd = (int) ioctl(IoctlNumbers.TEST_CMD, cmd(TestCmdStruct.OP_DMABUF_GET, 0).put("union.dmabuf_get.length", lengthBytes));
            return openedDmaBuf(fd);
        }

        @Override
        public void dmabufRevoke(DmaBuf buf, boolean revoked) {
            run(cmd(TestCmdStruct.OP_DMABUF_REVOKE, 0).put("union.dmabuf_revoke.dmabuf_fd", fdOf(buf))
                    .put("union.dmabuf_revoke.revoked", revoked ? 1 : 0));
        }

        @Override
        public void setTempMemoryLimit(int limitBytes) {
            run(cmd(TestCmdStruct.OP_SET_TEMP_MEMORY_LIMIT, 0).put("union.memory_limit.limit", limitBytes));
        }

        @Override
        public void accessReplaceIoas(int accessFd, int ioasId) {
            run(cmd(TestCmdStruct.OP_ACCESS_REPLACE_IOAS, accessFd).put("union.access_replace_ioas.ioas_id", ioasId));
        }
    }

    // ---- the VFIO container ioctls of the same fd --------------------------------------------------------------

    private final class Vfio implements VfioContainer {
        @Override
        public int apiVersion() {
            return (int) ioctlValue(IoctlNumbers.VFIO_GET_API_VERSION, 0, "VFIO_GET_API_VERSION");
        }

        /** The argument is an unsigned long; an int passed to ioctl(2) is sign-extended, as in C. */
        @Override
        public int checkExtension(int extension) {
            return (int) ioctlValue(IoctlNumbers.VFIO_CHECK_EXTENSION, extension, "VFIO_CHECK_EXTENSION");
        }

        @Override
        public void setIommu(int type) {
            ioctlValue(IoctlNumbers.VFIO_SET_IOMMU, type, "VFIO_SET_IOMMU");
        }

        /*
         * Asked first with the fixed struct only: argsz comes back as the size of the whole chain,
         * and the second call, with that much room, gets the capabilities, walked by their next.
         */
        @Override
        public Info info() {
            Arg a = new Arg("VFIO_IOMMU_GET_INFO", VfioIommuType1InfoStruct.LAYOUT);
            ioctl(IoctlNumbers.VFIO_IOMMU_GET_INFO, a);
            int total = a.getInt("argsz");
            if (total > PAYLOAD_OFFSET) {
                throw new IllegalStateException("VFIO_IOMMU_GET_INFO wants " + total + " bytes, more than the struct page");
            }
            writeUser(scratchVa(), new byte[total]);
            ByteBuffer head = ByteBuffer.allocate(Integer.BYTES).order(ByteOrder.LITTLE_ENDIAN).putInt(total);
            writeUser(scratchVa(), head.array());
            long result = ioctl(IoctlNumbers.VFIO_IOMMU_GET_INFO, scratchVa());
            if (result < 0) {
                throw failed(a.name, result);
            }
            ByteBuffer info = ByteBuffer.wrap(readUser(scratchVa(), total)).order(ByteOrder.LITTLE_ENDIAN);
            long pageSizes = info.getLong((int) VfioIommuType1InfoStruct.LAYOUT.byteOffset(MemoryLayout.PathElement.groupElement("iova_pgsizes")));
            int capOffset = info.getInt((int) VfioIommuType1InfoStruct.LAYOUT.byteOffset(MemoryLayout.PathElement.groupElement("cap_offset")));
            List<IovaRange> ranges = new ArrayList<>();
            int dmaAvailable = 0;
            boolean dmaAvailSeen = false;
            for (int at = capOffset; at != 0; at = info.getInt(at + 4)) {
                int id = Short.toUnsignedInt(info.getShort(at));
                if (id == VfioCommands.CAP_DMA_AVAIL) {
                    dmaAvailable = info.getInt(at + 8);
                    dmaAvailSeen = true;
                } else if (id == VfioCommands.CAP_IOVA_RANGE) {
                    int n = info.getInt(at + 8);
                    for (int i = 0; i < n; i++) {
                        int r = at + (int) VfioIommuType1InfoCapIovaRangeStruct.SIZE_BYTES + i * VfioIommuType1InfoCapIovaRangeStruct.RANGE_BYTES;
                        ranges.add(new IovaRange(info.getLong(r), info.getLong(r + 8)));
                    }
                }
            }
            if (!dmaAvailSeen) {
                throw new AssertionError("VFIO_IOMMU_GET_INFO: no DMA_AVAIL capability in the chain");
            }
            return new Info(pageSizes, List.copyOf(ranges), dmaAvailable);
        }

        @Override
        public void mapDma(int flags, long vaddr, long iova, long sizeBytes) {
            ioctl(IoctlNumbers.VFIO_IOMMU_MAP_DMA, new Arg("VFIO_IOMMU_MAP_DMA", VfioIommuType1DmaMapStruct.LAYOUT).put("flags", flags)
                    .put("vaddr", vaddr).put("iova", iova).put("size", sizeBytes));
        }

        /*
         * size goes back whenever the unmap itself ran, also on failure; a refusal before it leaves
         * size as the caller wrote it. The bytes alone cannot tell "0 written over 0" from "nothing
         * written", so a size that comes back unchanged is progress only when it is 0 (a zero-size
         * unmap is refused by the unmap itself).
         */
        @Override
        public long unmapDma(int flags, long iova, long sizeBytes) {
            Arg a = new Arg("VFIO_IOMMU_UNMAP_DMA", VfioIommuType1DmaUnmapStruct.LAYOUT).put("flags", flags).put("iova", iova)
                    .put("size", sizeBytes);
            try {
                ioctl(IoctlNumbers.VFIO_IOMMU_UNMAP_DMA, a);
            } catch (IommufdException e) {
                long back = a.get("size");
                throw back != sizeBytes || back == 0 ? e.withProgressBytes(back) : e;
            }
            return a.get("size");
        }
    }
}
