package dev.jiommu.app;

import dev.jiommu.driver.mock.MockIommuDriver;
import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.iommufd.IommufdContext;
import dev.jiommu.iommufd.IommufdSelftest;
import dev.jiommu.iommufd.IovaRange;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.mem.RegisteredUserMemory;
import dev.jiommu.mem.UserMemory;

import java.io.PrintWriter;
import java.util.List;

/**
 * The iommufd part of {@code jiommu demo}: an IOAS with a mock device, as the kernel selftest
 * builds it. Maps user memory, copies the mapping into a second IOAS, unmaps, closes, and shows
 * the pin counts at each step, read from the user memory itself.
 */
final class IoasDemo {
    private static final long USER_VA = 0x7f00_0000_0000L;
    private static final long LENGTH = 4L << 20;

    private IoasDemo() {
    }

    /** Runs the scenario, printing as it goes; {@return whether every check held} */
    static boolean run(PrintWriter out) {
        try (PhysicalMemory memory = PhysicalMemory.create(1L << 30)) {
            RegisteredUserMemory user = new RegisteredUserMemory(memory);
            user.register(USER_VA, LENGTH, 2L << 20, true);
            long framesBefore = memory.allocatedFrames();
            MockIommuDriver mock = new MockIommuDriver(memory);
            IommufdContext ctx = new IommufdContext(user, mock);
            IommufdSelftest test = ctx.selftest();

            int ioas = ctx.ioasAlloc();
            IommufdSelftest.MockDomain md = test.mockDomain(ioas);
            Iommufd.IovaRanges ranges = ctx.ioasIovaRanges(ioas);
            out.printf("iommufd: an IOAS with a mock device (the kernel selftest's mock IOMMU)%n");
            out.printf("  objects   IOAS %d; mock device: selftest object %d, DEVICE %d, auto HWPT_PAGING %d%n",
                    ioas, md.stdevId(), md.idevId(), md.hwptId());
            out.printf("  ranges    usable IOVA %s, alignment %s (the mock's 2K IO page)%n", describe(ranges.ranges()),
                    Sizes.human(ranges.iovaAlignment()));

            long iova = ctx.ioasMap(ioas, Iommufd.MAP_READABLE | Iommufd.MAP_WRITEABLE, USER_VA, LENGTH, 0);
            test.mdCheckMap(md.hwptId(), iova, LENGTH, USER_VA);
            out.printf("  map       %s of user memory at va 0x%x -> iova 0x%x; the domain translates every 2K page to%n",
                    Sizes.human(LENGTH), USER_VA, iova);
            out.printf("            the memory behind its va; pins per page: %s%n", pins(user));

            int ioas2 = ctx.ioasAlloc();
            IommufdSelftest.MockDomain md2 = test.mockDomain(ioas2);
            long copied = ctx.ioasCopy(ioas2, Iommufd.MAP_READABLE, ioas, iova, LENGTH, 0);
            test.mdCheckMap(md2.hwptId(), copied, LENGTH, USER_VA);
            out.printf("  copy      into IOAS %d (its own mock device, HWPT %d) at iova 0x%x, read-only: same pages,%n",
                    ioas2, md2.hwptId(), copied);
            out.printf("            pinned once for both domains; pins per page: %s; pinned_vm %d pages%n",
                    pins(user), ctx.accounting().pinnedPages());

            long unmapped = ctx.ioasUnmap(ioas, iova, LENGTH);
            out.printf("  unmap     IOAS %d: %s; pins per page: %s (IOAS %d still holds them)%n", ioas, Sizes.human(unmapped),
                    pins(user), ioas2);

            int objects = ctx.objectCount();
            ctx.close();
            long leaked = memory.allocatedFrames() - framesBefore;
            out.printf("  close     the context (destroying its %d objects): pins per page %s, pinned_vm %d, %d frames leaked%n%n",
                    objects, pins(user), ctx.accounting().pinnedPages(), leaked);
            return user.pinnedPages() == 0 && leaked == 0 && ctx.accounting().pinnedPages() == 0;
        }
    }

    /** {@return the distinct pin counts over the mapped pages, e.g. "1" or "0"} */
    private static String pins(UserMemory user) {
        int min = Integer.MAX_VALUE;
        int max = Integer.MIN_VALUE;
        for (long va = USER_VA; va < USER_VA + LENGTH; va += UserMemory.PAGE_BYTES) {
            int pins = user.pinCount(va);
            min = Math.min(min, pins);
            max = Math.max(max, pins);
        }
        return min == max ? Integer.toString(min) : min + ".." + max;
    }

    private static String describe(List<IovaRange> ranges) {
        return ranges.stream().map(IovaRange::toString).reduce((a, b) -> a + " " + b).orElse("none");
    }
}
