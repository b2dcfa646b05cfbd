package dev.jiommu.app;

import dev.jiommu.driver.mock.MockDevice;
import dev.jiommu.driver.mock.MockIommuDriver;
import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.iommufd.IommufdContext;
import dev.jiommu.iommufd.IommufdFile;
import dev.jiommu.iommufd.IommufdSelftest;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.mem.RegisteredUserMemory;
import dev.jiommu.pt.Access;
import dev.jiommu.pt.DirtyBitmap;

import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * The iommufd core II part of {@code jiommu demo}, on the mock: a nested HWPT through a vIOMMU
 * with a vDEVICE, invalidations of both kinds, a page fault answered through the fault queue, a
 * vIOMMU event, and a dirty bitmap of real DMA writes. Every value printed is read back.
 */
final class NestingDemo {
    private static final long USER_VA = 0x7f00_0000_0000L;
    private static final long LENGTH = 64L << 10;
    private static final int VIOMMU_SELFTEST = 0xdeadbeef;
    private static final int INVALIDATE_SELFTEST = 0xdeadbeef;
    private static final int VIRT_ID = 0x42;

    private NestingDemo() {
    }

    /** Runs the scenario, printing as it goes; {@return whether every check held} */
    static boolean run(PrintWriter out) throws InterruptedException {
        try (PhysicalMemory memory = PhysicalMemory.create(1L << 30)) {
            RegisteredUserMemory user = new RegisteredUserMemory(memory);
            user.register(USER_VA, LENGTH, 2L << 20, true);
            MockIommuDriver mock = new MockIommuDriver(memory);
            IommufdContext ctx = new IommufdContext(user, mock);
            IommufdSelftest test = ctx.selftest();
            boolean ok = true;

            int ioas = ctx.ioasAlloc();
            IommufdSelftest.MockDomain md = test.mockDomain(ioas);
            int parent = ctx.hwptAlloc(Iommufd.HWPT_ALLOC_NEST_PARENT, md.idevId(), ioas, Iommufd.HWPT_DATA_NONE, null, 0);
            int viommu = ctx.viommuAlloc(0, VIOMMU_SELFTEST, md.idevId(), parent, null).viommuId();
            int vdev = ctx.vdeviceAlloc(viommu, md.idevId(), VIRT_ID);
            Iommufd.FaultQueueAlloc fault = ctx.faultQueueAlloc(0);
            int nested = ctx.hwptAlloc(Iommufd.HWPT_ALLOC_FAULT_ID_VALID, md.idevId(), viommu, MockIommuDriver.HWPT_DATA_SELFTEST,
                    le(0xbadbeef, 0), fault.faultId());
            test.mockDomainReplace(md.stdevId(), nested);
            out.printf("iommufd: nesting on a vIOMMU (the mock's)%n");
            out.printf("  objects   nest-parent HWPT %d on IOAS %d, vIOMMU %d, vDEVICE %d (virt_id 0x%x = DEVICE %d),%n",
                    parent, ioas, viommu, vdev, VIRT_ID, md.idevId());
            out.printf("            nested HWPT %d through the vIOMMU reporting to FAULT %d; the device is attached to it%n",
                    nested, fault.faultId());

            int handled = ctx.hwptInvalidate(nested, INVALIDATE_SELFTEST, 8, 1, le(0, 1));
            boolean slots = holds(() -> test.mdCheckIotlb(nested, 1, 0)) && holds(() -> test.mdCheckIotlb(nested, 0, 0xbadbeef))
                    && holds(() -> test.mdCheckIotlb(nested, 2, 0xbadbeef)) && holds(() -> test.mdCheckIotlb(nested, 3, 0xbadbeef));
            out.printf("  invalidate nested HWPT, %d entry for IOTLB slot 1: MD_CHECK_IOTLB finds slot 1 cleared, 0/2/3 at 0xbadbeef: %s%n",
                    handled, slots ? "yes" : "NO");
            handled = ctx.hwptInvalidate(viommu, INVALIDATE_SELFTEST, 12, 1, le(0, VIRT_ID, 2));
            boolean caches = holds(() -> test.devCheckCache(md.idevId(), 2, 0)) && holds(() -> test.devCheckCache(md.idevId(), 0, 0xbaddad));
            out.printf("  invalidate vIOMMU, %d entry for device cache 2 of virt_id 0x%x: DEV_CHECK_CACHE finds it cleared, slot 0 kept: %s%n",
                    handled, VIRT_ID, caches ? "yes" : "NO");
            ok &= slots && caches;

            test.triggerIopf(md.idevId(), 0, 2, 3, 0xdeadb000L);
            byte[] record = new byte[40];
            int read = fault.file().read(record, java.time.Duration.ofSeconds(1));
            ByteBuffer r = ByteBuffer.wrap(record).order(ByteOrder.LITTLE_ENDIAN);
            int cookie = r.getInt(36);
            int written = fault.file().write(le(cookie, 0));
            out.printf("  fault     read %d bytes: DEVICE %d faulted at 0x%x (group %d, perm %d), cookie %d; answered SUCCESS (%d bytes)%n",
                    read, r.getInt(4), r.getLong(24), r.getInt(12), r.getInt(16), cookie, written);
            ok &= read == 40 && r.getLong(24) == 0xdeadb000L && written == 8;

            IommufdFile events = ctx.veventqAlloc(0, viommu, IommufdSelftest.VEVENTQ_TYPE_SELFTEST, 8).file();
            test.triggerVevent(md.idevId());
            byte[] event = new byte[12];
            read = events.read(event);
            ByteBuffer e = ByteBuffer.wrap(event).order(ByteOrder.LITTLE_ENDIAN);
            out.printf("  event     read %d bytes from the vEVENTQ: sequence %d, virt_id 0x%x%n", read, e.getInt(4), e.getInt(8));
            ok &= read == 12 && e.getInt(8) == VIRT_ID;

            ok &= dirty(out, ctx, test, mock);
            ctx.close();
            out.printf("  close     pinned pages left: %d%n%n", user.pinnedPages());
            return ok && user.pinnedPages() == 0;
        }
    }

