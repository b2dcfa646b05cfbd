package dev.jiommu.hw;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

class TagCacheTest {
    /** Random operations against a HashMap: every present entry is found, nothing absent is, and the bound holds. */
    @ParameterizedTest(name = "seed=0x{0}")
    @ValueSource(longs = {1L, 0x5eed_0f_10ff_e7L, 0xdead_beefL})
    void agreesWithAMapUnderEvictionAndRemoval(long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        TagCache<long[]> cache = new TagCache<>(64);
        Map<List<Long>, long[]> model = new HashMap<>();
        for (int step = 0; step < 20_000; step++) {
            long a = random.nextInt(4);
            long b = random.nextInt(200);
            switch (random.nextInt(4)) {
                case 0, 1 -> {
                    long[] v = {a, b, step};
                    cache.put(a, b, v);
                    model.put(List.of(a, b), v);
                }
                case 2 -> {
                    long[] got = cache.get(a, b);
                    if (got != null) {
                        assertThat(got).as("seed=0x%x step %d", seed, step).isSameAs(model.get(List.of(a, b)));
                    }
                }
                default -> {
                    long lo = random.nextInt(200);
                    cache.removeIf(v -> v[0] == a && v[1] >= lo && v[1] < lo + 20);
                    model.values().removeIf(v -> v[0] == a && v[1] >= lo && v[1] < lo + 20);
                }
            }
            assertThat(cache.size()).isLessThanOrEqualTo(64);
            // the model may hold evicted entries; the cache must never hold one the model lacks
            if (step % 997 == 0) {
                int found = 0;
                for (long x = 0; x < 4; x++) {
                    for (long y = 0; y < 200; y++) {
                        long[] got = cache.get(x, y);
                        if (got != null) {
                            found++;
                            assertThat(got).as("seed=0x%x", seed).isSameAs(model.get(List.of(x, y)));
                        }
                    }
                }
                assertThat(found).as("seed=0x%x", seed).isEqualTo(cache.size());
            }
        }
        assertThat(cache.evictions()).isPositive();
    }
}
