package dev.jiommu.app;

import dev.jiommu.driver.vtd.VtdDevice;
import dev.jiommu.driver.vtd.VtdDriver;
import dev.jiommu.hw.DmaTestDevice;
import dev.jiommu.hw.PciRequesterId;
import dev.jiommu.hw.Platform;
import dev.jiommu.hw.Translator;
import dev.jiommu.hw.vtd.VtdConfig;
import dev.jiommu.hw.vtd.VtdStats;
import dev.jiommu.hw.vtd.VtdUnit;
import dev.jiommu.hw.vtd.spec.FaultRecord;
import dev.jiommu.iommu.IommuDriver;
import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.iommufd.IommufdContext;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.mem.RegisteredUserMemory;
import dev.jiommu.pt.format.X86_64;

import java.io.PrintWriter;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * The Intel VT-d part of {@code jiommu demo}: an emulated scalable-mode unit booted by the VT-d
 * driver, a DMA test device writing through a nested HWPT whose stage 1 a "guest" built in its own
 * RAM, a stale translation fixed by HWPT_INVALIDATE, a page request answered through the fault
 * queue, a fault the unit records, and the unit's cache statistics. Every value printed is read back.
 */
final class VtdDemo {
    private static final long USER_VA = 0x7f00_0000_0000L;
    private static final long GUEST_RAM = 8L << 20;
    private static final long GPA_BASE = 0x8000_0000L;
    private static final long GUEST_IOVA = 0x1000_0000L;
    private static final int PAGES = 16;
    private static final int RW = Iommufd.MAP_FIXED_IOVA | Iommufd.MAP_READABLE | Iommufd.MAP_WRITEABLE;

    private VtdDemo() {
    }

    /** A guest's RAM (user memory mapped at GPA = IOVA) with a 4-level first stage built in it. */
    private static final class Guest {
        final RegisteredUserMemory user;
        long nextGpa = GPA_BASE;
        final long rootGpa;
        final X86_64 format = new X86_64(4, true);

        Guest(RegisteredUserMemory user) {
            this.user = user;
            rootGpa = allocatePage();
        }

        long va(long gpa) {
            return USER_VA + (gpa - GPA_BASE);
        }

        long allocatePage() {
            long gpa = nextGpa;
            nextGpa += 4096;
            user.write(va(gpa), new byte[4096]);
            return gpa;
        }

        long read64(long gpa) {
            return ByteBuffer.wrap(user.read(va(gpa), 8)).order(ByteOrder.LITTLE_ENDIAN).getLong();
        }

        void write64(long gpa, long value) {
            user.write(va(gpa), ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(value).array());
        }

        void map(long iova, long dataGpa) {
            long table = rootGpa;
            for (int level = 3; level > 0; level--) {
                long slot = table + ((long) format.index(iova, level) << 3);
                long entry = read64(slot);
                if ((entry & X86_64.P) == 0) {
                    entry = format.tableEntry(allocatePage(), level);
                    write64(slot, entry);
                }
                table = format.tableAddress(entry);
            }
            write64(table + ((long) format.index(iova, 0) << 3), X86_64.P | X86_64.RW | X86_64.US | X86_64.A | X86_64.D | dataGpa);
        }
    }

