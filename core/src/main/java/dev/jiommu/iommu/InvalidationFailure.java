package dev.jiommu.iommu;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;

/** A failed cache-invalidation batch: the errno of the bad entry and how many entries went before it. */
public final class InvalidationFailure extends ErrnoException {
    private final int handled;

    public InvalidationFailure(Errno errno, int handled, String message) {
        super(errno, message + " (after " + handled + " entries)");
        this.handled = handled;
    }

    /** {@return the number of entries handled before the failure} */
    public int handled() {
        return handled;
    }
}
