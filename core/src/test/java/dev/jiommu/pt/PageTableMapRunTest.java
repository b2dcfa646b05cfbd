package dev.jiommu.pt;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.pt.format.AmdV1;
import dev.jiommu.pt.format.MockFormat;
import dev.jiommu.pt.format.VtdSecondStage;
import dev.jiommu.pt.format.X86_64;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Function;
import java.util.stream.LongStream;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Map places a run of same-size pages without choosing the size again for each: these check, on
 * random ranges, that the pages are exactly those of choosing the largest fitting size page by page,
 * and that a map failing half way with EEXIST names the page that collided and leaves nothing behind.
 */
class PageTableMapRunTest {
    private static final long BASE_IOVA = 1L << 39;
    private static final long GIB = 1L << 30;

    /** One leaf as forEachLeaf reports it, or as the page-by-page choice predicts it. */
    record Leaf(long iova, long pa, int sizeShift) {
        @Override
        public String toString() {
            return String.format("0x%x->0x%x/2^%d", iova, pa, sizeShift);
        }
    }

    static Stream<Arguments> cases() {
        List<Named<Function<PhysicalMemory, PageTable>>> tables = List.of(
                Named.of("vtd-ss", m -> new PageTable(new VtdSecondStage(4), m)),
                Named.of("x86-64", m -> new PageTable(new X86_64(4, true), m)),
                Named.of("amd-v1", m -> new PageTable(new AmdV1(4), m)),
                Named.of("mock", m -> new PageTable(new MockFormat(), m)),
                Named.of("vtd-ss-4k-1g", m -> new PageTable(new VtdSecondStage(4), m, (1L << 12) | (1L << 30))),
                Named.of("amd-v1-4k-2m-1g", m -> new PageTable(new AmdV1(4), m, (1L << 12) | (1L << 21) | (1L << 30))));
        return tables.stream().flatMap(t -> LongStream.range(0, 40).mapToObj(i -> Arguments.of(t, 0x5EED_0000L + i)));
    }

    @ParameterizedTest(name = "{0} seed={1}")
    @MethodSource("cases")
    void mapPlacesThePagesOfThePageByPageChoice(Function<PhysicalMemory, PageTable> tables, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        try (PhysicalMemory memory = PhysicalMemory.create(256L << 20)) {
            PageTable table = tables.apply(memory);
            long[] range = randomRange(random, table.pageSizes());
            long iova = range[0];
            long pa = range[1];
            long lengthBytes = range[2];

            table.map(iova, pa, lengthBytes, Prot.READ_WRITE);

            assertThat(leaves(table)).as("seed=%d iova=0x%x pa=0x%x lengthBytes=0x%x", seed, iova, pa, lengthBytes)
                    .isEqualTo(pageByPage(table.pageSizes(), iova, pa, lengthBytes));
            assertThat(table.unmap(iova, lengthBytes)).isEqualTo(lengthBytes);
            assertThat(table.tablePages()).as("seed=%d", seed).isEqualTo(1);
        }
    }

    @ParameterizedTest(name = "{0} seed={1}")
    @MethodSource("cases")
    void mapCollidingHalfWayNamesThePageAndLeavesNothing(Function<PhysicalMemory, PageTable> tables, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        try (PhysicalMemory memory = PhysicalMemory.create(256L << 20)) {
            PageTable table = tables.apply(memory);
            long granule = Long.lowestOneBit(table.pageSizes());
            long[] range = randomRange(random, table.pageSizes());
            long iova = range[0];
            long lengthBytes = range[2];
            long blocker = iova + random.nextLong(lengthBytes / granule) * granule;
            table.map(blocker, 0, granule, Prot.READ);
            int tablePages = table.tablePages();
            Leaf collided = pageByPage(table.pageSizes(), iova, range[1], lengthBytes).stream()
                    .filter(l -> Long.compareUnsigned(blocker - l.iova(), 1L << l.sizeShift()) < 0)
                    .findFirst().orElseThrow();

            assertThatThrownBy(() -> table.map(iova, range[1], lengthBytes, Prot.READ_WRITE))
                    .as("seed=%d blocker=0x%x", seed, blocker)
                    .isInstanceOfSatisfying(ErrnoException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EEXIST))
                    .hasMessageContaining(String.format("iova=0x%x already mapped", collided.iova()));
            assertThat(leaves(table)).as("seed=%d", seed).containsExactly(new Leaf(blocker, 0, Long.numberOfTrailingZeros(granule)));
            assertThat(table.tablePages()).as("seed=%d", seed).isEqualTo(tablePages);
        }
    }

    /** {@return iova, pa and length: alignments and lengths that make runs stop at table ends and larger pages} */
    private static long[] randomRange(SplittableRandom random, long pageSizes) {
        long granule = Long.lowestOneBit(pageSizes);
        // Start just below a 2 MiB or 1 GiB boundary, or anywhere in the first GiB.
        long iova = switch (random.nextInt(3)) {
            case 0 -> BASE_IOVA + GIB - random.nextLong(1, 64) * granule;
            case 1 -> BASE_IOVA + (2L << 20) * random.nextLong(1, 512) - random.nextLong(0, 600) * granule;
            default -> BASE_IOVA + random.nextLong(GIB / granule) * granule;
        };
        int lengthCase = random.nextInt(4);
        long lengthBytes = switch (lengthCase) {
            case 0 -> random.nextLong(1, 16) * granule;
            case 1 -> random.nextLong(1, 2000) * granule;
            case 2 -> random.nextLong(1, 20_000) * granule;
            default -> GIB + random.nextLong(1, 3000) * granule;
        };
        // The same offset in a GiB as the iova (large pages possible), or any other; over a GiB always
        // the same, or the range would be hundreds of thousands of small pages.
        long pa = lengthCase == 3 || random.nextBoolean()
                ? (random.nextLong(1, 64) * GIB) + (iova & (GIB - 1))
                : random.nextLong(1, 1L << 24) * granule;
        return new long[] {iova, pa, lengthBytes};
    }

    /** {@return the pages of choosing, page by page, the largest allowed size that alignment and length permit} */
    private static List<Leaf> pageByPage(long pageSizes, long iova, long pa, long lengthBytes) {
        List<Leaf> out = new ArrayList<>();
        long done = 0;
        while (done < lengthBytes) {
            int best = -1;
            for (int shift = 0; shift < 63; shift++) {
                long size = 1L << shift;
                if ((pageSizes & size) != 0 && ((iova + done) & (size - 1)) == 0 && ((pa + done) & (size - 1)) == 0
                        && size <= lengthBytes - done) {
                    best = shift;
                }
            }
            out.add(new Leaf(iova + done, pa + done, best));
            done += 1L << best;
        }
        return out;
    }

    private static List<Leaf> leaves(PageTable table) {
        List<Leaf> out = new ArrayList<>();
        table.forEachLeaf((iova, pa, sizeShift, level, entry) -> out.add(new Leaf(iova, pa, sizeShift)));
        return out;
    }
}
