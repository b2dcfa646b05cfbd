package dev.jiommu.hw;

import java.util.function.Predicate;

/**
 * A bounded hardware cache keyed by two {@code long} tags: open addressing with linear probing and
 * backward-shift deletion, no boxing, no allocation on lookup. When full, an insert evicts the
 * entry under a rotating clock hand, as a hardware cache replaces a line. Entries leave only by
 * eviction or by {@link #removeIf}/{@link #clear} (the invalidations). Not thread-safe: its owner's
 * lock guards it.
 */
public final class TagCache<V> {
    private final long[] tag1;
    private final long[] tag2;
    private final Object[] values;
    private final int mask;
    private final int maxEntries;
    private int size;
    private int hand;
    private long hits;
    private long misses;
    private long evictions;

    /** @param maxEntries the most entries the cache holds (its hardware size) */
    public TagCache(int maxEntries) {
        if (maxEntries < 1 || maxEntries > (1 << 24)) {
            throw new IllegalArgumentException("cache of " + maxEntries + " entries");
        }
        int capacity = Integer.highestOneBit(maxEntries * 2 - 1) << 1;
        this.tag1 = new long[capacity];
        this.tag2 = new long[capacity];
        this.values = new Object[capacity];
        this.mask = capacity - 1;
        this.maxEntries = maxEntries;
    }

    private static int hash(long a, long b) {
        long h = a * 0x9E37_79B9_7F4A_7C15L + b;
        h ^= h >>> 33;
        h *= 0xff51_afd7_ed55_8ccdL;
        h ^= h >>> 33;
        return (int) h;
    }

    /** {@return the entry tagged (a, b), or null; counts a hit or a miss} */
    @SuppressWarnings("unchecked")
    public V get(long a, long b) {
        int i = hash(a, b) & mask;
        while (true) {
            Object v = values[i];
            if (v == null) {
                misses++;
                return null;
            }
            if (tag1[i] == a && tag2[i] == b) {
                hits++;
                return (V) v;
            }
            i = (i + 1) & mask;
        }
    }

    /** {@return the entry tagged (a, b), or null, counting nothing (for owners that probe several tags per lookup)} */
    @SuppressWarnings("unchecked")
    public V find(long a, long b) {
        int i = hash(a, b) & mask;
        while (true) {
            Object v = values[i];
            if (v == null) {
                return null;
            }
            if (tag1[i] == a && tag2[i] == b) {
                return (V) v;
            }
            i = (i + 1) & mask;
        }
    }

    /** Inserts or replaces the entry tagged (a, b), evicting another one when full. */
    public void put(long a, long b, V value) {
        if (value == null) {
            throw new IllegalArgumentException("null cache entry");
        }
        int i = hash(a, b) & mask;
        while (values[i] != null) {
            if (tag1[i] == a && tag2[i] == b) {
                values[i] = value;
                return;
            }
            i = (i + 1) & mask;
        }
        if (size >= maxEntries) {
            evictOne();
            put(a, b, value);
            return;
        }
        tag1[i] = a;
        tag2[i] = b;
        values[i] = value;
        size++;
    }

    private void evictOne() {
        while (values[hand] == null) {
            hand = (hand + 1) & mask;
        }
        removeAt(hand);
        evictions++;
        hand = (hand + 1) & mask;
    }

    private void removeAt(int slot) {
        int i = slot;
        values[i] = null;
        size--;
        int j = i;
        while (true) {
            j = (j + 1) & mask;
            if (values[j] == null) {
                return;
            }
            int home = hash(tag1[j], tag2[j]) & mask;
            // Move j back into the hole unless its home lies cyclically in (i, j].
            boolean stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
            if (!stays) {
                tag1[i] = tag1[j];
                tag2[i] = tag2[j];
                values[i] = values[j];
                values[j] = null;
                i = j;
            }
        }
    }

    /** Removes the entry tagged (a, b); {@return whether there was one} */
    public boolean remove(long a, long b) {
        int i = hash(a, b) & mask;
        while (values[i] != null) {
            if (tag1[i] == a && tag2[i] == b) {
                removeAt(i);
                return true;
            }
            i = (i + 1) & mask;
        }
        return false;
    }

    /** Drops every entry {@code doomed} accepts; {@return how many} */
    @SuppressWarnings("unchecked")
    public int removeIf(Predicate<? super V> doomed) {
        int removed = 0;
        int i = 0;
        // A removal shifts a later entry (possibly one from the wrapped start) into slot i, so slot
        // i is looked at again; entries that stay are never moved below the scan position.
        while (i < values.length) {
            Object v = values[i];
            if (v != null && doomed.test((V) v)) {
                removeAt(i);
                removed++;
            } else {
                i++;
            }
        }
        return removed;
    }

    public void clear() {
        java.util.Arrays.fill(values, null);
        size = 0;
    }

    public int size() {
        return size;
    }

    public int maxEntries() {
        return maxEntries;
    }

    public long hits() {
        return hits;
    }

    public long misses() {
        return misses;
    }

    public long evictions() {
        return evictions;
    }
}
