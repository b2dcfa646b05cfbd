package dev.jiommu.driver.mock;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommu.DriverData;
import dev.jiommu.iommu.DriverHwInfo;
import dev.jiommu.iommu.IommuDevice;
import dev.jiommu.iommu.IommuDomain;
import dev.jiommu.iommu.IommuDriver;
import dev.jiommu.iommu.IommuNestedDomain;
import dev.jiommu.iommu.IommuPagingDomain;
import dev.jiommu.iommu.IommuViommu;
import dev.jiommu.iommu.MmioRegistrar;
import dev.jiommu.iommu.PagingDomainFlags;
import dev.jiommu.iommu.SelftestDevices;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.pt.PageTableWalker;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The kernel selftest's mock IOMMU (iommufd-uapi.md §8.3): one instance, devices made on demand,
 * paging domains over the 2 KiB-granule mock page table.
 *
 * <p>Thread safety: synchronized; the iommufd context serializes its own calls anyway.
 */
public final class MockIommuDriver implements IommuDriver, SelftestDevices {
    /** {@code IOMMU_HWPT_DATA_SELFTEST}: the payload type of {@code iommu_hwpt_selftest}. */
    public static final int HWPT_DATA_SELFTEST = 0xdead;
    /** {@code MOCK_IOMMUPT_DEFAULT}: the aperture-limited 2 KiB table. */
    public static final int PAGETABLE_DEFAULT = 0;
    /** {@code MOCK_IOMMUPT_HUGE}: 4 KiB and 1 MiB pages, no forced aperture. */
    public static final int PAGETABLE_HUGE = 1;
    public static final long APERTURE_START = 1L << 24;
    public static final long APERTURE_LAST = (1L << 31) - 1;
    /** {@code IOMMU_HW_INFO_TYPE_SELFTEST}: the mock's GET_HW_INFO type. */
    public static final int HW_INFO_TYPE_SELFTEST = 0xfeedbeef;
    /** {@code IOMMU_HW_INFO_SELFTEST_REGVAL}: the mock's test_reg. */
    public static final int HW_INFO_SELFTEST_REGVAL = 0xdeadbeef;
    /** The PASID width of a device made with {@link SelftestDevices#PASID}. */
    public static final int PASID_BITS = 20;

    private static final int SUPPORTED_FLAGS = PagingDomainFlags.NEST_PARENT | PagingDomainFlags.DIRTY_TRACKING
            | PagingDomainFlags.PASID;

    private final PhysicalMemory memory;
    /** Walks the devices' DMA; stateless, so one serves every device and thread. */
    private final PageTableWalker walker;
    private int nextDeviceNumber;
    /** {@code IOMMU_TEST_PASID_RESERVED}: the PASID whose second attach fails, to test rollback. */
    public static final int PASID_RESERVED = 1024;

    /** Devices whose next attach at {@link #PASID_RESERVED} fails with ENOMEM. Guarded by this. */
    private final Set<MockDevice> reservedPasidArmed = new HashSet<>();
    /** What each device has attached, per PASID (NO_PASID for the RID). Guarded by this. */
    private final Map<MockDevice, Map<Integer, IommuDomain>> attachments = new HashMap<>();

    public MockIommuDriver(PhysicalMemory memory) {
        this.memory = memory;
        this.walker = new PageTableWalker(memory);
    }

    @Override
    public String name() {
        return "mock";
    }

    @Override
    public synchronized IommuDevice createDevice(int flags) {
        return createDevice(flags, 1);
    }

    /**
     * A mock device that emits DMA with {@code streamIds} physical IDs, as a platform device with
     * several stream IDs does (beyond the kernel's mock, which has one).
     */
    public synchronized MockDevice createDevice(int flags, int streamIds) {
        return createDevice(flags, streamIds, true);
    }

    /**
     * A mock device whose DMA the IOMMU may or may not be able to force cache-coherent (beyond the
     * kernel's mock, whose devices always can), to exercise enforce_cache_coherency.
     */
    public synchronized MockDevice createDevice(int flags, int streamIds, boolean coherencyEnforceable) {
        if ((flags & ~ALL_FLAGS) != 0) {
            throw ErrnoException.of(Errno.EINVAL, "mock device flags 0x%x: unknown bits 0x%x", flags, flags & ~ALL_FLAGS);
        }
        if (streamIds < 1) {
            throw new IllegalArgumentException("a device has at least one stream ID, not " + streamIds);
        }
        MockDevice device = new MockDevice(this, nextDeviceNumber++, flags, streamIds, coherencyEnforceable);
        attachments.put(device, new HashMap<>());
        return device;
    }

