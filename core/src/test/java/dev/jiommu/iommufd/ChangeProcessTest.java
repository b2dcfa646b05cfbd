package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;
import dev.jiommu.mem.MemoryFile;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * IOAS_CHANGE_PROCESS (iommufd-uapi.md §2.19) beyond the kernel's one case, which
 * {@link ChangeProcessBasicTest} ports: the two processes are two {@link PinAccounting}s and the
 * counters are read from them.
 */
class ChangeProcessTest extends IommufdFixture {
    @Test
    void fileBackedPinsMoveToTheNewProcessWithTheirCharges() {
        int ioas = testIoctlIoasAlloc();
        testCmdMockDomain(ioas);
        ctx().ioasMapFile(ioas, Iommufd.MAP_READABLE | Iommufd.MAP_WRITEABLE, mfd(), 0, BUFFER_SIZE, 0);
        PinAccounting old = ctx().accounting();
        assertThat(old.pinnedPages()).isEqualTo(16);
        PinAccounting next = new PinAccounting(IommufdContext.UNLIMITED);
        ctx().ioasChangeProcess(next);
        assertThat(old.pinnedPages()).isZero();
        assertThat(old.userLockedPages()).isZero();
        assertThat(next.pinnedPages()).isEqualTo(16);
        assertThat(next.userLockedPages()).isEqualTo(16);
        assertThat(ctx().accounting()).isSameAs(next);
    }

    @Test
    void anAnonymousMappingOrATooSmallLimitChangesNothing() {
        int ioas = testIoctlIoasAlloc();
        testCmdMockDomain(ioas);
        ctx().ioasMapFile(ioas, Iommufd.MAP_READABLE, mfd(), 0, BUFFER_SIZE, 0);
        PinAccounting old = ctx().accounting();
        assertErrno(Errno.ENOMEM, () -> ctx().ioasChangeProcess(new PinAccounting(8)));
        assertThat(old.pinnedPages()).isEqualTo(16);
        testIoctlIoasMap(ioas, buffer, PAGE_SIZE);
        PinAccounting next = new PinAccounting(IommufdContext.UNLIMITED);
        assertErrno(Errno.EINVAL, () -> ctx().ioasChangeProcess(next));
        assertThat(next.pinnedPages()).isZero();
        assertThat(old.pinnedPages()).isEqualTo(17);
    }

    @Test
    void laterPinsAndUnpinsGoToTheNewProcess() {
        MemoryFile file = new MemoryFile(memory(), "later", BUFFER_SIZE, true);
        int ioas = testIoctlIoasAlloc();
        long iova = ctx().ioasMapFile(ioas, Iommufd.MAP_READABLE, file, 0, BUFFER_SIZE, 0);
        PinAccounting next = new PinAccounting(IommufdContext.UNLIMITED);
        ctx().ioasChangeProcess(next);
        testCmdMockDomain(testIoctlIoasAlloc());
        int other = testIoctlIoasAlloc();
        testCmdMockDomain(other);
        ctx().ioasCopy(other, Iommufd.MAP_READABLE, ioas, iova, BUFFER_SIZE, 0);
        assertThat(next.pinnedPages()).isEqualTo(16);
        ctx().close();
        assertThat(next.pinnedPages()).isZero();
        file.close();
    }
}
