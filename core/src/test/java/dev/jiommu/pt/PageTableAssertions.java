package dev.jiommu.pt;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.mem.PhysicalMemory;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

/**
 * Assertions shared by the pt tests. The rule they enforce everywhere: the hardware walker
 * ({@link PageTableWalker#walk}, a READ request that updates no accessed/dirty state) and the
 * software lookup ({@link PageTable#iovaToPhys}) agree on every address a test checks.
 */
final class PageTableAssertions {
    /** Ranges up to this many smallest pages are checked page by page; longer ones are sampled. */
    static final int EXHAUSTIVE_PAGES = 128;
    private static final int EDGE_PAGES = 32;
    private static final int SPREAD_PAGES = 64;

    private PageTableAssertions() {
    }

    /**
     * Asserts that the walker (READ, no A/D updates) and {@link PageTable#iovaToPhys} agree at
     * {@code iova}: both translate to the same address, or neither translates.
     *
     * @return the address, or {@link PageTable#NOT_MAPPED}
     */
    static long assertWalkerAgrees(PageTable table, PageTableWalker walker, long iova) {
        return assertWalkerAgrees(table, walker, iova, Access.READ);
    }

    /** As {@link #assertWalkerAgrees(PageTable, PageTableWalker, long)}, for a request of {@code access}. */
    static long assertWalkerAgrees(PageTable table, PageTableWalker walker, long iova, int access) {
        WalkResult result = new WalkResult();
        WalkStatus status = walker.walk(table.format(), table.rootAddress(), iova, access, 0, result);
        long phys = table.iovaToPhys(iova);
        if (phys == PageTable.NOT_MAPPED) {
            assertThat(status)
                    .as("%s iova=0x%x: iovaToPhys finds nothing but the walker says %s", table.format().name(), iova, result)
                    .isIn(WalkStatus.NOT_PRESENT, WalkStatus.ADDRESS_SIZE, WalkStatus.NON_CANONICAL);
        } else {
            assertThat(status)
                    .as("%s iova=0x%x: iovaToPhys gives 0x%x but the walker (%s) says %s",
                            table.format().name(), iova, phys, Access.describe(access), result)
                    .isEqualTo(WalkStatus.OK);
            assertThat(result.outputAddress())
                    .as("%s iova=0x%x: walker %s vs iovaToPhys 0x%x", table.format().name(), iova, result, phys)
                    .isEqualTo(phys);
        }
        return phys;
    }

    /** Asserts that walker and lookup both translate {@code iova} to {@code expectedPa}. */
    static void assertTranslates(PageTable table, PageTableWalker walker, long iova, long expectedPa) {
        long phys = assertWalkerAgrees(table, walker, iova);
        assertThat(phys)
                .as("%s iova=0x%x translates to", table.format().name(), iova)
                .isEqualTo(expectedPa);
    }

    /** Asserts that neither walker nor lookup translates {@code iova}. */
    static void assertNotMapped(PageTable table, PageTableWalker walker, long iova) {
        long phys = assertWalkerAgrees(table, walker, iova);
        assertThat(phys)
                .as("%s iova=0x%x should not be mapped", table.format().name(), iova)
                .isEqualTo(PageTable.NOT_MAPPED);
    }

    /**
     * Asserts that [iova, iova + lengthBytes) translates linearly to pa, the kernel's check_iova.
     * Every smallest page when there are at most {@value #EXHAUSTIVE_PAGES}; otherwise the first and
     * last {@value #EDGE_PAGES} and {@value #SPREAD_PAGES} spread between them at uneven offsets (a
     * range of many pages holds few leaves, and the edges are where leaf sizes change).
     */
    static void assertRangeTranslates(PageTable table, PageTableWalker walker, long iova, long pa, long lengthBytes) {
        int granuleShift = Long.numberOfTrailingZeros(table.pageSizes());
        long pages = lengthBytes >>> granuleShift;
        if (Long.compareUnsigned(pages, EXHAUSTIVE_PAGES) <= 0) {
            for (long i = 0; i < pages; i++) {
                assertTranslates(table, walker, iova + (i << granuleShift), pa + (i << granuleShift));
            }
        } else {
            for (long i = 0; i < EDGE_PAGES; i++) {
                assertTranslates(table, walker, iova + (i << granuleShift), pa + (i << granuleShift));
                long tail = pages - 1 - i;
                assertTranslates(table, walker, iova + (tail << granuleShift), pa + (tail << granuleShift));
            }
            long middle = pages - 2 * EDGE_PAGES;
            for (long k = 0; k < SPREAD_PAGES; k++) {
                // Golden-ratio spacing: lands on different offsets within large pages.
                long i = EDGE_PAGES + Long.remainderUnsigned(k * 0x9E37_79B9_7F4A_7C15L >>> 1, middle);
                assertTranslates(table, walker, iova + (i << granuleShift), pa + (i << granuleShift));
            }
        }
        long offset = Math.min(42, (1L << granuleShift) - 1);
        assertTranslates(table, walker, iova + offset, pa + offset);
    }

    // ---- leaves --------------------------------------------------------------------------------