    /** Runs the scenario, printing as it goes; {@return whether every check held} */
    static boolean run(PrintWriter out) throws InterruptedException {
        out.println("Intel VT-d: an emulated remapping unit, its host driver under iommufd, a DMA device");
        boolean ok = true;
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try (PhysicalMemory memory = PhysicalMemory.create(1L << 32)) {
            VtdConfig qemu = VtdConfig.qemuDefault();
            out.printf("  QEMU 7.2 intel-iommu default  cap 0x%x ecap 0x%x (legacy mode, 39-bit)%n", qemu.cap().raw(), qemu.ecap().raw());
            Platform platform = new Platform(memory);
            VtdUnit unit = new VtdUnit("dmar0", VtdConfig.scalable(), memory);
            Platform.Unit slotUnit = platform.addUnit("dmar0", unit, unit, unit);
            VtdDriver driver = new VtdDriver("dmar0", unit, memory, unit);
            out.printf("  this unit (dmar0)             cap 0x%x ecap 0x%x: scalable=%s nested=%s dirty=%s PRS=%s%n",
                    driver.cap().raw(), driver.ecap().raw(), driver.scalableMode(), driver.ecap().nested(), driver.ecap().dirtyTracking(),
                    driver.ecap().has(dev.jiommu.hw.vtd.spec.EcapReg.PRS));
            RegisteredUserMemory user = new RegisteredUserMemory(memory);
            user.register(USER_VA, GUEST_RAM, 2L << 20, true);
            IommufdContext ctx = new IommufdContext(user, null);

            // ---- a device behind a nested HWPT ----
            PciRequesterId ridA = new PciRequesterId(0, 3, 0);
            platform.plug(ridA, slotUnit);
            VtdDevice vtdA = driver.probe(ridA, 20, false, false);
            DmaTestDevice dmaA = new DmaTestDevice("dmaA", ridA, memory, unit, DmaTestDevice.Options.PLAIN, 64L << 10);
            int devA = ctx.bindDevice(vtdA);
            int ioas = ctx.ioasAlloc();
            ctx.ioasMap(ioas, RW, USER_VA, GUEST_RAM, GPA_BASE);
            int parent = ctx.hwptAlloc(Iommufd.HWPT_ALLOC_NEST_PARENT, devA, ioas, Iommufd.HWPT_DATA_NONE, null, 0);
            Guest guest = new Guest(user);
            long[] dataGpa = new long[PAGES];
            for (int i = 0; i < PAGES; i++) {
                dataGpa[i] = guest.allocatePage();
                guest.map(GUEST_IOVA + i * 4096L, dataGpa[i]);
            }
            byte[] s1 = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN).putLong(0).putLong(guest.rootGpa).putInt(48).putInt(0).array();
            int nested = ctx.hwptAlloc(0, devA, parent, 1 /* IOMMU_HWPT_DATA_VTD_S1 */, s1, 0);
            ctx.attachDevice(devA, IommuDriver.NO_PASID, nested);
            out.printf("  %s: nested HWPT %d (guest stage-1 root at GPA 0x%x) on nest parent %d (IOAS %d, guest RAM at GPA 0x%x)%n",
                    ridA, nested, guest.rootGpa, parent, ioas, GPA_BASE);
            byte[] data = new byte[PAGES * 4096];
            for (int i = 0; i < data.length; i++) {
                data[i] = (byte) (i * 7 + 1);
            }
            dmaA.buffer().asSlice(0, data.length).copyFrom(MemorySegment.ofArray(data));
            VtdStats before = unit.stats();
            int status = dmaA.write(Translator.NO_PASID, GUEST_IOVA, 0, data.length);
            VtdStats after = unit.stats();
            boolean landed = status == 0;
            for (int i = 0; i < PAGES && landed; i++) {
                landed = Arrays.equals(user.read(guest.va(dataGpa[i]), 4096), Arrays.copyOfRange(data, i * 4096, (i + 1) * 4096));
            }
            out.printf("  DMA write of %d KiB at guest IOVA 0x%x: status %d, every page landed in its guest page: %s%n",
                    data.length >> 10, GUEST_IOVA, status, landed);
            out.printf("    %d nested walks, %d table reads: the first walks the stage 2 for each first-stage table page,%n"
                    + "    the others find those translations in the nested walk cache (%d hits)%n",
                    after.walks() - before.walks(), after.tableReads() - before.tableReads(),
                    after.nestedWalkCacheHits() - before.nestedWalkCacheHits());
            ok &= landed;

            // ---- the guest remaps a page: stale until HWPT_INVALIDATE ----
            long moved = guest.allocatePage();
            guest.map(GUEST_IOVA, moved);
            dmaA.fill(Translator.NO_PASID, GUEST_IOVA, 4096, (byte) 0x11);
            boolean stale = user.read(guest.va(dataGpa[0]), 4096)[0] == 0x11 && user.read(guest.va(moved), 4096)[0] == 0;
            byte[] inv = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN).putLong(GUEST_IOVA).putLong(1).putInt(1).putInt(0).array();
            int handled = ctx.hwptInvalidate(nested, 0 /* IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 */, 24, 1, inv);
            dmaA.fill(Translator.NO_PASID, GUEST_IOVA, 4096, (byte) 0x22);
            boolean fresh = user.read(guest.va(moved), 4096)[0] == 0x22;
            out.printf("  guest remaps IOVA 0x%x: before HWPT_INVALIDATE the IOTLB still sends DMA to the old page: %s;%n", GUEST_IOVA, stale);
            out.printf("    after it (%d entry, LEAF) the DMA reaches the new page: %s%n", handled, fresh);
            ok &= stale && fresh;

