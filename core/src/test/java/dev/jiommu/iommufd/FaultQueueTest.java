package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;

import static org.assertj.core.api.Assertions.assertThat;

/** The FAULT object and its file (iommufd-uapi.md §5.1), fed by the selftest's TRIGGER_IOPF. */
class FaultQueueTest extends IommufdFixture {
    @Test
    void theFileHoldsTheObjectAndFlagsAreRefused() {
        assertErrno(Errno.EOPNOTSUPP, () -> fd.faultQueueAlloc(1));
        Iommufd.FaultQueueAlloc fault = fd.faultQueueAlloc(0);
        assertErrno(Errno.EBUSY, () -> fd.destroy(fault.faultId()));
        fault.file().close();
        fault.file().close();
        fd.destroy(fault.faultId());
    }

    @Test
    void aFaultIsReadAsOneRecordAndAnsweredByCookie() throws InterruptedException {
        int ioas = testIoctlIoasAlloc();
        IommufdSelftest.MockDomain md = testCmdMockDomain(ioas);
        Iommufd.FaultQueueAlloc fault = fd.faultQueueAlloc(0);
        int hwpt = fd.hwptAlloc(Iommufd.HWPT_ALLOC_FAULT_ID_VALID, md.idevId(), ioas, Iommufd.HWPT_DATA_NONE, null, fault.faultId());
        assertErrno(Errno.EBUSY, () -> fd.destroy(fault.faultId()));
        // No fault-capable HWPT: the core answers the device itself and the trigger succeeds (as on 7.3).
        test.triggerIopf(md.idevId(), 0, 2, 3, 0xdeadbeafL);
        test.mockDomainReplace(md.stdevId(), hwpt);
        IommufdFile file = fault.file();
        assertThat(file.poll()).isEqualTo(IommufdFile.POLLOUT);
        assertThat(file.read(new byte[40])).isZero();

        test.triggerIopf(md.idevId(), 0, 2, 3, 0xdeadbeafL);
        assertThat(file.poll() & IommufdFile.POLLIN).isNotZero();
        assertErrno(Errno.ESPIPE, () -> file.read(new byte[39]));
        byte[] record = new byte[40];
        assertThat(file.read(record, Duration.ofSeconds(1))).isEqualTo(40);
        ByteBuffer r = ByteBuffer.wrap(record).order(ByteOrder.LITTLE_ENDIAN);
        assertThat(r.getInt(0)).as("flags: LAST_PAGE, no PASID").isEqualTo(2);
        assertThat(r.getInt(4)).isEqualTo(md.idevId());
        assertThat(r.getInt(12)).isEqualTo(2);
        assertThat(r.getInt(16)).isEqualTo(3);
        assertThat(r.getLong(24)).isEqualTo(0xdeadbeafL);
        int cookie = r.getInt(36);
        assertThat(cookie).isPositive();

        assertErrno(Errno.ESPIPE, () -> file.write(new byte[7]));
        assertErrno(Errno.EINVAL, () -> file.write(response(cookie + 1, 0)));
        assertErrno(Errno.EINVAL, () -> file.write(response(cookie, 2)));
        assertThat(file.write(response(cookie, 0))).isEqualTo(8);
        assertErrno(Errno.EINVAL, () -> file.write(response(cookie, 0)));
    }

    @Test
    void detachAnswersOutstandingFaultsInvalid() {
        int ioas = testIoctlIoasAlloc();
        IommufdSelftest.MockDomain md = testCmdMockDomain(ioas);
        Iommufd.FaultQueueAlloc fault = fd.faultQueueAlloc(0);
        int hwpt = fd.hwptAlloc(Iommufd.HWPT_ALLOC_FAULT_ID_VALID, md.idevId(), ioas, Iommufd.HWPT_DATA_NONE, null, fault.faultId());
        test.mockDomainReplace(md.stdevId(), hwpt);
        test.triggerIopf(md.idevId(), 0, 1, 1, 0x1000);
        test.triggerIopf(md.idevId(), 0, 2, 1, 0x2000);
        byte[] first = new byte[40];
        assertThat(fault.file().read(first)).isEqualTo(40);
        test.mockDomainReplace(md.stdevId(), ioas);
        assertThat(fault.file().read(new byte[80])).as("the queued fault was answered, not left to read").isZero();
        int cookie = ByteBuffer.wrap(first).order(ByteOrder.LITTLE_ENDIAN).getInt(36);
        assertErrno(Errno.EINVAL, () -> fault.file().write(response(cookie, 0)));
    }

    private static byte[] response(int cookie, int code) {
        return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(cookie).putInt(code).array();
    }
}
