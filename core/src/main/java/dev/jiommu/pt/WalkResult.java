package dev.jiommu.pt;

/**
 * What one hardware walk found: reused by its owner from walk to walk, so translation allocates
 * nothing. Fields are valid after {@link PageTableWalker#walk} until the next walk.
 */
public final class WalkResult {
    WalkStatus status = WalkStatus.OK;
    long outputAddress;
    int leafShift;
    int level;
    int hardwareLevel;
    int perms;
    long entry;
    long entryAddress;
    int tableReads;

    void reset() {
        status = WalkStatus.OK;
        outputAddress = 0;
        leafShift = 0;
        level = -1;
        hardwareLevel = 0;
        perms = 0;
        entry = 0;
        entryAddress = 0;
        tableReads = 0;
    }

    public WalkStatus status() {
        return status;
    }

    public boolean ok() {
        return status == WalkStatus.OK;
    }

    /** {@return the translated address (valid when {@link #ok()})} */
    public long outputAddress() {
        return outputAddress;
    }

    /** {@return log2 of the size of the page that translated (valid when {@link #ok()})} */
    public int leafShift() {
        return leafShift;
    }

    /** {@return the level (leaf end = 0) where the walk ended: the leaf, or the faulting entry} */
    public int level() {
        return level;
    }

    /** {@return {@link #level()} in the manual's numbering} */
    public int hardwareLevel() {
        return hardwareLevel;
    }

    /** {@return the PERM_* bits granted along the whole walk (also after a PERMISSION fault)} */
    public int perms() {
        return perms;
    }

    /** {@return the last entry read (the leaf, or the one that faulted)} */
    public long entry() {
        return entry;
    }

    /** {@return the physical address of the last entry read (or of the failed fetch)} */
    public long entryAddress() {
        return entryAddress;
    }

    /** {@return how many table entries the walk read} */
    public int tableReads() {
        return tableReads;
    }

    @Override
    public String toString() {
        return ok()
                ? String.format("OK pa=0x%x page=2^%d level=%d reads=%d", outputAddress, leafShift, hardwareLevel, tableReads)
                : String.format("%s at level=%d entry=0x%x@0x%x reads=%d", status, hardwareLevel, entry, entryAddress, tableReads);
    }
}
