package dev.jiommu.driver.vtd;

import dev.jiommu.hw.DmaTestDevice;
import dev.jiommu.hw.PciRequesterId;
import dev.jiommu.hw.vtd.VtdConfig;
import dev.jiommu.hw.vtd.VtdUnit;
import dev.jiommu.iommufd.IommufdContext;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.mem.RegisteredUserMemory;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A machine with one VT-d unit, its host driver, and an iommufd context over user memory: what a
 * VMM sees when it binds a VFIO device behind an Intel IOMMU.
 */
final class VtdIommufdFixture implements AutoCloseable {
    static final long USER_VA = 0x7f00_0000_0000L;
    static final long USER_BYTES = 32L << 20;

    final PhysicalMemory memory = PhysicalMemory.create(1L << 32);
    final RegisteredUserMemory user = new RegisteredUserMemory(memory);
    final VtdUnit unit;
    final VtdDriver driver;
    final IommufdContext ctx;

    VtdIommufdFixture(VtdConfig config) {
        this(config, VtdDriver.Options.DEFAULT);
    }

    VtdIommufdFixture(VtdConfig config, VtdDriver.Options options) {
        unit = new VtdUnit("dmar0", config, memory);
        driver = new VtdDriver("dmar0", unit, memory, unit, options);
        user.register(USER_VA, USER_BYTES, 2L << 20, true);
        ctx = new IommufdContext(user, null);
    }

    /** A device probed by the driver and its DMA engine on the same requester id. */
    record Dev(VtdDevice device, DmaTestDevice dma, int devId) {
    }

    Dev device(int rid, int pasidBits, DmaTestDevice.Options options) {
        boolean ats = options.atcEntries() > 0;
        VtdDevice device = driver.probe(PciRequesterId.of(rid), pasidBits, ats, options.pri());
        DmaTestDevice dma = new DmaTestDevice("dma" + Integer.toHexString(rid), PciRequesterId.of(rid), memory, unit, options, 1 << 20);
        return new Dev(device, dma, ctx.bindDevice(device));
    }

    Dev device(int rid) {
        return device(rid, 0, DmaTestDevice.Options.PLAIN);
    }

    static byte[] le64(long... values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 8).order(ByteOrder.LITTLE_ENDIAN);
        for (long v : values) {
            b.putLong(v);
        }
        return b.array();
    }

    static byte[] vtdS1(long flags, long pgtblAddr, int addrWidth) {
        return ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN).putLong(flags).putLong(pgtblAddr).putInt(addrWidth).putInt(0).array();
    }

    static byte[] vtdS1Invalidate(long addr, long npages, int flags) {
        return ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN).putLong(addr).putLong(npages).putInt(flags).putInt(0).array();
    }

    @Override
    public void close() {
        ctx.close();
        memory.close();
    }
}
