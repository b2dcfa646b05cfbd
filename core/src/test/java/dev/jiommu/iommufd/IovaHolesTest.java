package dev.jiommu.iommufd;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.stream.LongStream;

import static org.assertj.core.api.Assertions.assertThat;

class IovaHolesTest {
    static LongStream seeds() {
        long extra = Long.getLong("jiommu.seed", 0);
        return extra != 0 ? LongStream.of(extra) : LongStream.of(1, 2, 3, 0x5eed);
    }

    /** Random area insertions and removals; every query must equal a scan of a plain interval list. */
    @ParameterizedTest(name = "seed={0}")
    @MethodSource("seeds")
    void firstAfterMatchesALinearScanOfTheHoles(long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        IovaHoles holes = new IovaHoles();
        TreeMap<Long, Long> areas = new TreeMap<>(Long::compareUnsigned);
        long space = 1L << 24;
        for (int step = 0; step < 3000; step++) {
            if (areas.isEmpty() || random.nextInt(3) != 0) {
                long start = random.nextLong(space);
                long length = 1 + random.nextLong(1L << random.nextInt(16));
                long last = start + length - 1;
                if (overlaps(areas, start, last)) {
                    continue;
                }
                areas.put(start, last);
                holes.use(start, last);
            } else {
                List<Long> keys = new ArrayList<>(areas.keySet());
                long start = keys.get(random.nextInt(keys.size()));
                holes.free(start, areas.remove(start));
            }
            long after = random.nextLong(space);
            long min = 1 + random.nextLong(1L << random.nextInt(18));
            long[] expected = naiveFirstAfter(areas, after, min);
            long[] actual = holes.firstAfter(after, min);
            assertThat(actual).as("seed=%d step=%d after=0x%x min=0x%x", seed, step, after, min).isEqualTo(expected);
        }
        assertThat(holes.count()).as("seed=%d", seed).isEqualTo(naiveHoles(areas).size());
    }

    private static boolean overlaps(TreeMap<Long, Long> areas, long start, long last) {
        var below = areas.floorEntry(last);
        return below != null && Long.compareUnsigned(below.getValue(), start) >= 0;
    }

    private static List<long[]> naiveHoles(TreeMap<Long, Long> areas) {
        List<long[]> holes = new ArrayList<>();
        long cur = 0;
        for (var e : areas.entrySet()) {
            if (e.getKey() > cur) {
                holes.add(new long[] {cur, e.getKey() - 1});
            }
            cur = e.getValue() + 1;
        }
        holes.add(new long[] {cur, -1L});
        return holes;
    }

    private static long[] naiveFirstAfter(TreeMap<Long, Long> areas, long after, long min) {
        for (long[] h : naiveHoles(areas)) {
            long size = h[1] - h[0] + 1;
            if (Long.compareUnsigned(h[0], after) > 0 && (size == 0 || Long.compareUnsigned(size, min) >= 0)) {
                return h;
            }
        }
        return null;
    }
}
