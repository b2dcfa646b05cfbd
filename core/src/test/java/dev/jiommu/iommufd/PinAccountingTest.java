package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** The RLIMIT modes of iommufd-uapi.md §4.9, observed through the context's counters. */
class PinAccountingTest extends IommufdFixture {
    @Test
    void userModeChargesTheUserAndRefusesPastTheLimitLeavingNothingPinned() {
        int ioas = testIoctlIoasAlloc();
        testCmdMockDomain(ioas);
        ctx().memlockLimitPages(8);
        testIoctlIoasMap(ioas, buffer, 8 * PAGE_SIZE);
        assertThat(ctx().accounting().userLockedPages()).isEqualTo(8);
        assertThat(ctx().accounting().pinnedPages()).isEqualTo(8);
        assertThat(ctx().accounting().mmLockedPages()).isZero();
        testErrIoctlIoasMap(Errno.ENOMEM, ioas, buffer + 8 * PAGE_SIZE, PAGE_SIZE);
        checkRefs(buffer + 8 * PAGE_SIZE, 8 * PAGE_SIZE, 0);
        assertThat(ctx().accounting().pinnedPages()).isEqualTo(8);
    }

    @Test
    void mmModeIsSelectableOnlyOnAnEmptyContextAndChargesTheProcess() {
        assertThat(fd.optionGet(Iommufd.OPTION_RLIMIT_MODE, 0)).isZero();
        fd.optionSet(Iommufd.OPTION_RLIMIT_MODE, 0, 1);
        int ioas = testIoctlIoasAlloc();
        assertErrno(Errno.EBUSY, () -> fd.optionSet(Iommufd.OPTION_RLIMIT_MODE, 0, 0));
        testCmdMockDomain(ioas);
        testIoctlIoasMap(ioas, buffer, 4 * PAGE_SIZE);
        assertThat(ctx().accounting().mmLockedPages()).isEqualTo(4);
        assertThat(ctx().accounting().userLockedPages()).isZero();
    }

    @Test
    void capIpcLockMapsWithoutALimit() {
        ctx().capIpcLock(true);
        ctx().memlockLimitPages(1);
        int ioas = testIoctlIoasAlloc();
        testCmdMockDomain(ioas);
        testIoctlIoasMap(ioas, buffer, 4 * PAGE_SIZE);
        assertThat(ctx().accounting().pinnedPages()).isEqualTo(4);
        assertThat(ctx().accounting().userLockedPages()).isZero();
    }

    @Test
    void rlimitModeNeedsCapSysResourceAndAValidValue() {
        assertErrno(Errno.EINVAL, () -> fd.optionSet(Iommufd.OPTION_RLIMIT_MODE, 0, 2));
        assertErrno(Errno.EOPNOTSUPP, () -> fd.optionSet(Iommufd.OPTION_RLIMIT_MODE, 7, 1));
        ctx().capSysResource(false);
        assertErrno(Errno.EPERM, () -> fd.optionSet(Iommufd.OPTION_RLIMIT_MODE, 0, 1));
    }
}
