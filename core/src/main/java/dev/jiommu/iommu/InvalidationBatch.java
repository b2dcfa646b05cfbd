package dev.jiommu.iommu;

/**
 * An array of driver-specific cache-invalidation entries as HWPT_INVALIDATE passes them: entry
 * {@code i} is bytes [i·entryLen, (i+1)·entryLen) of {@code entries}, little-endian.
 */
public record InvalidationBatch(int dataType, int entryLen, int entryNum, byte[] entries) {
    public InvalidationBatch {
        entries = entries.clone();
        if (entryNum < 0 || entryLen < 0 || (long) entryNum * entryLen > entries.length) {
            throw new IllegalArgumentException("batch of " + entryNum + " x " + entryLen + " bytes in " + entries.length);
        }
    }

    /** {@return the little-endian u32 at {@code offset} of entry {@code index}, or 0 past the entry's end} */
    public int u32(int index, int offset) {
        if (offset + 4 > entryLen) {
            return 0;
        }
        int at = index * entryLen + offset;
        return (entries[at] & 0xff) | (entries[at + 1] & 0xff) << 8 | (entries[at + 2] & 0xff) << 16 | (entries[at + 3] & 0xff) << 24;
    }
}
