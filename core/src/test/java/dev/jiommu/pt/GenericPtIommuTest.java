package dev.jiommu.pt;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.pt.FormatConfigs.FormatConfig;
import dev.jiommu.pt.PageTableAssertions.Leaf;
import dev.jiommu.pt.Seeds.Seed;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;

import static dev.jiommu.pt.PageTableAssertions.alignUp;
import static dev.jiommu.pt.PageTableAssertions.assertRangeTranslates;
import static dev.jiommu.pt.PageTableAssertions.clearLow;
import static dev.jiommu.pt.PageTableAssertions.leafCount;
import static dev.jiommu.pt.PageTableAssertions.leafCountsByShift;
import static dev.jiommu.pt.PageTableAssertions.leaves;
import static dev.jiommu.pt.PageTableAssertions.lowBits;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Port of the kernel's generic_pt whole-IOMMU KUnit cases ({@code torvalds/linux:
 * drivers/iommu/generic_pt/kunit_iommu_pt.h}) over every {@link FormatConfigs} configuration: the
 * kernel's map/unmap/iova_to_phys checks, each address also translated by the hardware walker.
 *
 * <p>Differences from the kernel, on purpose:
 * <ul>
 * <li>{@code test_increase_level} is left out: our tables have a fixed top level chosen at
 *     construction (the format's level count; the kernel's PT_FEAT_DYNAMIC_TOP does not exist here),
 *     so there is nothing to grow and a test would only fake it.</li>
 * <li>Overmapping reports EEXIST where generic_pt says EADDRINUSE (our {@link PageTable} follows the
 *     iommufd errno for an overlapping map).</li>
 * <li>Our unmap frees every table it empties, so after each case that unmaps everything we also
 *     check that only the root is left; the kernel keeps empty tables until teardown.</li>
 * <li>{@code check_iova} is sampled on long ranges ({@link PageTableAssertions#assertRangeTranslates}).</li>
 * </ul>
 * Teardown destroys the table and checks that the memory holds no page-table frame any more, as
 * the kernel checks NR_SECONDARY_PAGETABLE.
 */
@ParameterizedClass(name = "{0}")
@MethodSource("dev.jiommu.pt.FormatConfigs#all")
class GenericPtIommuTest {
    private static final long SZ_1G = 1L << 30;
    private static final long SZ_2G = 1L << 31;
    private static final long SZ_16G = 1L << 34;
    /** The kernel's priv->test_oa before it is reduced to the output size. */
    private static final long TEST_OA_SEED = 0x74a7_1445_dead_beefL;

    @Parameter
    FormatConfig config;

    private PageTableFixture fixture;
    private PageTable table;
    private PageTableFormat format;
    private int smallestShift;
    private long smallest;
    /** pageSizes below 2^(inputBits - 1): sizes that leave VA room to place them (kernel safe_pgsize_bitmap). */
    private long safePageSizes;
    private long testOa;

    @BeforeEach
    void setUp() {
        format = config.format();
        fixture = new PageTableFixture(format);
        table = fixture.table;
        smallestShift = Long.numberOfTrailingZeros(table.pageSizes());
        smallest = 1L << smallestShift;
        safePageSizes = lowBits(table.pageSizes(), format.inputBits() - 1);
        testOa = lowBits(TEST_OA_SEED, format.outputBits());
    }

    @AfterEach
    void tearDown() {
        fixture.close();
    }

    @Test
    void test_map_simple() {
        long va = smallest * 256;
        for (int shift = 0; shift < 64; shift++) {
            long len = 1L << shift;
            if ((safePageSizes & len) == 0) {
                continue;
            }
            long pa = clearLow(testOa, shift);
            va = alignUp(va, len);
            doMap(va, pa, len);
            if (len <= SZ_2G) {
                checkIova(va, pa, len);
            }
            va += len;
        }

        long[] counts = leafCountsByShift(table);
        for (int shift = 0; shift < 64; shift++) {
            assertThat(counts[shift])
                    .as("%s: leaves of 2^%d after mapping one page of every size", format, shift)
                    .isEqualTo((safePageSizes & (1L << shift)) != 0 ? 1 : 0);
        }

        va = smallest * 256;
        for (int shift = 0; shift < 64; shift++) {
            long len = 1L << shift;
            if ((safePageSizes & len) == 0) {
                continue;
            }
            va = alignUp(va, len);
            doUnmap(va, len);
            va += len;
        }
        assertEmpty();
    }

    /**
     * Fills one largest page's worth of IOVA with pages of each smaller size in turn, checks it,
     * and unmaps it in two different shapes; the next, larger size then lands where the smaller
     * pages' tables were.
     */
    @Test
    void test_map_table_to_oa() {
        long limited = lowBits(table.pageSizes(), Long.numberOfTrailingZeros(SZ_16G));
        long maxPageSize = Long.highestOneBit(limited);
        assertThat(table.pageSizes() & maxPageSize).isNotZero();

        for (int shift = 0; shift < 64; shift++) {
            long len = 1L << shift;
            if ((table.pageSizes() & len) == 0) {
                continue;
            }
            if (len > maxPageSize) {
                break;
            }
            long pa = clearLow(testOa, shift);
            long va = alignUp(smallest * 256, maxPageSize);
            for (long offset = 0; offset != maxPageSize; offset += len) {
                doMap(va + offset, pa + offset, len);
            }
            checkIova(va, pa, maxPageSize);
            assertOnlySize(shift, maxPageSize >>> shift);

            if (len == maxPageSize) {
                doUnmap(va, maxPageSize);
            } else {
                doUnmap(va, maxPageSize / 2);
                for (long offset = maxPageSize / 2; offset != maxPageSize; offset += len) {
                    doUnmap(va + offset, len);
                }
            }
            assertEmpty();
        }
    }

    /** Unmapping a small page at the start of a large one removes the whole large page, and no more. */
    @Test
    void test_unmap_split() {
        int pairs = 0;
        for (int baseShift = 0; baseShift < 64; baseShift++) {
            long baseLen = 1L << baseShift;
            if ((safePageSizes & baseLen) == 0) {
                continue;
            }
            for (int nextShift = baseShift + 1; nextShift < 64; nextShift++) {
                long nextLen = 1L << nextShift;
                if ((safePageSizes & nextLen) == 0) {
                    continue;
                }
                long va = 0;
                long pa = 0;
                doMap(va, pa, nextLen);
                assertThat(table.unmap(va, baseLen))
                        .as("%s: unmap 2^%d at the start of a 2^%d page", format, baseShift, nextShift)
                        .isEqualTo(nextLen);
                PageTableAssertions.assertNotMapped(table, fixture.walker, va);

                // Make sure unmap does not keep going into the next page.
                doMap(va, pa, nextLen);
                doMap(va + nextLen, pa, nextLen);
                assertThat(table.unmap(va, baseLen))
                        .as("%s: unmap 2^%d at the start of the first of two 2^%d pages", format, baseShift, nextShift)
                        .isEqualTo(nextLen);
                PageTableAssertions.assertTranslates(table, fixture.walker, va + nextLen, pa);
                assertThat(table.unmap(va + nextLen, nextLen)).isEqualTo(nextLen);
                assertEmpty();
                pairs++;
            }
        }
        assumeTrue(pairs > 0, "test needs two page sizes");
    }

    /**
     * Random ranges in the first GiB (and, for sign-extended formats, half the time in the first GiB
     * of the upper half), mapped identity-like; a map over existing ranges must fail with EEXIST, after
     * which the colliding ranges are checked, unmapped (each returning exactly its length) and the map
     * retried.
     */
    @ParameterizedTest(name = "test_random_map seed={0}")
    @MethodSource("dev.jiommu.pt.Seeds#seeds")
    void test_random_map(Seed seed) {
        SplittableRandom random = new SplittableRandom(seed.value());
        String context = format + " seed=" + seed;
        long lowerFirst = smallest;
        long lowerLast = SZ_1G;
        long upperFirst = format.signExtended() ? -(1L << (format.inputBits() - 1)) : 0;
        long upperLast = upperFirst + SZ_1G;
        // Reference interval map, unsigned order: start -> last (inclusive).
        TreeMap<Long, Long> mapped = new TreeMap<>(Long::compareUnsigned);

        for (int iter = 0; iter < 1000; iter++) {
            boolean upper = format.signExtended() && random.nextBoolean();
            long first = upper ? upperFirst : lowerFirst;
            long last = upper ? upperLast : lowerLast;
            long start = random.nextLong(last - first);
            long end = random.nextLong(last - first - start);
            start = clearLow(start, smallestShift) + first;
            end = alignUp(end, smallest) + start;
            if (Long.compareUnsigned(start, end) >= 0 || Long.compareUnsigned(end - 1, last) > 0) {
                continue;
            }
            long len = end - start;
            long pa = lowBits(start, format.outputBits());
            boolean collides = !overlapping(mapped, start, end - 1).isEmpty();
            try {
                table.map(start, pa, len, Prot.READ_WRITE);
                if (collides) {
                    fail("%s iter=%d: map [0x%x, 0x%x) over existing ranges %s succeeded", context, iter, start, end,
                            overlapping(mapped, start, end - 1));
                }
            } catch (ErrnoException e) {
                assertThat(e.errno()).as("%s iter=%d: %s", context, iter, e.getMessage()).isEqualTo(Errno.EEXIST);
                assertThat(collides).as("%s iter=%d: EEXIST without a collision: %s", context, iter, e.getMessage()).isTrue();
                unmapCollisions(mapped, start, end - 1);
                doMap(start, pa, len);
            }
            mapped.put(start, end - 1);
            checkIova(start, pa, len);
        }

        unmapCollisions(mapped, 0, -1L);
        assertEmpty();
    }

    /** Regression test for an AMD driver bug mapping at 0xfef80000 (lore b9b18a03-…@amd.com). */
    @Test
    void test_pgsize_boundary() {
        assumeTrue(format.inputBits() > 32 && smallest == 4096, "format does not have the required range");
        long va = 0xfef8_0000L;
        long pa = 0x20_8b95_d000L;
        long len = 0xfef9_ffffL - va + 1;
        doMap(va, pa, len);
        checkIova(va, pa, len);
        // pa is only 4 KiB aligned, so nothing larger may be used.
        long[] counts = leafCountsByShift(table);
        assertThat(counts[12]).as("%s: 4 KiB leaves", format).isEqualTo(len >>> 12);
        assertThat(leafCount(table)).isEqualTo(len >>> 12);
    }

    /** Regression test for a mixed 2M/1G split (lore 20250826143816.38686-1-eugkoira@amazon.com). */
    @Test
    void test_mixed() {
        long start = 0x3fe400L << 12;
        long end = 0x4c0600L << 12;
        assumeTrue(format.inputBits() > 35, "range is too small");
        long twoMegToOneGig = 0x7FE0_0000L; // GENMASK(30, 21)
        assumeTrue((safePageSizes & twoMegToOneGig) == ((1L << 30) | (1L << 21)), "incompatible page sizes");

        doMap(start, start, end - start);
        long[] counts = leafCountsByShift(table);
        assertThat(leafCount(table)).as("%s: leaves (14 x 2M, 3 x 1G, 3 x 2M)", format).isEqualTo(20);
        assertThat(counts[21]).as("%s: 2 MiB leaves", format).isEqualTo(17);
        assertThat(counts[30]).as("%s: 1 GiB leaves", format).isEqualTo(3);
        List<Leaf> leaves = leaves(table);
        assertThat(leaves.stream().mapToInt(Leaf::sizeShift).toArray())
                .as("%s: leaf sizes in IOVA order", format)
                .containsExactly(21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 30, 30, 30, 21, 21, 21);
        checkIova(start, start, end - start);
    }

    // ---- helpers in the spirit of the kernel's do_map / do_unmap / check_iova -----------------------

    private void doMap(long va, long pa, long len) {
        try {
            table.map(va, pa, len, Prot.READ_WRITE);
        } catch (ErrnoException e) {
            fail("%s: map va=0x%x pa=0x%x len=0x%x failed: %s", format, va, pa, len, e.getMessage());
        }
    }

    private void doUnmap(long va, long len) {
        assertThat(table.unmap(va, len)).as("%s: unmap va=0x%x len=0x%x returned", format, va, len).isEqualTo(len);
    }

    private void checkIova(long va, long pa, long len) {
        assertRangeTranslates(table, fixture.walker, va, pa, len);
    }

    private void assertOnlySize(int shift, long expected) {
        long[] counts = leafCountsByShift(table);
        for (int s = 0; s < 64; s++) {
            assertThat(counts[s]).as("%s: leaves of 2^%d", format, s).isEqualTo(s == shift ? expected : 0);
        }
    }

    /** Nothing mapped, and every table but the root freed. */
    private void assertEmpty() {
        assertThat(leafCount(table)).as("%s: leaves left", format).isZero();
        assertThat(table.tablePages()).as("%s: table pages left besides the root", format)
                .isEqualTo(PageTableAssertions.rootTablePages(format));
    }

    private static List<Map.Entry<Long, Long>> overlapping(TreeMap<Long, Long> mapped, long first, long last) {
        List<Map.Entry<Long, Long>> out = new ArrayList<>();
        Map.Entry<Long, Long> before = mapped.floorEntry(first);
        if (before != null && Long.compareUnsigned(before.getValue(), first) >= 0) {
            out.add(before);
        }
        for (Map.Entry<Long, Long> e : mapped.subMap(first, true, last, true).entrySet()) {
            if (before == null || !e.getKey().equals(before.getKey())) {
                out.add(e);
            }
        }
        return out;
    }

    private void unmapCollisions(TreeMap<Long, Long> mapped, long first, long last) {
        for (Map.Entry<Long, Long> e : overlapping(mapped, first, last)) {
            long start = e.getKey();
            long len = e.getValue() - start + 1;
            mapped.remove(start);
            checkIova(start, lowBits(start, format.outputBits()), len);
            doUnmap(start, len);
        }
    }
}
