package dev.jiommu.app;

import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.pt.Access;
import dev.jiommu.pt.DirtyBitmap;
import dev.jiommu.pt.PageTable;
import dev.jiommu.pt.PageTableFormat;
import dev.jiommu.pt.PageTableWalker;
import dev.jiommu.pt.Prot;
import dev.jiommu.pt.WalkResult;
import dev.jiommu.pt.WalkStatus;

import java.util.ArrayList;
import java.util.List;

/**
 * One format's part of {@code jiommu demo}: maps a range that needs every page size the format has,
 * walks every page the way the hardware does, provokes two faults, and tracks dirty pages.
 */
final class PageTableDemo {
    /** What the demo found for one format; every number is counted, not assumed. */
    record Report(String format, String description, long iova, long lengthBytes, long paOffset, List<String> leafRuns,
                  int leaves, int tablePages, int walks, int walksAgreeing, double readsPerWalk,
                  String notMapped, String readOnlyWrite, List<String> dirtyRanges, long dirtyPagesAfterClear,
                  int tablePagesAfterUnmap, int rootTablePages, long framesLeaked) {
    }

    private static final int HW_AD = PageTableWalker.UPDATE_ACCESSED | PageTableWalker.UPDATE_DIRTY;

    private PageTableDemo() {
    }

    static Report run(PageTableFormat format, String description) {
        try (PhysicalMemory memory = PhysicalMemory.create(1L << 30)) {
            long framesBefore = memory.allocatedFrames();
            PageTable table = new PageTable(format, memory);
            int rootTablePages = table.tablePages();
            PageTableWalker walker = new PageTableWalker(memory);
            WalkResult walk = new WalkResult();

            // The smallest page of each of the first three levels that have pages: e.g. 4K, 2M, 1G.
            List<Long> natural = naturalSizes(format);
            long small = natural.get(0);
            long medium = natural.get(Math.min(1, natural.size() - 1));
            long big = Math.min(natural.getLast(), 1L << 30);
            // Start 2 small + 1 medium page below a big boundary, so map must step up and down again.
            long iova = 2 * big - medium - 2 * small;
            long lengthBytes = 2 * small + medium + big + medium + small;
            long paOffset = 4 * big;
            table.map(iova, iova + paOffset, lengthBytes, Prot.READ_WRITE);

            List<long[]> leaves = new ArrayList<>();
            table.forEachLeaf((leafIova, pa, sizeShift, level, entry) -> leaves.add(new long[] {leafIova, pa, sizeShift}));
            int tablePages = table.tablePages();

            int walks = 0;
            int agreeing = 0;
            long reads = 0;
            for (long[] leaf : leaves) {
                for (long at : new long[] {leaf[0], leaf[0] + (1L << leaf[2]) - 1}) {
                    walker.walk(format, table.rootAddress(), at, Access.READ, 0, walk);
                    walks++;
                    reads += walk.tableReads();
                    if (walk.ok() && walk.outputAddress() == table.iovaToPhys(at) && walk.outputAddress() == at + paOffset) {
                        agreeing++;
                    }
                }
            }

            walker.walk(format, table.rootAddress(), iova + lengthBytes, Access.READ, 0, walk);
            String notMapped = walk.toString();
            long readOnly = iova + lengthBytes + big;
            table.map(readOnly, readOnly + paOffset, small, Prot.READ);
            walker.walk(format, table.rootAddress(), readOnly, Access.WRITE, 0, walk);
            String readOnlyWrite = walk.status() == WalkStatus.PERMISSION ? walk.toString() : "UNEXPECTED " + walk;
            table.unmap(readOnly, small);

            // Dirty tracking: start clean, write three places, read-and-clear, read again.
            DirtyBitmap clear = new DirtyBitmap(iova, Long.numberOfTrailingZeros(small), lengthBytes / small);
            table.readAndClearDirty(iova, lengthBytes, clear, false);
            for (long at : new long[] {iova, iova + 2 * small + medium + big / 2, iova + lengthBytes - 1}) {
                walker.walk(format, table.rootAddress(), at, Access.WRITE, HW_AD, walk);
            }
            DirtyBitmap dirty = new DirtyBitmap(iova, Long.numberOfTrailingZeros(small), lengthBytes / small);
            table.readAndClearDirty(iova, lengthBytes, dirty, false);
            DirtyBitmap again = new DirtyBitmap(iova, Long.numberOfTrailingZeros(small), lengthBytes / small);
            table.readAndClearDirty(iova, lengthBytes, again, false);

            table.unmap(iova, lengthBytes);
            int tablesAfterUnmap = table.tablePages();
            table.destroy();
            return new Report(format.name(), description, iova, lengthBytes, paOffset, runs(leaves), leaves.size(),
                    tablePages, walks, agreeing, (double) reads / walks, notMapped, readOnlyWrite, dirtyRanges(dirty, small),
                    again.cardinality(), tablesAfterUnmap, rootTablePages, memory.allocatedFrames() - framesBefore);
        }
    }

    private static List<Long> naturalSizes(PageTableFormat format) {
        List<Long> sizes = new ArrayList<>();
        for (int level = 0; level < format.levels() && sizes.size() < 3; level++) {
            long atLevel = format.leafSizes(level);
            if (atLevel != 0) {
                sizes.add(Long.lowestOneBit(atLevel));
            }
        }
        return sizes;
    }

    /** {@return the leaves as runs of equal sizes, in IOVA order: "2 x 4K", "1 x 2M", …} */
    private static List<String> runs(List<long[]> leaves) {
        List<String> runs = new ArrayList<>();
        int i = 0;
        while (i < leaves.size()) {
            int j = i;
            while (j < leaves.size() && leaves.get(j)[2] == leaves.get(i)[2]) {
                j++;
            }
            runs.add((j - i) + " x " + Sizes.human(1L << leaves.get(i)[2]));
            i = j;
        }
        return runs;
    }

    private static List<String> dirtyRanges(DirtyBitmap bitmap, long pageBytes) {
        List<String> ranges = new ArrayList<>();
        long i = 0;
        while (i < bitmap.pages()) {
            if (!bitmap.isSet(i)) {
                i++;
                continue;
            }
            long j = i;
            while (j < bitmap.pages() && bitmap.isSet(j)) {
                j++;
            }
            long start = bitmap.baseIova() + i * pageBytes;
            ranges.add(String.format("0x%x+%s", start, Sizes.human((j - i) * pageBytes)));
            i = j;
        }
        return ranges;
    }
}
