package dev.jiommu.pt;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The plain model the randomized tests compare {@link PageTable} against: a TreeMap of leaves in
 * unsigned IOVA order, built by the rules {@link PageTable} documents, written independently of it
 * (page sizes by the brute-force oracle, no tables, no bits).
 */
final class ReferenceMappings {
    /** One page as the model holds it. */
    record RefLeaf(long iova, long pa, int sizeShift, int prot, boolean dirty) {
        long last() {
            return iova + (1L << sizeShift) - 1;
        }

        boolean contains(long address) {
            return Long.compareUnsigned(address, iova) >= 0 && Long.compareUnsigned(address, last()) <= 0;
        }

        RefLeaf withDirty(boolean value) {
            return new RefLeaf(iova, pa, sizeShift, prot, value);
        }

        @Override
        public String toString() {
            return String.format("RefLeaf[iova=0x%x pa=0x%x size=2^%d %s%s]", iova, pa, sizeShift, Prot.describe(prot), dirty ? " dirty" : "");
        }
    }

    private final PageTableFormat format;
    private final long pageSizes;
    private final TreeMap<Long, RefLeaf> leaves = new TreeMap<>(Long::compareUnsigned);

    ReferenceMappings(PageTableFormat format, long pageSizes) {
        this.format = format;
        this.pageSizes = pageSizes;
    }

    List<RefLeaf> leaves() {
        return List.copyOf(leaves.values());
    }

    int size() {
        return leaves.size();
    }

    /** {@return the leaf holding {@code iova}, or null} */
    RefLeaf leafAt(long iova) {
        Map.Entry<Long, RefLeaf> floor = leaves.floorEntry(iova);
        return floor != null && floor.getValue().contains(iova) ? floor.getValue() : null;
    }

    /** {@return the address {@code iova} translates to, or {@link PageTable#NOT_MAPPED}} */
    long translate(long iova) {
        RefLeaf leaf = leafAt(iova);
        return leaf == null ? PageTable.NOT_MAPPED : leaf.pa() + (iova - leaf.iova());
    }

    /** {@return every leaf intersecting [first, last], in order} */
    List<RefLeaf> intersecting(long first, long last) {
        List<RefLeaf> out = new ArrayList<>();
        RefLeaf before = leafAt(first);
        if (before != null) {
            out.add(before);
        }
        for (RefLeaf leaf : leaves.subMap(first, true, last, true).values()) {
            if (leaf != before) {
                out.add(leaf);
            }
        }
        return out;
    }

    /**
     * Maps like {@link PageTable#map}: largest fitting pages, all or nothing.
     *
     * @return false (changing nothing) if any part is already mapped: the caller expects EEXIST
     */
    boolean map(long iova, long pa, long lengthBytes, int prot) {
        if (!intersecting(iova, iova + lengthBytes - 1).isEmpty()) {
            return false;
        }
        long done = 0;
        while (Long.compareUnsigned(done, lengthBytes) < 0) {
            long cur = iova + done;
            long curPa = pa + done;
            int shift = PageTableAssertions.referenceBestPageShift(pageSizes, cur, curPa, lengthBytes - done);
            if (shift < 0) {
                throw new AssertionError("test bug: no page size for iova=0x" + Long.toHexString(cur));
            }
            int level = format.levelOfPageShift(shift);
            boolean dirty = format.dirty(format.leafEntry(curPa, shift, level, prot)); // x86 writable leaves start dirty
            leaves.put(cur, new RefLeaf(cur, curPa, shift, prot, dirty));
            done += 1L << shift;
        }
        return true;
    }

    /**
     * Unmaps like {@link PageTable#unmap}: nothing when the range starts inside a page, otherwise
     * every page that starts in the range, whole.
     *
     * @return the bytes unmapped
     */
    long unmap(long first, long last) {
        RefLeaf covering = leafAt(first);
        if (covering != null && covering.iova() != first) {
            return 0;
        }
        long bytes = 0;
        Map<Long, RefLeaf> doomed = leaves.subMap(first, true, last, true);
        for (RefLeaf leaf : doomed.values()) {
            bytes += 1L << leaf.sizeShift();
        }
        doomed.clear();
        return bytes;
    }

    /** Records a DMA write at {@code iova} (the leaf must be mapped and writable). */
    void markDirty(long iova) {
        RefLeaf leaf = leafAt(iova);
        leaves.put(leaf.iova(), leaf.withDirty(true));
    }

    /**
     * {@return the words of the bitmap a read-and-clear of [iova, last] reports (bit i = the page
     * at iova + i * 2^pageShift)}, cleaning those leaves unless noClear
     */
    long[] readAndClearDirty(long iova, long last, int pageShift, boolean noClear) {
        long pages = ((last - iova) >>> pageShift) + 1;
        long[] words = new long[Math.toIntExact((pages + 63) >>> 6)];
        for (RefLeaf leaf : intersecting(iova, last)) {
            if (!leaf.dirty()) {
                continue;
            }
            long from = Long.compareUnsigned(leaf.iova(), iova) <= 0 ? 0 : (leaf.iova() - iova) >>> pageShift;
            long to = Long.compareUnsigned(leaf.last(), last) >= 0 ? pages - 1 : (leaf.last() - iova) >>> pageShift;
            for (long i = from; i <= to; i++) {
                words[(int) (i >>> 6)] |= 1L << i;
            }
            if (!noClear) {
                leaves.put(leaf.iova(), leaf.withDirty(false));
            }
        }
        return words;
    }
}
