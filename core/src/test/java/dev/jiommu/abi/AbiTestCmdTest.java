package dev.jiommu.abi;

import dev.jiommu.driver.mock.MockIommuDriver;
import dev.jiommu.errno.Errno;
import dev.jiommu.iommu.SelftestDevices;
import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.iommufd.IommufdFile;
import dev.jiommu.iommufd.IommufdSelftest;
import dev.jiommu.mem.DmaBuf;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;

import static dev.jiommu.abi.TestCmdStruct.OP_ACCESS_PAGES;
import static dev.jiommu.abi.TestCmdStruct.OP_ACCESS_REPLACE_IOAS;
import static dev.jiommu.abi.TestCmdStruct.OP_ACCESS_RW;
import static dev.jiommu.abi.TestCmdStruct.OP_ADD_RESERVED;
import static dev.jiommu.abi.TestCmdStruct.OP_CREATE_ACCESS;
import static dev.jiommu.abi.TestCmdStruct.OP_DESTROY_ACCESS_PAGES;
import static dev.jiommu.abi.TestCmdStruct.OP_DEV_CHECK_CACHE;
import static dev.jiommu.abi.TestCmdStruct.OP_DIRTY;
import static dev.jiommu.abi.TestCmdStruct.OP_DMABUF_GET;
import static dev.jiommu.abi.TestCmdStruct.OP_DMABUF_REVOKE;
import static dev.jiommu.abi.TestCmdStruct.OP_MD_CHECK_IOTLB;
import static dev.jiommu.abi.TestCmdStruct.OP_MD_CHECK_MAP;
import static dev.jiommu.abi.TestCmdStruct.OP_MD_CHECK_REFS;
import static dev.jiommu.abi.TestCmdStruct.OP_MOCK_DOMAIN;
import static dev.jiommu.abi.TestCmdStruct.OP_MOCK_DOMAIN_FLAGS;
import static dev.jiommu.abi.TestCmdStruct.OP_MOCK_DOMAIN_REPLACE;
import static dev.jiommu.abi.TestCmdStruct.OP_PASID_ATTACH;
import static dev.jiommu.abi.TestCmdStruct.OP_PASID_CHECK_HWPT;
import static dev.jiommu.abi.TestCmdStruct.OP_PASID_DETACH;
import static dev.jiommu.abi.TestCmdStruct.OP_PASID_REPLACE;
import static dev.jiommu.abi.TestCmdStruct.OP_SET_TEMP_MEMORY_LIMIT;
import static dev.jiommu.abi.TestCmdStruct.OP_TRIGGER_IOPF;
import static dev.jiommu.abi.TestCmdStruct.OP_TRIGGER_VEVENT;
import static org.assertj.core.api.Assertions.assertThat;

/** Every IOMMU_TEST_CMD operation through bytes, its arguments at the union offsets of §8.1. */
class AbiTestCmdTest extends AbiFixture {
    private static final int RW = Iommufd.MAP_READABLE | Iommufd.MAP_WRITEABLE;
    private final int ioas = ctx.ioasAlloc();

    /** A 72-byte iommu_test_cmd for {@code op} on {@code id}; the caller fills the union at its absolute offsets. */
    private static ByteBuffer test(int op, int id) {
        return struct(72).putInt(0, 72).putInt(4, op).putInt(8, id);
    }

    private long run(ByteBuffer cmd) {
        return call(IoctlNumbers.TEST_CMD, cmd);
    }

    private IommufdSelftest.MockDomain mockDomain(int ptId) {
        assertThat(run(test(OP_MOCK_DOMAIN, ptId))).isZero();
        ByteBuffer out = result(72);
        return new IommufdSelftest.MockDomain(out.getInt(16), out.getInt(20), out.getInt(24));
    }