    /** A dirty-tracking HWPT, three DMA writes by a device, and the bitmap they leave. */
    private static boolean dirty(PrintWriter out, IommufdContext ctx, IommufdSelftest test, MockIommuDriver mock) {
        int ioas = ctx.ioasAlloc();
        IommufdSelftest.MockDomain md = test.mockDomain(ioas);
        int hwpt = ctx.hwptAlloc(Iommufd.HWPT_ALLOC_DIRTY_TRACKING, md.idevId(), ioas, Iommufd.HWPT_DATA_NONE, null, 0);
        test.mockDomainReplace(md.stdevId(), hwpt);
        ctx.optionSet(Iommufd.OPTION_HUGE_PAGES, ioas, 0);
        long iova = ctx.ioasMap(ioas, Iommufd.MAP_READABLE | Iommufd.MAP_WRITEABLE, USER_VA, LENGTH, 0);
        ctx.hwptSetDirtyTracking(hwpt, Iommufd.DIRTY_TRACKING_ENABLE);
        MockDevice device = mock.devices().getLast();
        for (long page : new long[] {0, 5, 9}) {
            device.translate(iova + page * 4096 + 100, Access.WRITE);
        }
        DirtyBitmap bitmap = ctx.hwptGetDirtyBitmap(hwpt, 0, iova, LENGTH, 4096);
        List<Long> bits = new ArrayList<>();
        for (long i = 0; i < bitmap.pages(); i++) {
            if (bitmap.isSet(i)) {
                bits.add(i);
            }
        }
        long after = ctx.hwptGetDirtyBitmap(hwpt, 0, iova, LENGTH, 4096).cardinality();
        out.printf("  dirty     dirty-tracking HWPT %d; the device wrote pages 0, 5 and 9: bitmap bits %s of %d; read again: %d%n",
                hwpt, bits, bitmap.pages(), after);
        return bits.equals(List.of(0L, 5L, 9L)) && after == 0;
    }

    /** {@return whether a selftest check passes (they throw EINVAL on a mismatch)} */
    private static boolean holds(Runnable check) {
        try {
            check.run();
            return true;
        } catch (RuntimeException mismatch) {
            return false;
        }
    }

    private static byte[] le(int... values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int v : values) {
            b.putInt(v);
        }
        return b.array();
    }
}
