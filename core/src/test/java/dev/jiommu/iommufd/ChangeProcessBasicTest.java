package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Port of tools/testing/selftests/iommu/iommufd.c, FIXTURE(change_process) and its case {@code basic}.
 *
 * <p>The kernel case forks: the child issues IOAS_CHANGE_PROCESS on the inherited fd, and both read
 * VmPin (pinned_vm) and VmLck (the mm's locked_vm) from /proc. Here a process is its
 * {@link PinAccounting}: the "child" is a fresh one handed to {@link Iommufd#ioasChangeProcess}, and
 * VmPin and VmLck are its {@link PinAccounting#pinnedPages()} and {@link PinAccounting#mmLockedPages()},
 * counted in pages where /proc counts kB.
 *
 * <p>Variants: ACCOUNT_USER and ACCOUNT_MM set IOMMU_OPTION_RLIMIT_MODE to 0 and 1 as the kernel
 * fixture does. The kernel fixture drops CAP_IPC_LOCK in every variant, so its account_none in fact
 * runs in the default USER mode; here ACCOUNT_NONE holds CAP_IPC_LOCK, so the NONE mode the name
 * promises is the one exercised, against the same expectations (pinned_vm is charged in every mode
 * and moves with the pins).
 */
@ParameterizedClass(name = "{0}")
@EnumSource(ChangeProcessBasicTest.Variant.class)
class ChangeProcessBasicTest extends IommufdFixture {

    /** FIXTURE_VARIANT(change_process). */
    enum Variant {
        ACCOUNT_NONE(PinAccounting.Mode.NONE),
        ACCOUNT_USER(PinAccounting.Mode.USER),
        ACCOUNT_MM(PinAccounting.Mode.MM);

        final PinAccounting.Mode mode;

        Variant(PinAccounting.Mode mode) {
            this.mode = mode;
        }
    }

    private final Variant variant;
    private int ioasId;

    ChangeProcessBasicTest(Variant variant) {
        this.variant = variant;
    }

    @BeforeEach
    void setUpChangeProcess() {
        if (variant.mode == PinAccounting.Mode.NONE) {
            ctx().capIpcLock(true);
        } else {
            testIoctlOptionSet(Iommufd.OPTION_RLIMIT_MODE, 0, variant.mode == PinAccounting.Mode.MM ? 1 : 0);
        }
        ioasId = testIoctlIoasAlloc();
        testCmdMockDomain(ioasId);
    }

    @Test
    void basic() {
        // Pins of anonymous memory belong to the address space they came from: nobody may take them over
        long iova = testIoctlIoasMap(ioasId, buffer, PAGE_SIZE);
        testErrIoctlIoasChangeProcess(Errno.EINVAL, ctx().accounting());
        testIoctlIoasUnmap(ioasId, iova, PAGE_SIZE);

        // With only a file-backed map, the process that already holds the pins can "take them over"
        long mapLength = PAGE_SIZE;
        testIoctlIoasMapFileId(ioasId, mfd(), 0, mapLength);
        PinAccounting parent = ctx().accounting();
        testIoctlIoasChangeProcess(parent);

        // Another process takes them over
        PinAccounting child = new PinAccounting(IommufdContext.UNLIMITED);
        long nlock = mapLength / PAGE_SIZE;
        long nlockMm = variant.mode == PinAccounting.Mode.MM ? nlock : 0;
        assertThat(parent.pinnedPages()).as("parent VmPin before").isEqualTo(nlock);
        assertThat(parent.mmLockedPages()).as("parent VmLck before").isEqualTo(nlockMm);
        assertThat(child.pinnedPages()).as("child VmPin before").isZero();
        assertThat(child.mmLockedPages()).as("child VmLck before").isZero();
        // Beyond /proc, which does not show the user's locked_vm (and the kernel's child shares its
        // parent's user): here each PinAccounting is a user of its own, so the USER charge moves too
        long nlockUser = variant.mode == PinAccounting.Mode.USER ? nlock : 0;
        assertThat(parent.userLockedPages()).as("parent user locked_vm before").isEqualTo(nlockUser);
        assertThat(child.userLockedPages()).as("child user locked_vm before").isZero();

        testIoctlIoasChangeProcess(child);

        assertThat(parent.pinnedPages()).as("parent VmPin after").isZero();
        assertThat(parent.mmLockedPages()).as("parent VmLck after").isZero();
        assertThat(child.pinnedPages()).as("child VmPin after").isEqualTo(nlock);
        assertThat(child.mmLockedPages()).as("child VmLck after").isEqualTo(nlockMm);
        assertThat(parent.userLockedPages()).as("parent user locked_vm after").isZero();
        assertThat(child.userLockedPages()).as("child user locked_vm after").isEqualTo(nlockUser);
    }

    private void testIoctlIoasChangeProcess(PinAccounting process) {
        fd.ioasChangeProcess(process);
        assertThat(ctx().accounting()).as("the context's process after IOAS_CHANGE_PROCESS").isSameAs(process);
    }

    private void testErrIoctlIoasChangeProcess(Errno errno, PinAccounting process) {
        PinAccounting before = ctx().accounting();
        assertErrno(errno, () -> fd.ioasChangeProcess(process));
        assertThat(ctx().accounting()).as("the context's process after a refused IOAS_CHANGE_PROCESS").isSameAs(before);
    }
}
