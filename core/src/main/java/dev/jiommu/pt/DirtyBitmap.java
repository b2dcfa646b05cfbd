package dev.jiommu.pt;

/**
 * A bitmap of dirty pages over an IOVA range, one bit per page of 2^{@code pageShift} bytes, bit
 * {@code i} for the page at {@code baseIova + i * pageSize}: the shape iommufd's GET_DIRTY_BITMAP
 * returns (64-bit little-endian words, bit 0 first).
 */
public final class DirtyBitmap {
    private final long baseIova;
    private final int pageShift;
    private final long pages;
    private final long[] words;

    public DirtyBitmap(long baseIova, int pageShift, long pages) {
        // The last page must end at or below 2^64: a wrapping range made mark() drop pages inside it.
        if (pageShift < 0 || pageShift > 62 || pages <= 0 || (baseIova & ((1L << pageShift) - 1)) != 0
                || Long.compareUnsigned(pages - 1, (-1L - baseIova) >>> pageShift) > 0) {
            throw new IllegalArgumentException(String.format("baseIova=0x%x pageShift=%d pages=%d", baseIova, pageShift, pages));
        }
        this.baseIova = baseIova;
        this.pageShift = pageShift;
        this.pages = pages;
        this.words = new long[Math.toIntExact((pages + 63) >>> 6)];
    }

    public long baseIova() {
        return baseIova;
    }

    public int pageShift() {
        return pageShift;
    }

    public long pages() {
        return pages;
    }

    /** Marks every page that intersects [iova, last] (inclusive), clipped to the bitmap. */
    public void mark(long iova, long last) {
        long lastCovered = baseIova + (pages << pageShift) - 1;
        if (Long.compareUnsigned(last, baseIova) < 0 || Long.compareUnsigned(iova, lastCovered) > 0) {
            return;
        }
        long from = Long.compareUnsigned(iova, baseIova) < 0 ? 0 : (iova - baseIova) >>> pageShift;
        long to = Long.compareUnsigned(last, lastCovered) > 0 ? pages - 1 : (last - baseIova) >>> pageShift;
        for (long i = from; i <= to; i++) {
            words[(int) (i >>> 6)] |= 1L << i;
        }
    }

    /** {@return whether page {@code index} is marked} */
    public boolean isSet(long index) {
        return (words[(int) (index >>> 6)] & (1L << index)) != 0;
    }

    /** {@return the number of marked pages} */
    public long cardinality() {
        long n = 0;
        for (long w : words) {
            n += Long.bitCount(w);
        }
        return n;
    }

    /** {@return the bitmap's words (bit i of word k is page 64k + i); a copy} */
    public long[] words() {
        return words.clone();
    }
}