    /** One leaf as {@link PageTable#forEachLeaf} reports it. */
    record Leaf(long iova, long pa, int sizeShift, int level, long entry) {
        @Override
        public String toString() {
            return String.format(Locale.ROOT, "Leaf[iova=0x%x pa=0x%x size=2^%d level=%d entry=0x%x]", iova, pa, sizeShift, level, entry);
        }
    }

    static List<Leaf> leaves(PageTable table) {
        List<Leaf> out = new ArrayList<>();
        table.forEachLeaf((iova, pa, sizeShift, level, entry) -> out.add(new Leaf(iova, pa, sizeShift, level, entry)));
        return out;
    }

    /** {@return the number of leaves of each size, indexed by log2 of the size (contiguous leaves count once)} */
    static long[] leafCountsByShift(PageTable table) {
        long[] counts = new long[64];
        table.forEachLeaf((iova, pa, sizeShift, level, entry) -> counts[sizeShift]++);
        return counts;
    }

    static long leafCount(PageTable table) {
        long[] n = new long[1];
        table.forEachLeaf((iova, pa, sizeShift, level, entry) -> n[0]++);
        return n[0];
    }

    /** What a failed operation must leave exactly as it found: every leaf (raw entry included) and every table page. */
    record Snapshot(List<Leaf> leaves, int tablePages, long allocatedFrames) {
    }

    static Snapshot snapshot(PageTable table, PhysicalMemory memory) {
        return new Snapshot(leaves(table), table.tablePages(), memory.allocatedFrames());
    }

    // ---- reaching into a table -----------------------------------------------------------------

    /**
     * {@return the table address at each level on the path to {@code iova}}, 0 for levels the path
     * does not reach (it ends in an empty entry or a leaf above them). Follows level-skipping pointers.
     */
    static long[] pathTables(PageTable table, PhysicalMemory memory, long iova) {
        PageTableFormat format = table.format();
        long[] path = new long[format.levels()];
        long current = table.rootAddress();
        int level = format.topLevel();
        while (true) {
            path[level] = current;
            if (level == 0) {
                return path;
            }
            long entry = memory.read64(current + ((long) format.index(iova, level) << 3));
            if (format.kind(entry, level) != PageTableFormat.TABLE) {
                return path;
            }
            current = format.tableAddress(entry);
            level = format.childLevel(entry, level);
        }
    }

    /** {@return the physical address of the slot translating {@code iova} in the table of {@code level} on its path} */
    static long slotAddress(PageTable table, PhysicalMemory memory, long iova, int level) {
        long tableAddress = pathTables(table, memory, iova)[level];
        assertThat(tableAddress).as("%s: no table at level %d on the path to 0x%x", table.format().name(), level, iova).isNotZero();
        return tableAddress + ((long) table.format().index(iova, level) << 3);
    }

    // ---- errno ---------------------------------------------------------------------------------

    /** Asserts that {@code call} throws an {@link ErrnoException} carrying {@code errno}; {@return it} */
    static ErrnoException assertErrno(Errno errno, ThrowingCallable call) {
        Throwable thrown = catchThrowable(call);
        assertThat(thrown).as("expected %s, but the call returned normally", errno).isNotNull();
        assertThat(thrown).as("expected %s", errno).isInstanceOf(ErrnoException.class);
        ErrnoException e = (ErrnoException) thrown;
        assertThat(e.errno()).as("errno of: %s", e.getMessage()).isEqualTo(errno);
        return e;
    }

    // ---- arithmetic ------------------------------------------------------------------------------

    static long alignUp(long value, long alignment) {
        return (value + alignment - 1) & -alignment;
    }

    /** {@return {@code value} with its low {@code shift} bits cleared (the kernel's log2_set_mod(v, 0, shift))} */
    static long clearLow(long value, int shift) {
        return shift >= 64 ? 0 : value & -(1L << shift);
    }

    /** {@return the low {@code bits} bits of {@code value} (the kernel's log2_mod)} */
    static long lowBits(long value, int bits) {
        return bits >= 64 ? value : value & ((1L << bits) - 1);
    }

    /**
     * The brute-force oracle for {@link PageTable#bestPageShift} (the kernel's ref_best_pgsize): the
     * largest size in {@code pageSizes} to which iova and pa are aligned and that fits in the
     * (unsigned) length; -1 if none.
     */
    static int referenceBestPageShift(long pageSizes, long iova, long pa, long lengthBytes) {
        for (int shift = 63; shift >= 0; shift--) {
            long size = 1L << shift;
            if ((pageSizes & size) != 0 && (iova & (size - 1)) == 0 && (pa & (size - 1)) == 0
                    && Long.compareUnsigned(size, lengthBytes) <= 0) {
                return shift;
            }
        }
        return -1;
    }

    /** {@return the frames a table of {@code format} keeps when empty: its root (concatenated or big-granule roots take several)} */
    static long rootTablePages(PageTableFormat format) {
        return Math.max(dev.jiommu.mem.PhysicalMemory.FRAME_BYTES, format.tableBytes(format.topLevel()))
                / dev.jiommu.mem.PhysicalMemory.FRAME_BYTES;
    }
}
