package dev.jiommu.pt;

import dev.jiommu.mem.PhysicalMemory;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A page table, its memory and a hardware walker over it, closed with the kernel KUnit's leak
 * check: after destroy, the memory holds exactly the frames it held before the table existed (the
 * kernel compares NR_SECONDARY_PAGETABLE).
 */
final class PageTableFixture implements AutoCloseable {
    /** Address space of a fixture's memory: sparse, so only the table pages written cost host memory. */
    static final long MEMORY_BYTES = 1L << 30;

    final PhysicalMemory memory;
    final PageTable table;
    final PageTableWalker walker;
    /** Frames allocated before the table: one bystander frame, so a table freeing what is not its own shows. */
    final long startFrames;
    private final long bystander;

    PageTableFixture(PageTableFormat format) {
        this(format, MEMORY_BYTES);
    }

    PageTableFixture(PageTableFormat format, long memoryBytes) {
        this(format, PhysicalMemory.create(memoryBytes), format.pageSizes());
    }

    PageTableFixture(PageTableFormat format, PhysicalMemory memory, long pageSizes) {
        this.memory = memory;
        this.bystander = memory.allocateFrame();
        this.startFrames = memory.allocatedFrames();
        this.table = new PageTable(format, memory, pageSizes);
        this.walker = new PageTableWalker(memory);
    }

    PageTableFormat format() {
        return table.format();
    }

    /** Checks the table's own page count against the memory, destroys it, and checks nothing leaked. */
    @Override
    public void close() {
        try {
            assertThat(memory.allocatedFrames() - startFrames)
                    .as("%s: frames allocated since the table was made vs tablePages()", format().name())
                    .isEqualTo(table.tablePages());
            table.destroy();
            assertThat(memory.allocatedFrames())
                    .as("%s: page-table frames leaked after destroy", format().name())
                    .isEqualTo(startFrames);
            memory.free(bystander, PhysicalMemory.FRAME_BYTES);
        } finally {
            memory.close();
        }
    }
}