    @Test
    void mockDomainBindsAttachesAndAnswersItsThreeIds() {
        IommufdSelftest.MockDomain md = mockDomain(ioas);
        long iova = ctx.ioasMap(ioas, RW, MAP_VA, 4 * PAGE, 0);
        assertThat(run(test(OP_MD_CHECK_MAP, md.hwptId()).putLong(16, iova).putLong(24, 4 * PAGE).putLong(32, MAP_VA))).isZero();
        assertThat(run(test(OP_MD_CHECK_MAP, md.hwptId()).putLong(16, iova).putLong(24, 4 * PAGE).putLong(32, BUFFER)))
                .isEqualTo(err(Errno.EINVAL));
        assertThat(run(test(OP_MD_CHECK_REFS, 0).putLong(16, 4 * PAGE).putLong(24, MAP_VA).putInt(32, 1))).isZero();
        assertThat(run(test(OP_MD_CHECK_REFS, 0).putLong(16, 4 * PAGE).putLong(24, MAP_VA).putInt(32, 0))).isEqualTo(err(Errno.EIO));
        assertThat(run(test(OP_MOCK_DOMAIN_FLAGS, ioas).putInt(28, 1 << 7))).as("unknown device flags").isEqualTo(err(Errno.EINVAL));
        assertThat(run(test(OP_MOCK_DOMAIN_FLAGS, ioas).putInt(28, SelftestDevices.NO_DIRTY))).isZero();
        assertThat(run(test(OP_MOCK_DOMAIN, ioas + 50))).isEqualTo(err(Errno.ENOENT));
        assertThat(ctx.ioasUnmap(ioas, iova, 4 * PAGE)).isEqualTo(4 * PAGE);
        assertThat(run(test(OP_MD_CHECK_REFS, 0).putLong(16, 4 * PAGE).putLong(24, MAP_VA).putInt(32, 0))).isZero();
    }

    @Test
    void aMockDomainWhoseAnswerCannotBeWrittenIsUndone() {
        int objects = ctx.objectCount();
        assertThat(callReadOnly(IoctlNumbers.TEST_CMD, test(OP_MOCK_DOMAIN, ioas))).isEqualTo(err(Errno.EFAULT));
        assertThat(ctx.objectCount()).as("device, selftest object and auto domain gone").isEqualTo(objects);
    }

    @Test
    void addReservedAndReplace() {
        assertThat(run(test(OP_ADD_RESERVED, ioas).putLong(16, 0x10000).putLong(24, 0x1000))).isZero();
        assertThat(ctx.ioasIovaRanges(ioas).ranges()).hasSize(2);
        assertThat(run(test(OP_ADD_RESERVED, ioas).putLong(16, 0x10000).putLong(24, 0))).isEqualTo(err(Errno.EINVAL));
        IommufdSelftest.MockDomain md = mockDomain(ioas);
        int hwpt = ctx.hwptAlloc(0, md.idevId(), ioas, Iommufd.HWPT_DATA_NONE, null, 0);
        assertThat(run(test(OP_MOCK_DOMAIN_REPLACE, md.stdevId()).putInt(16, hwpt))).isZero();
        assertThat(result(72).getInt(16)).isEqualTo(hwpt);
        assertThat(run(test(OP_MOCK_DOMAIN_REPLACE, md.stdevId()).putInt(16, ioas))).isZero();
        assertThat(result(72).getInt(16)).as("the auto domain, not the IOAS").isNotEqualTo(ioas);
    }

