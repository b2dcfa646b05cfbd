package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;

import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * An in-kernel access (ACCESS) as the selftest's mock creates it: pins IOVA ranges of one IOAS as
 * numbered items and copies through IOVAs; when userspace unmaps a range it holds, it drops every
 * item there (its unmap callback), so unmap never waits on it.
 */
final class IommufdAccess extends IommufdObject implements IoPagetable.AccessHolder {
    /** A pinned range, as ACCESS_PAGES made it. */
    record Item(long iova, long lengthBytes) {
    }

    final boolean pinCapable;
    Ioas ioas;
    private final Map<Integer, Item> items = new LinkedHashMap<>();
    private int nextItemId;

    IommufdAccess(Ioas ioas, boolean pinCapable) {
        super(ObjectType.ACCESS);
        this.ioas = ioas;
        this.pinCapable = pinCapable;
    }

    int addItem(long iova, long lengthBytes) {
        int id = nextItemId++;
        items.put(id, new Item(iova, lengthBytes));
        return id;
    }

    void destroyItem(int itemId) {
        Item item = items.remove(itemId);
        if (item == null) {
            throw IommufdException.of(Errno.ENOENT, "access %s has no pin item %d", this, itemId);
        }
        ioas.iopt.accessUnpin(item.iova(), item.lengthBytes());
    }

    @Override
    public void unmapped(long iova, long last) {
        for (Iterator<Item> it = items.values().iterator(); it.hasNext(); ) {
            Item item = it.next();
            long itemLast = item.iova() + item.lengthBytes() - 1;
            if (Long.compareUnsigned(item.iova(), last) <= 0 && Long.compareUnsigned(iova, itemLast) <= 0) {
                it.remove();
                ioas.iopt.accessUnpin(item.iova(), item.lengthBytes());
            }
        }
    }

    /** Drops every item (before the IOAS changes or the access goes). */
    void releaseAll() {
        for (Item item : items.values()) {
            ioas.iopt.accessUnpin(item.iova(), item.lengthBytes());
        }
        items.clear();
    }

    @Override
    void destroy() {
        releaseAll();
        ioas.iopt.removeAccess(this, pinCapable);
        ioas.put();
    }
}
