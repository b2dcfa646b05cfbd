package dev.jiommu.abi;

import dev.jiommu.driver.mock.MockIommuDriver;
import dev.jiommu.errno.Errno;
import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.iommufd.IommufdFile;
import dev.jiommu.iommufd.IommufdSelftest;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import static org.assertj.core.api.Assertions.assertThat;

/** FAULT_QUEUE_ALLOC, VIOMMU_ALLOC, VDEVICE_ALLOC, VEVENTQ_ALLOC and HW_QUEUE_ALLOC through bytes, with their fds. */
class AbiViommuCommandsTest extends AbiFixture {
    private static final int TYPE_SELFTEST = 0xdeadbeef;
    private static final int VEVENTQ_TYPE_SELFTEST = IommufdSelftest.VEVENTQ_TYPE_SELFTEST;

    private final int ioas = ctx.ioasAlloc();
    private final IommufdSelftest.MockDomain md = selftest.mockDomain(ioas);
    private final int parent = ctx.hwptAlloc(Iommufd.HWPT_ALLOC_NEST_PARENT, md.idevId(), ioas, Iommufd.HWPT_DATA_NONE, null, 0);

    private static ByteBuffer viommuAlloc(int flags, int type, int devId, int hwptId, int dataLen, long dataUptr) {
        return struct(40).putInt(40).putInt(flags).putInt(type).putInt(devId).putInt(hwptId).putInt(0).putInt(dataLen).putInt(0)
                .putLong(dataUptr);
    }

    private static ByteBuffer veventqAlloc(int flags, int viommuId, int type, int depth) {
        return struct(32).putInt(32).putInt(flags).putInt(viommuId).putInt(type).putInt(depth).putInt(0).putInt(0).putInt(0);
    }

    private int viommu() {
        assertThat(call(IoctlNumbers.VIOMMU_ALLOC, viommuAlloc(0, TYPE_SELFTEST, md.idevId(), parent, 0, 0))).isZero();
        return result(40).getInt(20);
    }

    @Test
    void faultQueueAllocGivesAnIdAndAnFdThatHoldsIt() {
        assertThat(call(IoctlNumbers.FAULT_QUEUE_ALLOC, struct(16).putInt(16))).isZero();
        int faultId = result(16).getInt(8);
        int fd = result(16).getInt(12);
        assertThat(fd).isGreaterThanOrEqualTo(LocalFdTable.FIRST_FD);
        assertThat(fds.lookup(fd)).isInstanceOf(IommufdFile.class);
        assertThat(call(IoctlNumbers.DESTROY, struct(8).putInt(8).putInt(faultId))).as("the fd holds it").isEqualTo(err(Errno.EBUSY));
        fds.close(fd);
        assertThat(call(IoctlNumbers.DESTROY, struct(8).putInt(8).putInt(faultId))).isZero();
        assertThat(call(IoctlNumbers.FAULT_QUEUE_ALLOC, struct(16).putInt(16).putInt(1))).isEqualTo(err(Errno.EOPNOTSUPP));
    }

    @Test
    void aFaultQueueWhoseAnswerCannotBeWrittenIsGoneWithItsFd() {
        int objects = ctx.objectCount();
        assertThat(callReadOnly(IoctlNumbers.FAULT_QUEUE_ALLOC, struct(16).putInt(16))).isEqualTo(err(Errno.EFAULT));
        assertThat(ctx.objectCount()).isEqualTo(objects);
        assertThat(fds.openCount()).isZero();
    }

    @Test
    void aFaultQueueWithNoFdLeftIsGoneAgain() {
        LocalFdTable full = new LocalFdTable(4);
        full.installOther("fd 3");
        AbiDecoder decoder = new AbiDecoder(ctx, caller, full, ctx.accounting());
        int objects = ctx.objectCount();
        caller.write(ARG, struct(16).putInt(16).array());
        assertThat(decoder.ioctl(IoctlNumbers.FAULT_QUEUE_ALLOC, ARG)).isEqualTo(err(Errno.EMFILE));
        assertThat(ctx.objectCount()).isEqualTo(objects);
    }

