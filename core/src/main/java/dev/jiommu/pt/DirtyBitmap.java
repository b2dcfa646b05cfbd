package dev.jiommu.pt;

import java.util.Map;
import java.util.TreeMap;

/**
 * A bitmap of dirty pages over an IOVA range, one bit per page of 2^{@code pageShift} bytes, bit
 * {@code i} for the page at {@code baseIova + i * pageSize}: the shape iommufd's GET_DIRTY_BITMAP
 * returns (64-bit little-endian words, bit 0 first).
 *
 * <p>The range may be as large as the IOVA space (a caller may ask about 2^52 pages); only the
 * blocks of words that hold a set bit take memory, so the cost follows what is dirty, as the
 * kernel's walk of the mapped areas does.
 */
public final class DirtyBitmap {
    /** Words per block: a block covers 4096 pages. */
    private static final int BLOCK_WORDS = 64;
    private static final int BLOCK_SHIFT = 6;

    private final long baseIova;
    private final int pageShift;
    private final long pages;
    /** Block index (word index / 64) → its words; absent blocks are all clear. */
    private final TreeMap<Long, long[]> blocks = new TreeMap<>();

    /** @param pages the number of pages (bits), an unsigned count above 0 */
    public DirtyBitmap(long baseIova, int pageShift, long pages) {
        // pages is unsigned; the last page must end at or below 2^64 (a wrapping range made mark() drop pages).
        if (pageShift < 0 || pageShift > 62 || pages == 0 || (baseIova & ((1L << pageShift) - 1)) != 0
                || Long.compareUnsigned(pages - 1, (-1L - baseIova) >>> pageShift) > 0) {
            throw new IllegalArgumentException(String.format("baseIova=0x%x pageShift=%d pages=%s", baseIova, pageShift,
                    Long.toUnsignedString(pages)));
        }
        this.baseIova = baseIova;
        this.pageShift = pageShift;
        this.pages = pages;
    }

    public long baseIova() {
        return baseIova;
    }

    public int pageShift() {
        return pageShift;
    }

    /** {@return the number of pages (bits), unsigned} */
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
        for (long word = from >>> 6; Long.compareUnsigned(word, to >>> 6) <= 0; word++) {
            long low = word == from >>> 6 ? -1L << from : -1L;
            long high = word == to >>> 6 ? -1L >>> (63 - (to & 63)) : -1L;
            block(word >>> BLOCK_SHIFT)[(int) (word & (BLOCK_WORDS - 1))] |= low & high;
        }
    }

    /** {@return whether page {@code index} is marked} */
    public boolean isSet(long index) {
        return (word(index >>> 6) & (1L << index)) != 0;
    }

    /** {@return word {@code index} of the bitmap (bit i of word k is page 64k + i)} */
    public long word(long index) {
        long[] block = blocks.get(index >>> BLOCK_SHIFT);
        return block == null ? 0 : block[(int) (index & (BLOCK_WORDS - 1))];
    }

    /** {@return the first marked page at or after {@code fromIndex}, or -1 when there is none} */
    public long nextSetBit(long fromIndex) {
        long word = fromIndex >>> 6;
        long mask = -1L << fromIndex;
        for (Map.Entry<Long, long[]> e = blocks.ceilingEntry(word >>> BLOCK_SHIFT); e != null; e = blocks.higherEntry(e.getKey())) {
            long[] block = e.getValue();
            long first = e.getKey() << BLOCK_SHIFT;
            for (int i = Long.compareUnsigned(word, first) > 0 ? (int) (word - first) : 0; i < BLOCK_WORDS; i++) {
                long bits = block[i] & (first + i == word ? mask : -1L);
                if (bits != 0) {
                    return ((first + i) << 6) + Long.numberOfTrailingZeros(bits);
                }
            }
        }
        return -1;
    }

    /** {@return the number of marked pages} */
    public long cardinality() {
        long n = 0;
        for (long[] block : blocks.values()) {
            for (long w : block) {
                n += Long.bitCount(w);
            }
        }
        return n;
    }

    /** {@return the bitmap's words (bit i of word k is page 64k + i); a copy, for bitmaps of at most 2^31 words} */
    public long[] words() {
        long[] words = new long[Math.toIntExact((pages + 63) >>> 6)];
        for (Map.Entry<Long, long[]> e : blocks.entrySet()) {
            int first = (int) (e.getKey() << BLOCK_SHIFT);
            System.arraycopy(e.getValue(), 0, words, first, Math.min(BLOCK_WORDS, words.length - first));
        }
        return words;
    }

    private long[] block(long index) {
        return blocks.computeIfAbsent(index, i -> new long[BLOCK_WORDS]);
    }
}