            // ---- a recorded fault ----
            int fault = dmaA.read(Translator.NO_PASID, 0x2000_0000L, 0, 8);
            List<FaultRecord> log = driver.faultLog();
            out.printf("  DMA read of unmapped guest IOVA 0x2000_0000: fault reason 0x%x; the driver's fault interrupt read %s%n", fault,
                    log.isEmpty() ? "nothing" : log.getLast());
            ok &= fault == 0x71 && !log.isEmpty();

            // ---- a page request answered through the fault queue ----
            PciRequesterId ridB = new PciRequesterId(0, 4, 0);
            platform.plug(ridB, slotUnit);
            VtdDevice vtdB = driver.probe(ridB, 20, true, true);
            DmaTestDevice dmaB = new DmaTestDevice("dmaB", ridB, memory, unit, DmaTestDevice.Options.atsAndPri(64, 30_000), 4096);
            int devB = ctx.bindDevice(vtdB);
            int ioasB = ctx.ioasAlloc();
            Iommufd.FaultQueueAlloc fq = ctx.faultQueueAlloc(0);
            int hwptB = ctx.hwptAlloc(Iommufd.HWPT_ALLOC_FAULT_ID_VALID, devB, ioasB, Iommufd.HWPT_DATA_NONE, null, fq.faultId());
            ctx.attachDevice(devB, IommuDriver.NO_PASID, hwptB);
            long userPage = USER_VA + GUEST_RAM - 4096;
            Future<Integer> pending = pool.submit(() -> dmaB.fill(Translator.NO_PASID, 0x5000_0000L, 4096, (byte) 0x33));
            byte[] record = new byte[40];
            int read = fq.file().read(record, Duration.ofSeconds(30));
            ByteBuffer r = ByteBuffer.wrap(record).order(ByteOrder.LITTLE_ENDIAN);
            long addr = r.getLong(24);
            int cookie = r.getInt(36);
            out.printf("  %s (ATS+PRI) writes unmapped IOVA 0x5000_0000: fault queue delivers %d bytes: addr 0x%x perm 0x%x grpid %d cookie %d%n",
                    ridB, read, addr, r.getInt(16), r.getInt(12), cookie);
            ctx.ioasMap(ioasB, RW, userPage, 4096, addr);
            fq.file().write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(cookie).putInt(0).array());
            Integer retried;
            try {
                retried = pending.get(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                retried = -99;
            }
            boolean answered = retried == 0 && user.read(userPage, 4096)[4095] == 0x33;
            out.printf("    the VMM maps it and answers SUCCESS: page group response -> device retries -> status %d, data landed: %s%n",
                    retried, answered);
            ok &= answered;

            VtdStats stats = unit.stats();
            out.println("  dmar0 statistics:");
            out.printf("    IOTLB      %d hits, %d misses, %d entries (of %d), %d evictions%n", stats.iotlbHits(), stats.iotlbMisses(),
                    stats.iotlbEntries(), unit.config().iotlbEntries(), stats.iotlbEvictions());
            out.printf("    context    %d hits, %d misses; PASID cache %d hits, %d misses%n", stats.contextHits(), stats.contextMisses(),
                    stats.pasidHits(), stats.pasidMisses());
            out.printf("    walks      %d, %d table reads%n", stats.walks(), stats.tableReads());
            out.printf("    faults     %d recorded, %d suppressed (FPD), %d lost%n", stats.faultsRecorded(), stats.faultsSuppressed(), stats.faultsLost());
            out.printf("    queue      %d descriptors run, %d cache entries invalidated, %d errors%n", stats.descriptors(),
                    stats.invalidatedEntries(), stats.queueErrors());
            out.printf("    PRQ        %d page requests, %d page group responses%n", stats.pageRequests(), stats.pageResponses());
            ctx.close();
        } finally {
            pool.shutdownNow();
        }
        out.println(ok ? "VT-d: every DMA landed where the tables said, every stale entry went with its invalidation."
                : "VT-d: a check failed: this is a bug.");
        out.println();
        return ok;
    }
}