    @Test
    void aFaultRaisedByTheDeviceIsReadFromTheFd() {
        assertThat(call(IoctlNumbers.FAULT_QUEUE_ALLOC, struct(16).putInt(16))).isZero();
        int faultId = result(16).getInt(8);
        IommufdFile file = (IommufdFile) fds.lookup(result(16).getInt(12));
        int hwpt = ctx.hwptAlloc(Iommufd.HWPT_ALLOC_FAULT_ID_VALID, md.idevId(), ioas, Iommufd.HWPT_DATA_NONE, null, faultId);
        selftest.mockDomainReplace(md.stdevId(), hwpt);
        selftest.triggerIopf(md.idevId(), 0, 2, 3, 0xdeadbeafL);
        byte[] record = new byte[40];
        assertThat(file.read(record)).isEqualTo(40);
        ByteBuffer fault = ByteBuffer.wrap(record).order(ByteOrder.LITTLE_ENDIAN);
        assertThat(fault.getInt(4)).as("dev_id").isEqualTo(md.idevId());
        assertThat(fault.getLong(24)).isEqualTo(0xdeadbeafL);
        byte[] response = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(fault.getInt(36)).putInt(0).array();
        assertThat(file.write(response)).isEqualTo(8);
        selftest.mockDomainReplace(md.stdevId(), ioas);
    }

    @Test
    void viommuAllocEchoesThePayloadIntoTheCallersBuffer() {
        fill(BUFFER, 32, 0xaa);
        write(BUFFER, struct(8).putInt(0xcafe).putInt(0));
        assertThat(call(IoctlNumbers.VIOMMU_ALLOC, viommuAlloc(0, TYPE_SELFTEST, md.idevId(), parent, 24, BUFFER))).isZero();
        int viommu = result(40).getInt(20);
        ByteBuffer out = read(BUFFER, 32);
        assertThat(out.getInt(4)).as("out_data").isEqualTo(0xcafe);
        long offset = out.getLong(8);
        assertThat(out.getLong(16)).as("out_mmap_length").isEqualTo(2 * PAGE);
        assertThat(out.getLong(24)).as("past data_len untouched").isEqualTo(0xaaaaaaaaaaaaaaaaL);
        try (Iommufd.MmioMapping window = ctx.mmap(offset, 2 * PAGE)) {
            assertThat(window.memory().get(Layouts.U32, 0)).isEqualTo(0xcafe);
        }
        // An 8-byte payload gets 8 bytes back: the first version of the struct.
        fill(BUFFER, 16, 0xaa);
        write(BUFFER, struct(4).putInt(0xbeef));
        assertThat(call(IoctlNumbers.VIOMMU_ALLOC, viommuAlloc(0, TYPE_SELFTEST, md.idevId(), parent, 8, BUFFER))).isZero();
        assertThat(read(BUFFER, 16).getInt(4)).isEqualTo(0xbeef);
        assertThat(read(BUFFER, 16).getLong(8)).isEqualTo(0xaaaaaaaaaaaaaaaaL);
        assertThat(viommu).isPositive();
    }

    @Test
    void viommuAllocRules() {
        int objects = ctx.objectCount();
        assertThat(call(IoctlNumbers.VIOMMU_ALLOC, viommuAlloc(1, TYPE_SELFTEST, md.idevId(), parent, 24, UNMAPPED)))
                .as("flags before the payload").isEqualTo(err(Errno.EOPNOTSUPP));
        assertThat(call(IoctlNumbers.VIOMMU_ALLOC, viommuAlloc(0, 0, md.idevId(), parent, 0, 0))).isEqualTo(err(Errno.EOPNOTSUPP));
        assertThat(call(IoctlNumbers.VIOMMU_ALLOC, viommuAlloc(0, TYPE_SELFTEST, md.idevId(), parent, 24, UNMAPPED))).isEqualTo(err(Errno.EFAULT));
        assertThat(call(IoctlNumbers.VIOMMU_ALLOC, viommuAlloc(0, TYPE_SELFTEST, md.idevId(), parent, 4, BUFFER))).isEqualTo(err(Errno.EINVAL));
        assertThat(call(IoctlNumbers.VIOMMU_ALLOC, viommuAlloc(0, TYPE_SELFTEST, md.idevId(), md.hwptId(), 0, 0))).as("not a nest parent")
                .isEqualTo(err(Errno.EINVAL));
        // The payload read fine but the answer cannot be written there: the vIOMMU goes again.
        assertThat(call(IoctlNumbers.VIOMMU_ALLOC, viommuAlloc(0, TYPE_SELFTEST, md.idevId(), parent, 8, READ_ONLY))).isEqualTo(err(Errno.EFAULT));
        assertThat(callReadOnly(IoctlNumbers.VIOMMU_ALLOC, viommuAlloc(0, TYPE_SELFTEST, md.idevId(), parent, 0, 0))).isEqualTo(err(Errno.EFAULT));
        assertThat(ctx.objectCount()).isEqualTo(objects);
        assertThat(call(IoctlNumbers.DESTROY, struct(8).putInt(8).putInt(parent))).as("nobody holds the parent").isZero();
    }

