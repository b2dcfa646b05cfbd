package dev.jiommu.bench;

import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.pt.PageTable;
import dev.jiommu.pt.PageTableFormat;
import dev.jiommu.pt.Prot;

/**
 * A page table in physical memory of its own, as the benchmarks set it up. Only the tables live in
 * that memory: the output addresses of leaves need no backing, since nothing reads through them.
 */
final class BenchTable implements AutoCloseable {
    /** Where every benchmark maps: 512 GiB, aligned to the span of a table at every level below the root. */
    static final long BASE_IOVA = 1L << 39;
    /** Where every benchmark's output range starts: 1 TiB, aligned to every page size. */
    static final long BASE_PA = 1L << 40;
    /** Room for the tables: a few dozen frames are used; the rest is never touched (memory is sparse). */
    static final long TABLE_MEMORY_BYTES = 64L << 20;
    /** Entries in every table of the formats benchmarked. */
    static final int TABLE_ENTRIES = 512;
    static final long SMALL_PAGE_BYTES = 4096;
    /** The IOVA bytes one leaf table of 4 KiB pages covers. */
    static final long SMALL_LEAF_TABLE_SPAN_BYTES = SMALL_PAGE_BYTES * TABLE_ENTRIES;

    final PageTableFormat format;
    final PhysicalMemory memory;
    final PageTable table;

    BenchTable(String formatName) {
        this.format = FormatParam.create(formatName);
        this.memory = PhysicalMemory.create(TABLE_MEMORY_BYTES);
        this.table = new PageTable(format, memory);
    }

    /** {@return the offset of the neighbour page that keeps a leaf table of {@code pageBytes} pages alive} */
    static long neighbourOffset(long pageBytes) {
        return (long) (TABLE_ENTRIES - 1) * pageBytes;
    }

    /** {@return a table whose single-page batch at BASE_IOVA never empties its leaf table: the neighbour holds it} */
    static BenchTable forSinglePages(String formatName, long pageBytes) {
        BenchTable bench = new BenchTable(formatName);
        long neighbour = neighbourOffset(pageBytes);
        bench.mapPages(BASE_IOVA + neighbour, BASE_PA + neighbour, pageBytes, 1);
        return bench;
    }

    /** {@return a table for {@code ranges} ranges of {@code pages} 4 KiB pages, each leaf table kept by a neighbour} */
    static BenchTable forRanges(String formatName, int pages, int ranges) {
        if (pages < 1 || pages >= TABLE_ENTRIES) {
            throw new IllegalArgumentException("pages=" + pages + ": must leave the neighbour's slot free, so 1.." + (TABLE_ENTRIES - 1));
        }
        BenchTable bench = new BenchTable(formatName);
        long neighbour = neighbourOffset(SMALL_PAGE_BYTES);
        for (int r = 0; r < ranges; r++) {
            bench.mapPages(rangeIova(r) + neighbour, BASE_PA + neighbour, SMALL_PAGE_BYTES, 1);
        }
        return bench;
    }

    /** {@return the IOVA of the {@code index}th range of 4 KiB pages: one range per leaf table} */
    static long rangeIova(int index) {
        return BASE_IOVA + index * SMALL_LEAF_TABLE_SPAN_BYTES;
    }

    /**
     * {@return the output address of the {@code index}th range of 4 KiB pages}: an odd frame, so every
     * format builds 4 KiB leaves (with an aligned output AMD v1 would map 1 MiB as one contiguous leaf)
     */
    static long rangePa(int index) {
        return BASE_PA + index * SMALL_LEAF_TABLE_SPAN_BYTES + SMALL_PAGE_BYTES;
    }

    /** Maps {@code count} pages of {@code pageBytes} one map call each, so no format merges them into a larger page. */
    void mapPages(long iova, long pa, long pageBytes, int count) {
        for (int i = 0; i < count; i++) {
            table.map(iova + i * pageBytes, pa + i * pageBytes, pageBytes, Prot.READ_WRITE);
        }
    }

    /** Fails unless {@code iova} translates to {@code pa}: a benchmark that measures a miss measures nothing. */
    void expectTranslation(long iova, long pa) {
        long found = table.iovaToPhys(iova);
        if (found != pa) {
            throw new IllegalStateException(String.format("%s: iova=0x%x translates to 0x%x, expected 0x%x", format.name(), iova, found, pa));
        }
    }

    /** Fails unless nothing in [iova, iova + count * pageBytes) is mapped (checked at each page's start). */
    void expectUnmapped(long iova, long pageBytes, int count) {
        for (int i = 0; i < count; i++) {
            long found = table.iovaToPhys(iova + i * pageBytes);
            if (found != PageTable.NOT_MAPPED) {
                throw new IllegalStateException(String.format("%s: iova=0x%x still translates to 0x%x", format.name(), iova + i * pageBytes, found));
            }
        }
    }

    @Override
    public void close() {
        table.destroy();
        memory.close();
    }
}
