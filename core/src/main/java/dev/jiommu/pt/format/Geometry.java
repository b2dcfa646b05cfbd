package dev.jiommu.pt.format;

import java.util.Arrays;

/** Builders for the per-level arrays a {@link dev.jiommu.pt.PageTableFormat} is made of. */
final class Geometry {
    private Geometry() {
    }

    /** {@return item shifts for {@code levels} levels of {@code bitsPerLevel} above a {@code granuleShift} page} */
    static int[] itemShifts(int granuleShift, int bitsPerLevel, int levels) {
        int[] shifts = new int[levels];
        for (int l = 0; l < levels; l++) {
            shifts[l] = granuleShift + l * bitsPerLevel;
        }
        return shifts;
    }

    static int[] uniform(int bits, int levels) {
        int[] out = new int[levels];
        Arrays.fill(out, bits);
        return out;
    }

    /**
     * {@return leaf-size bitmaps for a format whose level {@code l} holds pages of
     * 2^{@code shiftsByLevel[l]} bytes, for as many of those as there are levels}
     */
    static long[] sizesAtLevels(int levels, int... shiftsByLevel) {
        long[] sizes = new long[levels];
        for (int l = 0; l < levels && l < shiftsByLevel.length; l++) {
            sizes[l] = 1L << shiftsByLevel[l];
        }
        return sizes;
    }
}