    @Test
    void accessesAreNamedByTheirFd() {
        mockDomain(ioas);
        long iova = ctx.ioasMap(ioas, RW, MAP_VA, 4 * PAGE, 0);
        assertThat(run(test(OP_CREATE_ACCESS, ioas).putInt(20, 2))).isEqualTo(err(Errno.EOPNOTSUPP));
        assertThat(run(test(OP_CREATE_ACCESS, ioas).putInt(20, IommufdSelftest.ACCESS_CREATE_NEEDS_PIN_PAGES))).isZero();
        int accessFd = result(72).getInt(16);
        assertThat(fds.lookup(accessFd)).isInstanceOf(FdTable.SelftestAccess.class);

        ByteBuffer pages = test(OP_ACCESS_PAGES, accessFd).putInt(16, IommufdSelftest.ACCESS_PAGES_WRITE).putLong(24, iova)
                .putLong(32, 2 * PAGE).putLong(40, MAP_VA);
        assertThat(run(pages)).isZero();
        int item = result(72).getInt(20);
        assertThat(caller.pinCount(MAP_VA)).as("one pin per pages object, shared by the domain and the access").isEqualTo(1);
        assertThat(run(pages)).isZero();
        int second = result(72).getInt(20);
        assertThat(second).isEqualTo(item + 1);
        assertThat(run(test(OP_DESTROY_ACCESS_PAGES, accessFd).putInt(16, second))).isZero();

        write(BUFFER, struct(8).putLong(0x0123_4567_89ab_cdefL));
        assertThat(run(test(OP_ACCESS_RW, accessFd).putLong(16, iova + 8).putLong(24, 8).putLong(32, BUFFER)
                .putInt(40, IommufdSelftest.ACCESS_RW_WRITE))).isZero();
        assertThat(read(MAP_VA + 8, 8).getLong(0)).isEqualTo(0x0123_4567_89ab_cdefL);
        assertThat(run(test(OP_ACCESS_RW, accessFd).putLong(16, iova).putLong(24, 8).putLong(32, BUFFER).putInt(40, 1 << 5)))
                .isEqualTo(err(Errno.EOPNOTSUPP));
        assertThat(run(test(OP_ACCESS_RW, 1234).putLong(16, iova).putLong(24, 8).putLong(32, BUFFER))).as("no such fd")
                .isEqualTo(err(Errno.EBADFD));
        assertThat(run(test(OP_ACCESS_RW, 1234).putLong(16, iova).putLong(24, 1L << 30).putLong(32, BUFFER)))
                .as("length before the fd").isEqualTo(err(Errno.ENOMEM));
        int faultFd = fds.install(ctx.faultQueueAlloc(0).file());
        assertThat(run(test(OP_DESTROY_ACCESS_PAGES, faultFd).putInt(16, item))).as("not an access").isEqualTo(err(Errno.EBADFD));

        assertThat(run(test(OP_DESTROY_ACCESS_PAGES, accessFd).putInt(16, item))).isZero();
        assertThat(run(test(OP_DESTROY_ACCESS_PAGES, accessFd).putInt(16, item))).isEqualTo(err(Errno.ENOENT));

        int other = ctx.ioasAlloc();
        assertThat(run(test(OP_ACCESS_REPLACE_IOAS, accessFd).putInt(16, other))).isZero();
        fds.close(accessFd);
        assertThat(run(test(OP_ACCESS_PAGES, accessFd).putLong(24, iova).putLong(32, PAGE))).isEqualTo(err(Errno.EBADFD));
    }

    @Test
    void anAccessPinWhoseIdCannotBeWrittenIsReleased() {
        mockDomain(ioas);
        long iova = ctx.ioasMap(ioas, RW, MAP_VA, 4 * PAGE, 0);
        int accessFd = fds.install(new FdTable.SelftestAccess(selftest,
                selftest.createAccess(ioas, IommufdSelftest.ACCESS_CREATE_NEEDS_PIN_PAGES)));
        ByteBuffer pages = test(OP_ACCESS_PAGES, accessFd).putLong(24, iova).putLong(32, PAGE);
        assertThat(callReadOnly(IoctlNumbers.TEST_CMD, pages)).isEqualTo(err(Errno.EFAULT));
        assertThat(caller.pinCount(MAP_VA)).as("the domain's pin only").isEqualTo(1);
        int open = fds.openCount();
        assertThat(callReadOnly(IoctlNumbers.TEST_CMD, test(OP_CREATE_ACCESS, ioas))).isEqualTo(err(Errno.EFAULT));
        assertThat(fds.openCount()).isEqualTo(open);
    }

    @Test
    void dirtyMarksWhatTheBitmapSaysAndCountsIt() {
        IommufdSelftest.MockDomain md = mockDomain(ioas);
        int hwpt = ctx.hwptAlloc(Iommufd.HWPT_ALLOC_DIRTY_TRACKING, md.idevId(), ioas, Iommufd.HWPT_DATA_NONE, null, 0);
        ctx.optionSet(Iommufd.OPTION_HUGE_PAGES, ioas, 0); // one IOPTE per page, one bit per IOPTE
        long iova = ctx.ioasMap(ioas, RW, MAP_VA, 8 * PAGE, 0);
        ctx.hwptSetDirtyTracking(hwpt, Iommufd.DIRTY_TRACKING_ENABLE);
        write(BUFFER, struct(1).put((byte) 0b1001_0001));
        ByteBuffer dirty = test(OP_DIRTY, hwpt).putInt(16, 0).putLong(24, iova).putLong(32, 8 * PAGE).putLong(40, PAGE).putLong(48, BUFFER);
        assertThat(run(dirty)).isZero();
        assertThat(result(72).getLong(56)).as("out_nr_dirty").isEqualTo(3);
        assertThat(ctx.hwptGetDirtyBitmap(hwpt, 0, iova, 8 * PAGE, PAGE).cardinality()).isEqualTo(3);
        assertThat(run(dirty.putLong(40, 0))).isEqualTo(err(Errno.EINVAL));
    }

