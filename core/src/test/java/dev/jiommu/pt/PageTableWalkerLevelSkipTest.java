package dev.jiommu.pt;

import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.pt.format.AmdV1;
import dev.jiommu.pt.format.VtdSecondStage;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * How the walker steps from a table to the next level: one level down (every format), or several
 * at once where AMD v1's NextLevel skips levels, or a fault where a pointer does not descend.
 */
class PageTableWalkerLevelSkipTest {
    private static final long PA = 0x1234_5000L;

    private final PhysicalMemory memory = PhysicalMemory.create(16L << 20);
    private final PageTableWalker walker = new PageTableWalker(memory);
    private final WalkResult out = new WalkResult();

    @AfterEach
    void closeMemory() {
        memory.close();
    }

    @Test
    void walkDescendsOneLevelPerTableInEveryFormat() {
        for (PageTableFormat format : new PageTableFormat[] {new VtdSecondStage(4), new AmdV1(4)}) {
            PageTable table = new PageTable(format, memory);
            table.map(1L << 39, PA, 4096, Prot.READ_WRITE);

            assertThat(walker.walk(format, table.rootAddress(), (1L << 39) + 0x10, Access.READ, 0, out)).isEqualTo(WalkStatus.OK);
            assertThat(out.outputAddress()).isEqualTo(PA + 0x10);
            assertThat(out.tableReads()).isEqualTo(4);
            table.destroy();
        }
    }

    @Test
    void walkFollowsAnAmdPointerThatSkipsLevelsWhoseIndexesAreZero() {
        AmdV1 format = new AmdV1(4);
        long root = skippingTable(format, 1);

        assertThat(walker.walk(format, root, 0x5010, Access.READ, 0, out)).isEqualTo(WalkStatus.OK);
        assertThat(out.outputAddress()).isEqualTo(PA + 0x10);
        assertThat(out.tableReads()).isEqualTo(2);
    }

    @Test
    void walkFaultsWhenASkippedLevelHasANonZeroIndex() {
        AmdV1 format = new AmdV1(4);
        long root = skippingTable(format, 1);

        assertThat(walker.walk(format, root, (1L << 21) | 0x5010, Access.READ, 0, out)).isEqualTo(WalkStatus.SKIPPED_BITS_NONZERO);
    }

    @Test
    void walkFaultsOnAnAmdPointerThatDoesNotDescend() {
        AmdV1 format = new AmdV1(4);
        long root = skippingTable(format, 4);

        assertThat(walker.walk(format, root, 0x5010, Access.READ, 0, out)).isEqualTo(WalkStatus.RESERVED_BITS);
        assertThat(out.level()).isEqualTo(3);
    }

    /** {@return a root whose slot 0 points, with NextLevel {@code nextLevel}, to a level-0 table mapping 0x5000} */
    private long skippingTable(AmdV1 format, int nextLevel) {
        long root = memory.allocateFrame();
        long leafTable = memory.allocateFrame();
        memory.write64(root, format.tableEntry(leafTable, nextLevel));
        memory.write64(leafTable + 5 * 8, format.leafEntry(PA, 12, 0, Prot.READ_WRITE));
        return root;
    }
}
