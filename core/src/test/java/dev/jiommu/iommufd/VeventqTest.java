package dev.jiommu.iommufd;

import dev.jiommu.driver.mock.MockIommuDriver;
import dev.jiommu.errno.Errno;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import static org.assertj.core.api.Assertions.assertThat;

/** vEVENTQ (iommufd-uapi.md §5.2) fed by the selftest's TRIGGER_VEVENT. */
class VeventqTest extends IommufdFixture {
    private static final int TYPE = IommufdSelftest.VEVENTQ_TYPE_SELFTEST;
    private static final int VIRT_ID = 0x99;

    private IommufdSelftest.MockDomain md;
    private int viommu;

    @BeforeEach
    void deviceThroughAViommu() {
        int ioas = testIoctlIoasAlloc();
        md = testCmdMockDomain(ioas);
        int parent = fd.hwptAlloc(Iommufd.HWPT_ALLOC_NEST_PARENT, md.idevId(), ioas, Iommufd.HWPT_DATA_NONE, null, 0);
        viommu = fd.viommuAlloc(0, 0xdeadbeef, md.idevId(), parent, null).viommuId();
        fd.vdeviceAlloc(viommu, md.idevId(), VIRT_ID);
        int nested = fd.hwptAlloc(0, md.idevId(), viommu, MockIommuDriver.HWPT_DATA_SELFTEST, new byte[8], 0);
        test.mockDomainReplace(md.stdevId(), nested);
    }

    @Test
    void allocRefusesBadArgumentsAndASecondQueueOfOneType() {
        assertErrno(Errno.EOPNOTSUPP, () -> fd.veventqAlloc(1, viommu, TYPE, 2));
        assertErrno(Errno.EOPNOTSUPP, () -> fd.veventqAlloc(0, viommu, 0, 2));
        assertErrno(Errno.EINVAL, () -> fd.veventqAlloc(0, viommu, TYPE, 0));
        assertErrno(Errno.ENOENT, () -> fd.veventqAlloc(0, md.idevId(), TYPE, 2));
        assertErrno(Errno.EOPNOTSUPP, () -> test.triggerVevent(md.idevId()));
        Iommufd.VeventqAlloc queue = fd.veventqAlloc(0, viommu, TYPE, 2);
        assertErrno(Errno.EEXIST, () -> fd.veventqAlloc(0, viommu, TYPE, 2));
        assertErrno(Errno.EBUSY, () -> fd.destroy(queue.veventqId()));
        assertErrno(Errno.EBUSY, () -> fd.destroy(viommu));
        queue.file().close();
        fd.destroy(queue.veventqId());
        fd.veventqAlloc(0, viommu, TYPE, 2).file().close();
    }

    @Test
    void aFullQueueDropsEventsBehindOneLostEventsMarker() {
        IommufdFile file = fd.veventqAlloc(0, viommu, TYPE, 2).file();
        assertThat(file.poll()).isZero();
        for (int i = 0; i < 3; i++) {
            test.triggerVevent(md.idevId());
        }
        assertErrno(Errno.EINVAL, () -> file.read(new byte[7]));
        assertErrno(Errno.EINVAL, () -> file.read(new byte[11]));
        byte[] buffer = new byte[64];
        assertThat(file.read(buffer)).isEqualTo(12 + 12 + 8);
        ByteBuffer b = ByteBuffer.wrap(buffer).order(ByteOrder.LITTLE_ENDIAN);
        assertThat(b.getInt(0)).isZero();
        assertThat(b.getInt(4)).isZero();
        assertThat(b.getInt(8)).isEqualTo(VIRT_ID);
        assertThat(b.getInt(16)).isEqualTo(1);
        assertThat(b.getInt(24)).as("the lost-events marker").isEqualTo(1);
        assertThat(b.getInt(28)).isEqualTo(2);

        test.triggerVevent(md.idevId());
        byte[] next = new byte[12];
        assertThat(file.read(next)).isEqualTo(12);
        assertThat(ByteBuffer.wrap(next).order(ByteOrder.LITTLE_ENDIAN).getInt(4)).isEqualTo(3);
        assertThat(file.read(new byte[12])).isZero();
    }

    @Test
    void triggerNeedsAVdeviceAndANestedAttachment() {
        fd.veventqAlloc(0, viommu, TYPE, 4);
        IommufdSelftest.MockDomain plain = testCmdMockDomain(testIoctlIoasAlloc());
        assertErrno(Errno.ENOENT, () -> test.triggerVevent(plain.idevId()));
    }
}