    @Test
    void vdeviceAllocWritesItsId() {
        int viommu = viommu();
        ByteBuffer vdev = struct(24).putInt(24).putInt(viommu).putInt(md.idevId()).putInt(0).putLong(0x42);
        assertThat(call(IoctlNumbers.VDEVICE_ALLOC, vdev)).isZero();
        int vdevId = result(24).getInt(12);
        assertThat(call(IoctlNumbers.VDEVICE_ALLOC, vdev)).isEqualTo(err(Errno.EEXIST));
        assertThat(call(IoctlNumbers.DESTROY, struct(8).putInt(8).putInt(viommu))).isEqualTo(err(Errno.EBUSY));
        assertThat(call(IoctlNumbers.DESTROY, struct(8).putInt(8).putInt(vdevId))).isZero();
        int objects = ctx.objectCount();
        assertThat(callReadOnly(IoctlNumbers.VDEVICE_ALLOC, vdev)).isEqualTo(err(Errno.EFAULT));
        assertThat(ctx.objectCount()).isEqualTo(objects);
    }

    @Test
    void veventqAllocGivesAnFdThatReadsTheEvents() {
        int viommu = viommu();
        assertThat(call(IoctlNumbers.VEVENTQ_ALLOC, veventqAlloc(0, viommu, VEVENTQ_TYPE_SELFTEST, 4).putInt(28, 1))).isEqualTo(err(Errno.EOPNOTSUPP));
        assertThat(call(IoctlNumbers.VEVENTQ_ALLOC, veventqAlloc(0, viommu, 0, 4))).isEqualTo(err(Errno.EOPNOTSUPP));
        assertThat(call(IoctlNumbers.VEVENTQ_ALLOC, veventqAlloc(0, viommu, VEVENTQ_TYPE_SELFTEST, 0))).isEqualTo(err(Errno.EINVAL));
        assertThat(call(IoctlNumbers.VEVENTQ_ALLOC, veventqAlloc(0, viommu, VEVENTQ_TYPE_SELFTEST, 4))).isZero();
        int queueId = result(32).getInt(20);
        IommufdFile file = (IommufdFile) fds.lookup(result(32).getInt(24));
        assertThat(call(IoctlNumbers.VEVENTQ_ALLOC, veventqAlloc(0, viommu, VEVENTQ_TYPE_SELFTEST, 4))).isEqualTo(err(Errno.EEXIST));

        ctx.vdeviceAlloc(viommu, md.idevId(), 0x77);
        int nested = ctx.hwptAlloc(0, md.idevId(), viommu, MockIommuDriver.HWPT_DATA_SELFTEST, new byte[8], 0);
        selftest.mockDomainReplace(md.stdevId(), nested);
        selftest.triggerVevent(md.idevId());
        byte[] event = new byte[12];
        assertThat(file.read(event)).isEqualTo(12);
        assertThat(ByteBuffer.wrap(event).order(ByteOrder.LITTLE_ENDIAN).getInt(8)).as("virt_id").isEqualTo(0x77);
        assertThat(queueId).isPositive();
        selftest.mockDomainReplace(md.stdevId(), ioas);
    }

    @Test
    void hwQueueAllocPinsAndLocksTheQueueMemory() {
        int viommu = viommu();
        long iova = ctx.ioasMap(ioas, Iommufd.MAP_READABLE | Iommufd.MAP_WRITEABLE, MAP_VA, 4 * PAGE, 0);
        ByteBuffer queue = struct(40).putInt(40).putInt(0).putInt(viommu).putInt(TYPE_SELFTEST).putInt(0).putInt(0).putLong(iova).putLong(PAGE);
        assertThat(call(IoctlNumbers.HW_QUEUE_ALLOC, queue)).isZero();
        int queueId = result(40).getInt(20);
        assertThat(call(IoctlNumbers.IOAS_UNMAP, struct(24).putInt(24).putInt(ioas).putLong(iova).putLong(4 * PAGE))).isEqualTo(err(Errno.EBUSY));
        assertThat(call(IoctlNumbers.DESTROY, struct(8).putInt(8).putInt(queueId))).isZero();
        assertThat(call(IoctlNumbers.HW_QUEUE_ALLOC, queue.putInt(4, 1))).isEqualTo(err(Errno.EOPNOTSUPP));
        assertThat(call(IoctlNumbers.HW_QUEUE_ALLOC, queue.putInt(4, 0).putLong(32, 0))).isEqualTo(err(Errno.EINVAL));
    }
}
