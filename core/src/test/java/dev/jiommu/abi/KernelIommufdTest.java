package dev.jiommu.abi;

import dev.jiommu.errno.Errno;
import dev.jiommu.iommufd.IommufdException;
import dev.jiommu.mem.MemoryFile;
import dev.jiommu.mem.PhysicalMemory;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

/**
 * The kernel backend's plumbing on any machine: real syscalls through FFM, errno captured and
 * carried into the typed exception. (Its behaviour on a real iommufd is the conformance suite's,
 * run in the reference kernel by {@code ./jiommu verify-kernel}.)
 */
class KernelIommufdTest {
    @Test
    void openingAMissingDeviceIsItsErrno() {
        IommufdException e = catchThrowableOfType(IommufdException.class, () -> KernelIommufd.open("/nonexistent/iommu"));
        assertThat(e.errno()).isEqualTo(Errno.ENOENT);
        assertThat(e.getMessage()).contains("/nonexistent/iommu");
    }

    @Test
    void ioctlErrnoIsCapturedAfterTheCall() {
        int fd = LinuxSyscalls.open("/dev/null", LinuxSyscalls.O_RDWR);
        assertThat(fd).isNotNegative();
        try {
            assertThat(LinuxSyscalls.ioctl(fd, IoctlNumbers.IOAS_ALLOC, 0)).isEqualTo(-Errno.ENOTTY.number());
        } finally {
            assertThat(LinuxSyscalls.close(fd)).isZero();
        }
        assertThat(LinuxSyscalls.close(fd)).as("a second close").isEqualTo(-Errno.EBADF.number());
    }

    /** Every typed call becomes its struct and a real ioctl: a file that is not an iommufd answers ENOTTY. */
    @Test
    void typedCallsReachTheRealIoctl() {
        try (KernelIommufd notIommu = KernelIommufd.open("/dev/null")) {
            assertThat(catchThrowableOfType(IommufdException.class, notIommu::ioasAlloc).errno()).isEqualTo(Errno.ENOTTY);
            IommufdException e = catchThrowableOfType(IommufdException.class,
                    () -> notIommu.hwptInvalidate(1, 0, 8, 1, new byte[8]));
            assertThat(e.errno()).isEqualTo(Errno.ENOTTY);
            assertThat(e.progress()).as("entry_num read back from the untouched struct").isEqualTo(1);
        }
    }

    @Test
    void emulatedFilesAreRefusedWithAReason() {
        try (KernelIommufd notIommu = KernelIommufd.open("/dev/null"); PhysicalMemory memory = PhysicalMemory.create(2 << 20)) {
            MemoryFile file = new MemoryFile(memory, "f", 4096, true);
            IommufdException e = catchThrowableOfType(IommufdException.class, () -> notIommu.ioasMapFile(1, 0, file, 0, 4096, 0));
            assertThat(e.errno()).isEqualTo(Errno.EOPNOTSUPP);
            assertThat(e.getMessage()).contains("by fd");
        }
    }

    @Test
    void aClosedContextRefusesCallsWithEbadf() {
        KernelIommufd notIommu = KernelIommufd.open("/dev/null");
        notIommu.close();
        assertThat(catchThrowableOfType(IommufdException.class, notIommu::ioasAlloc).errno()).isEqualTo(Errno.EBADF);
    }
}
