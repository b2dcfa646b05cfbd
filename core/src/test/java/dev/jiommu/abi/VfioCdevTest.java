package dev.jiommu.abi;

import dev.jiommu.errno.Errno;
import dev.jiommu.iommu.hwinfo.VtdHwInfo;
import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.iommufd.IommufdException;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * A real device under iommufd through its VFIO cdev: the reference kernel's {@code edu} device
 * behind QEMU's VT-d ({@code ./jiommu verify-kernel} boots with {@code --vfio}). Skipped wherever
 * there is no such device. Prints what the real VT-d reports (cap/ecap, IOVA ranges), which our
 * VT-d model's default configuration is meant to match.
 */
class VfioCdevTest {
    static final String CDEV = "/dev/vfio/devices/vfio0";

    @Test
    void bindAttachMapAndDetachARealDevice() {
        assumeTrue(Files.exists(Path.of(CDEV)) && Files.exists(Path.of(KernelIommufd.DEV_IOMMU)), "no VFIO cdev and iommufd here");
        try (KernelIommufd iommufd = KernelIommufd.open(); VfioCdev device = VfioCdev.bind(iommufd, CDEV)) {
            assertThat(device.devId()).isPositive();
            Iommufd.HwInfo info = iommufd.getHwInfo(device.devId(), 0, 0);
            assertThat(info.dataType()).as("IOMMU_HW_INFO_TYPE_INTEL_VTD").isEqualTo(1);
            VtdHwInfo vtd = VtdHwInfo.parse(info.data());
            int ioas = iommufd.ioasAlloc();
            int hwpt = device.attach(ioas);
            assertThat(hwpt).as("the automatic HWPT").isPositive().isNotEqualTo(ioas);
            Iommufd.IovaRanges ranges = iommufd.ioasIovaRanges(ioas);
            System.out.printf(Locale.ROOT, "real VT-d: cap 0x%016x ecap 0x%016x flags 0x%x max_pasid_log2 %d capabilities 0x%x%n",
                    vtd.capReg(), vtd.ecapReg(), vtd.flags(), info.maxPasidLog2(), info.capabilities());
            System.out.println("real VT-d: IOVA ranges " + ranges.ranges() + " alignment " + ranges.iovaAlignment());

            MemorySegment buffer = iommufd.allocateUserMemory(4 * 4096);
            long iova = iommufd.ioasMap(ioas, Iommufd.MAP_READABLE | Iommufd.MAP_WRITEABLE, buffer.address(), buffer.byteSize(), 0);
            assertThat(iommufd.ioasUnmap(ioas, iova, buffer.byteSize())).isEqualTo(buffer.byteSize());

            assertThat(catchThrowableOfType(IommufdException.class, () -> iommufd.destroy(hwpt)).errno())
                    .as("the attached HWPT").isEqualTo(Errno.EBUSY);
            device.detach();
            assertThat(catchThrowableOfType(IommufdException.class, () -> device.attachPasid(1, ioas)).errno())
                    .as("a PASID of a device without the PASID capability").isIn(Errno.EINVAL, Errno.EOPNOTSUPP, Errno.ENODEV);
        }
    }
}