    @Override
    public synchronized void removeDevice(IommuDevice device) {
        Map<Integer, IommuDomain> attached = attachments.get(device);
        if (attached == null) {
            throw new IllegalStateException("bug: " + device.name() + " is not a device of this mock");
        }
        if (!attached.isEmpty()) {
            throw new IllegalStateException("bug: removing " + device.name() + " while attached at " + attached.keySet());
        }
        attachments.remove(device);
        reservedPasidArmed.remove(device);
    }

    @Override
    public DriverHwInfo hwInfo(IommuDevice device, int type) {
        checkDevice(device);
        if (type != DriverHwInfo.TYPE_DEFAULT && type != HW_INFO_TYPE_SELFTEST) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "mock hw_info: type 0x%x not reported", type);
        }
        // struct iommu_test_hw_info { u32 flags; u32 test_reg; }, little-endian
        int reg = HW_INFO_SELFTEST_REGVAL;
        byte[] bytes = {0, 0, 0, 0, (byte) reg, (byte) (reg >>> 8), (byte) (reg >>> 16), (byte) (reg >>> 24)};
        return new DriverHwInfo(HW_INFO_TYPE_SELFTEST, bytes);
    }

    @Override
    public IommuPagingDomain allocPagingDomain(IommuDevice device, int flags, DriverData data) {
        MockDevice mock = checkDevice(device);
        if ((flags & ~SUPPORTED_FLAGS) != 0) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "mock paging domain: flags 0x%x not supported", flags & ~SUPPORTED_FLAGS);
        }
        if ((flags & PagingDomainFlags.DIRTY_TRACKING) != 0 && !mock.dirtyTrackingCapable()) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "mock paging domain: %s cannot track dirty pages", device.name());
        }
        int pagetableType = PAGETABLE_DEFAULT;
        if (data != null) {
            if (data.type() != HWPT_DATA_SELFTEST) {
                throw ErrnoException.of(Errno.EOPNOTSUPP, "mock paging domain: data type 0x%x is not IOMMU_HWPT_DATA_SELFTEST", data.type());
            }
            // struct iommu_hwpt_selftest { u32 iotlb; u32 pagetable_type; }: at least iotlb, at most the struct.
            if (data.bytes().length < 4 || data.bytes().length > 8) {
                throw ErrnoException.of(Errno.EINVAL, "mock paging domain: iommu_hwpt_selftest of %d bytes (4 to 8)", data.bytes().length);
            }
            pagetableType = data.u32(4);
        }
        return switch (pagetableType) {
            case PAGETABLE_DEFAULT -> new MockPagingDomain(this, memory, flags, false);
            case PAGETABLE_HUGE -> new MockPagingDomain(this, memory, flags, true);
            default -> throw ErrnoException.of(Errno.EOPNOTSUPP, "mock paging domain: pagetable_type %d unknown", pagetableType);
        };
    }

    @Override
    public IommuNestedDomain allocNestedDomain(IommuDevice device, IommuPagingDomain parent, int flags, DriverData data) {
        checkDevice(device);
        if ((flags & ~PagingDomainFlags.PASID) != 0) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "mock nested domain: flags 0x%x not supported", flags & ~PagingDomainFlags.PASID);
        }
        if (data == null || data.type() != HWPT_DATA_SELFTEST) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "mock nested domain: needs an IOMMU_HWPT_DATA_SELFTEST payload");
        }
        if (data.bytes().length < 4 || data.bytes().length > 8) {
            throw ErrnoException.of(Errno.EINVAL, "mock nested domain: iommu_hwpt_selftest of %d bytes (4 to 8)", data.bytes().length);
        }
        if (!(parent instanceof MockPagingDomain) || (parent.flags() & PagingDomainFlags.NEST_PARENT) == 0) {
            throw ErrnoException.of(Errno.EINVAL, "mock nested domain: the parent is not a mock nest parent");
        }
        return new MockNestedDomain(this, parent, flags, data.u32(0), null);
    }

    @Override
    public IommuViommu allocViommu(IommuDevice device, IommuPagingDomain parent, int type, DriverData data, MmioRegistrar mmio) {
        checkDevice(device);
        if (type != MockViommu.TYPE_SELFTEST) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "mock vIOMMU: type 0x%x unknown", type);
        }
        if (!(parent instanceof MockPagingDomain) || (parent.flags() & PagingDomainFlags.NEST_PARENT) == 0) {
            throw ErrnoException.of(Errno.EINVAL, "mock vIOMMU: the parent is not a mock nest parent");
        }
        if (data == null) {
            return new MockViommu(this, parent, new byte[0]);
        }
        if (data.type() != MockViommu.TYPE_SELFTEST) {
            throw ErrnoException.of(Errno.EINVAL, "mock vIOMMU: payload type 0x%x", data.type());
        }
        // struct iommu_viommu_selftest { u32 in_data; u32 out_data; u64 out_mmap_offset; u64 out_mmap_length; }
        byte[] in = data.bytes();
        if (in.length < 8 || in.length > 24) {
            throw ErrnoException.of(Errno.EINVAL, "mock vIOMMU: iommu_viommu_selftest of %d bytes (8 to 24)", in.length);
        }
        int inData = data.u32(0);
        MemorySegment window = Arena.ofAuto().allocate(2 * 4096, 4096);
        window.set(ValueLayout.JAVA_INT_UNALIGNED, 0, inData);
        long offset = mmio.register(window);
        ByteBuffer out = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
        out.putInt(inData).putInt(inData).putLong(offset).putLong(window.byteSize());
        return new MockViommu(this, parent, out.array());
    }

    @Override
    public synchronized void attach(IommuDevice device, int pasid, IommuDomain domain) {
        MockDevice mock = checkDevice(device);
        if (domain.driver() != this) {
            throw ErrnoException.of(Errno.EINVAL, "attach %s: domain belongs to driver %s", device.name(), domain.driver().name());
        }
        // Only the RID's attach checks dirty tracking: the kernel mock's set_dev_pasid does not
        // (measured on 7.3.4: a NO_DIRTY device's PASID takes a dirty-tracking HWPT).
        if (pasid == NO_PASID && domain instanceof MockPagingDomain paging && (paging.flags() & PagingDomainFlags.DIRTY_TRACKING) != 0
                && !mock.dirtyTrackingCapable()) {
            throw ErrnoException.of(Errno.EINVAL, "attach %s: dirty-tracking domain, device without dirty tracking", device.name());
        }
        if (pasid == PASID_RESERVED) {
            // The selftest's scripted failure: the first attach arms it, the next one fails and disarms.
            if (reservedPasidArmed.remove(mock)) {
                throw ErrnoException.of(Errno.ENOMEM, "attach %s pasid %d: the mock's scripted failure", device.name(), pasid);
            }
            reservedPasidArmed.add(mock);
        }
        attachments.get(mock).put(pasid, domain);
    }

    /** The mock keeps no PASID table of its own, like SMMUv3: the guest's stage 1 holds it. */
    @Override
    public boolean userPasidTable() {
        return true;
    }

    @Override
    public synchronized void detach(IommuDevice device, int pasid) {
        MockDevice mock = checkDevice(device);
        if (pasid == PASID_RESERVED) {
            reservedPasidArmed.remove(mock);
        }
        attachments.get(mock).remove(pasid);
    }

    /** {@return the devices on the mock bus, oldest first, so a test or demo can issue their DMA} */
    public synchronized List<MockDevice> devices() {
        List<MockDevice> devices = new ArrayList<>(attachments.keySet());
        devices.sort(Comparator.comparingInt(MockDevice::number));
        return devices;
    }

    /** {@return what {@code device} has attached at {@code pasid}, or null when blocked} */
    synchronized IommuDomain attached(MockDevice device, int pasid) {
        Map<Integer, IommuDomain> attached = attachments.get(device);
        return attached == null ? null : attached.get(pasid);
    }

    PageTableWalker walker() {
        return walker;
    }

    private MockDevice checkDevice(IommuDevice device) {
        if (!(device instanceof MockDevice mock) || mock.driver() != this) {
            throw ErrnoException.of(Errno.EINVAL, "%s is not behind this mock IOMMU", device.name());
        }
        return mock;
    }
}