    @Test
    void iotlbDeviceCacheFaultsAndEvents() {
        IommufdSelftest.MockDomain md = mockDomain(ioas);
        int parent = ctx.hwptAlloc(Iommufd.HWPT_ALLOC_NEST_PARENT, md.idevId(), ioas, Iommufd.HWPT_DATA_NONE, null, 0);
        byte[] data = struct(8).putInt(0x55).array();
        int nested = ctx.hwptAlloc(0, md.idevId(), parent, MockIommuDriver.HWPT_DATA_SELFTEST, data, 0);
        assertThat(run(test(OP_MD_CHECK_IOTLB, nested).putInt(16, 2).putInt(20, 0x55))).isZero();
        assertThat(run(test(OP_MD_CHECK_IOTLB, nested).putInt(16, 2).putInt(20, 0x56))).isEqualTo(err(Errno.EINVAL));
        assertThat(run(test(OP_DEV_CHECK_CACHE, md.idevId()).putInt(16, 0).putInt(20, 0xbaddad))).isZero();
        assertThat(run(test(OP_DEV_CHECK_CACHE, md.idevId()).putInt(16, 4).putInt(20, 0xbaddad))).isEqualTo(err(Errno.EINVAL));

        Iommufd.FaultQueueAlloc fault = ctx.faultQueueAlloc(0);
        int faulting = ctx.hwptAlloc(Iommufd.HWPT_ALLOC_FAULT_ID_VALID, md.idevId(), ioas, Iommufd.HWPT_DATA_NONE, null, fault.faultId());
        selftest.mockDomainReplace(md.stdevId(), faulting);
        assertThat(run(test(OP_TRIGGER_IOPF, 0).putInt(16, md.idevId()).putInt(20, 0).putInt(24, 2).putInt(28, 3).putLong(32, 0xabc000L)))
                .isZero();
        byte[] record = new byte[40];
        assertThat(fault.file().read(record)).isEqualTo(40);
        assertThat(ByteBuffer.wrap(record).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong(24)).isEqualTo(0xabc000L);
        selftest.mockDomainReplace(md.stdevId(), ioas);

        assertThat(run(test(OP_TRIGGER_VEVENT, 0).putInt(16, md.idevId()))).as("no vIOMMU attach").isEqualTo(err(Errno.ENOENT));
        int viommu = ctx.viommuAlloc(0, 0xdeadbeef, md.idevId(), parent, null).viommuId();
        ctx.vdeviceAlloc(viommu, md.idevId(), 9);
        Iommufd.VeventqAlloc queue = ctx.veventqAlloc(0, viommu, IommufdSelftest.VEVENTQ_TYPE_SELFTEST, 2);
        int viaViommu = ctx.hwptAlloc(0, md.idevId(), viommu, MockIommuDriver.HWPT_DATA_SELFTEST, data, 0);
        selftest.mockDomainReplace(md.stdevId(), viaViommu);
        assertThat(run(test(OP_TRIGGER_VEVENT, 0).putInt(16, md.idevId()))).isZero();
        assertThat(queue.file().read(new byte[12])).isEqualTo(12);
        selftest.mockDomainReplace(md.stdevId(), ioas);
    }

