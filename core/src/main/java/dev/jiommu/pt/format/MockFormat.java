package dev.jiommu.pt.format;

/**
 * The iommufd selftest mock's table: AMD v1 with a 2 KiB granule (so the IO page is half a CPU page
 * and sub-page offsets get exercised), 56 input and 51 output bits, still 4 KiB, 512-entry tables:
 * level 0 maps 2 KiB, level 1 the 1 MiB "huge" page, then 512 MiB, 256 GiB (iommufd-uapi.md §8.3).
 */
public final class MockFormat extends AmdV1 {
    /** log2 of the mock IO page: 2 KiB. */
    public static final int GRANULE_SHIFT = 11;

    /** The full five-level mock table (56-bit input). */
    public MockFormat() {
        this(5);
    }

    /** @param levels 2 to 5 */
    public MockFormat(int levels) {
        super("mock-" + levels + "level", GRANULE_SHIFT, checkLevels(levels), 51);
    }

    private static int checkLevels(int levels) {
        if (levels > 5) {
            throw new IllegalArgumentException("the mock format has at most 5 levels (56 bits), not " + levels);
        }
        return levels;
    }
}
