package dev.jiommu.pt;

import java.util.Locale;
import java.util.stream.Stream;

/**
 * Seeds for randomized tests: a few fixed ones, plus {@code -Djiommu.seed=} (decimal or 0x-hex) when
 * given, so a failure printed as {@code seed=0x…} replays with that one property.
 */
final class Seeds {
    /** A seed that prints itself the way {@code -Djiommu.seed=} accepts it. */
    record Seed(long value) {
        @Override
        public String toString() {
            return String.format(Locale.ROOT, "0x%x", value);
        }
    }

    static final String PROPERTY = "jiommu.seed";
    private static final long[] FIXED = {1L, 0x5eed_0f_10ff_e7L, 0xdead_beef_cafe_f00dL};

    private Seeds() {
    }

    /** {@return the fixed seeds, and the one from {@code -Djiommu.seed} if set} */
    static Stream<Seed> seeds() {
        String property = System.getProperty(PROPERTY);
        Stream<Seed> fixed = Stream.of(FIXED[0], FIXED[1], FIXED[2]).map(Seed::new);
        if (property == null || property.isBlank()) {
            return fixed;
        }
        return Stream.concat(fixed, Stream.of(new Seed(parse(property.trim()))));
    }

    static long parse(String text) {
        return text.startsWith("0x") || text.startsWith("0X")
                ? Long.parseUnsignedLong(text.substring(2), 16)
                : Long.parseLong(text);
    }
}
