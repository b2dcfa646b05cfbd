package dev.jiommu.driver.vtd;

import dev.jiommu.errno.Errno;
import dev.jiommu.hw.DmaTestDevice;
import dev.jiommu.hw.PciRequesterId;
import dev.jiommu.hw.Platform;
import dev.jiommu.hw.Translator;
import dev.jiommu.hw.vtd.VtdConfig;
import dev.jiommu.hw.vtd.VtdUnit;
import dev.jiommu.iommu.IommuDriver;
import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.iommufd.IommufdContext;
import dev.jiommu.iommufd.IommufdException;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.mem.RegisteredUserMemory;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** A platform of two VT-d units, each with its driver and its device: one IOAS, two domains, no crossing. */
class VtdPlatformTest {
    static final long USER_VA = 0x7f00_0000_0000L;
    static final int RW = Iommufd.MAP_FIXED_IOVA | Iommufd.MAP_READABLE | Iommufd.MAP_WRITEABLE;

    @Test
    void devicesBehindTwoUnitsShareAnIoasThroughTwoDomains() {
        try (PhysicalMemory memory = PhysicalMemory.create(1L << 32)) {
            Platform platform = new Platform(memory);
            VtdUnit unit0 = new VtdUnit("dmar0", VtdConfig.scalable(), memory);
            VtdUnit unit1 = new VtdUnit("dmar1", VtdConfig.qemuDefault(), memory);
            Platform.Unit u0 = platform.addUnit("dmar0", unit0, unit0, unit0);
            Platform.Unit u1 = platform.addUnit("dmar1", unit1, unit1, unit1);
            PciRequesterId ridA = new PciRequesterId(0, 2, 0);
            PciRequesterId ridB = new PciRequesterId(1, 0, 0);
            platform.plug(ridA, u0);
            platform.plug(ridB, u1);
            assertThatThrownBy(() -> platform.plug(ridA, u1)).isInstanceOf(IllegalArgumentException.class);
            assertThat(platform.slot(ridB.rid()).unit()).isEqualTo(u1);

            VtdDriver driver0 = new VtdDriver("dmar0", u0.registers(), memory, u0.interrupts());
            VtdDriver driver1 = new VtdDriver("dmar1", u1.registers(), memory, u1.interrupts());
            RegisteredUserMemory user = new RegisteredUserMemory(memory);
            user.register(USER_VA, 2L << 20, 2L << 20, true);
            IommufdContext ctx = new IommufdContext(user, null);
            VtdDevice a = driver0.probe(ridA, 0, false, false);
            VtdDevice b = driver1.probe(ridB, 0, false, false);
            DmaTestDevice dmaA = new DmaTestDevice("a", ridA, memory, u0.translator(), DmaTestDevice.Options.PLAIN, 4096);
            DmaTestDevice dmaB = new DmaTestDevice("b", ridB, memory, u1.translator(), DmaTestDevice.Options.PLAIN, 4096);
            int devA = ctx.bindDevice(a);
            int devB = ctx.bindDevice(b);
            int ioas = ctx.ioasAlloc();
            ctx.ioasMap(ioas, RW, USER_VA, 2 * 4096, 0x10_0000);
            int hwptA = ctx.attachDevice(devA, IommuDriver.NO_PASID, ioas);
            int hwptB = ctx.attachDevice(devB, IommuDriver.NO_PASID, ioas);
            assertThat(hwptA).as("each unit's driver makes its own domain").isNotEqualTo(hwptB);
            assertThatThrownBy(() -> ctx.replaceDevice(devB, IommuDriver.NO_PASID, hwptA)).isInstanceOf(IommufdException.class)
                    .satisfies(e -> assertThat(((IommufdException) e).errno()).isEqualTo(Errno.EINVAL));
            assertThat(dmaA.fill(Translator.NO_PASID, 0x10_0000, 4096, (byte) 1)).isZero();
            assertThat(dmaB.fill(Translator.NO_PASID, 0x10_1000, 4096, (byte) 2)).isZero();
            assertThat(user.read(USER_VA, 4096)).containsOnly(1);
            assertThat(user.read(USER_VA + 4096, 4096)).containsOnly(2);
            ctx.ioasUnmap(ioas, 0x10_0000, 2 * 4096);
            assertThat(dmaA.read(Translator.NO_PASID, 0x10_0000, 0, 8)).isNotZero();
            assertThat(dmaB.read(Translator.NO_PASID, 0x10_1000, 0, 8)).isNotZero();
            assertThat(driver0.faultLog()).hasSize(1);
            assertThat(driver1.faultLog()).hasSize(1);
            // A device only reaches its own unit: B's requester id means nothing to dmar0.
            assertThat(unit0.translate(ridB.rid(), Translator.NO_PASID, 0x10_0000, 1)).isNegative();
            ctx.close();
        }
    }
}