    @Test
    void pasidAttachReplaceDetachAndCheck() {
        assertThat(run(test(OP_MOCK_DOMAIN_FLAGS, ioas).putInt(28, SelftestDevices.PASID))).isZero();
        int stdev = result(72).getInt(16);
        int idev = result(72).getInt(24);
        int hwpt = ctx.hwptAlloc(Iommufd.HWPT_ALLOC_PASID, idev, ioas, Iommufd.HWPT_DATA_NONE, null, 0);
        int other = ctx.hwptAlloc(Iommufd.HWPT_ALLOC_PASID, idev, ioas, Iommufd.HWPT_DATA_NONE, null, 0);
        assertThat(run(test(OP_PASID_ATTACH, stdev).putInt(16, 100).putInt(20, hwpt))).as("the RID is on a non-PASID domain")
                .isEqualTo(err(Errno.EINVAL));
        assertThat(run(test(OP_MOCK_DOMAIN_REPLACE, stdev).putInt(16, hwpt))).isZero();
        assertThat(run(test(OP_PASID_ATTACH, stdev).putInt(16, 100).putInt(20, hwpt))).isZero();
        assertThat(result(72).getInt(20)).isEqualTo(hwpt);
        assertThat(run(test(OP_PASID_CHECK_HWPT, stdev).putInt(16, 100).putInt(20, hwpt))).isZero();
        assertThat(run(test(OP_PASID_REPLACE, stdev).putInt(16, 100).putInt(20, other))).isZero();
        assertThat(run(test(OP_PASID_CHECK_HWPT, stdev).putInt(16, 100).putInt(20, hwpt))).isEqualTo(err(Errno.EINVAL));
        assertThat(run(test(OP_PASID_DETACH, stdev).putInt(16, 100))).isZero();
        assertThat(run(test(OP_PASID_CHECK_HWPT, stdev).putInt(16, 100).putInt(20, 0))).isZero();
        // An attach the caller cannot hear about is taken back.
        assertThat(callReadOnly(IoctlNumbers.TEST_CMD, test(OP_PASID_ATTACH, stdev).putInt(16, 101).putInt(20, hwpt))).isEqualTo(err(Errno.EFAULT));
        assertThat(run(test(OP_PASID_CHECK_HWPT, stdev).putInt(16, 101).putInt(20, 0))).isZero();
    }

    @Test
    void dmabufGetAnswersAnFdThatMapFileAndRevokeTake() {
        IommufdSelftest.MockDomain md = mockDomain(ioas);
        long fd = run(test(OP_DMABUF_GET, 0).putInt(16, (int) (3 * PAGE - 5)).putInt(20, 0x80000));
        assertThat(fd).as("the fd is the ioctl's value").isGreaterThanOrEqualTo(LocalFdTable.FIRST_FD);
        DmaBuf buf = (DmaBuf) fds.lookup((int) fd);
        assertThat(buf.sizeBytes()).isEqualTo(3 * PAGE);
        ByteBuffer mapFile = struct(40).putInt(40).putInt(RW).putInt(ioas).putInt((int) fd).putLong(0).putLong(2 * PAGE).putLong(0);
        assertThat(call(IoctlNumbers.IOAS_MAP_FILE, mapFile)).isZero();
        assertThat(run(test(OP_DMABUF_REVOKE, 0).putInt(16, (int) fd).putInt(20, 1))).isZero();
        assertThat(call(IoctlNumbers.IOAS_MAP_FILE, mapFile)).isEqualTo(err(Errno.ENODEV));
        assertThat(run(test(OP_DMABUF_REVOKE, 0).putInt(16, 999).putInt(20, 0))).isEqualTo(err(Errno.EBADF));
        int memfd = fds.install(new dev.jiommu.mem.MemoryFile(memory, "memfd", PAGE, true));
        assertThat(run(test(OP_DMABUF_REVOKE, 0).putInt(16, memfd).putInt(20, 0))).as("not a dma-buf").isEqualTo(err(Errno.EINVAL));
        assertThat(run(test(OP_DMABUF_GET, 0).putInt(16, 0))).isEqualTo(err(Errno.EINVAL));
        assertThat(md.hwptId()).isPositive();
    }

    @Test
    void theRestOfTheOps() {
        assertThat(run(test(OP_SET_TEMP_MEMORY_LIMIT, 0).putInt(16, 11))).isEqualTo(err(Errno.EINVAL));
        assertThat(run(test(OP_SET_TEMP_MEMORY_LIMIT, 0).putInt(16, 16))).isZero();
        assertThat(run(test(OP_SET_TEMP_MEMORY_LIMIT, 0).putInt(16, -1))).as("a u32 above 2^31").isZero();
        assertThat(run(test(0, 0))).isEqualTo(err(Errno.EOPNOTSUPP));
        assertThat(run(test(24, 0))).as("MD_CHECK_DMABUF: dev tree only").isEqualTo(err(Errno.EOPNOTSUPP));
        assertThat(run(test(OP_ACCESS_PAGES, 0).putInt(16, 1 << 3))).as("flags before the fd").isEqualTo(err(Errno.EOPNOTSUPP));
        assertThat(result(72).getInt(0)).isEqualTo(72);
        assertThat(fds.openCount()).isZero();
        assertThat(IommufdFile.class).isNotNull();
    }
}
