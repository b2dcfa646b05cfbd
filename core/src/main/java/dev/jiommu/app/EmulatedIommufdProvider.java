package dev.jiommu.app;

import dev.jiommu.driver.mock.MockIommuDriver;
import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.iommufd.IommufdContext;
import dev.jiommu.iommufd.IommufdProvider;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.mem.RegisteredUserMemory;

/**
 * The emulated backend for {@link Iommufd#open()}, the choice wherever the kernel's is missing: a
 * context over its own sparse physical memory, with the selftest's mock bus as the platform (what
 * a kernel built with CONFIG_IOMMUFD_TEST offers), so IOMMU_TEST_CMD works on both. Memory to map
 * comes from {@link Iommufd#allocateUserMemory}; the physical memory goes with the context.
 */
public final class EmulatedIommufdProvider implements IommufdProvider {
    /** Sparse: only what is touched costs host memory. */
    static final long PHYSICAL_BYTES = 16L << 30;

    @Override
    public String name() {
        return "emulated";
    }

    @Override
    public int priority() {
        return 0;
    }

    @Override
    public Iommufd open() {
        PhysicalMemory memory = PhysicalMemory.create(PHYSICAL_BYTES);
        IommufdContext context = new IommufdContext(new RegisteredUserMemory(memory), new MockIommuDriver(memory));
        context.closeWith(memory);
        return context;
    }
}
