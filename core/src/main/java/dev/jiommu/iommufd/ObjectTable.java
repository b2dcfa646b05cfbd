package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A context's ID space: IDs 1 … 2^31−1 shared by every object type, the lowest free one given
 * first. An ID is reserved (occupied, invisible to lookups) from the start of a creation until
 * the object is published or the creation aborted; a tombstone keeps an ID occupied after its
 * object is gone (iommufd-uapi.md §3.2, §3.6). Guarded by the context lock.
 */
final class ObjectTable {
    static final int MAX_ID = Integer.MAX_VALUE;

    private final BitSet occupied = new BitSet();
    private final Map<Integer, IommufdObject> published = new HashMap<>();

    /** {@return a reserved ID for an object being created} */
    int reserve() {
        int id = occupied.nextClearBit(1);
        if (id <= 0 || id > MAX_ID - 1) {
            throw IommufdException.of(Errno.ENOSPC, "no free object ID");
        }
        occupied.set(id);
        return id;
    }

    /** Makes {@code object} visible under the ID it was reserved with. */
    void publish(IommufdObject object) {
        if (!occupied.get(object.id()) || published.containsKey(object.id())) {
            throw new IllegalStateException("bug: publishing " + object + " under an ID not reserved for it");
        }
        published.put(object.id(), object);
    }

    /** Gives back an ID whose creation failed, or of an object that is gone. */
    void release(int id) {
        published.remove(id);
        occupied.clear(id);
    }

    /** Removes the object but keeps its ID occupied until the context closes. */
    void tombstone(int id) {
        published.remove(id);
    }

    /** {@return the published object with this ID, or null} */
    IommufdObject find(int id) {
        return published.get(id);
    }

    /** {@return the object with {@code id} and of {@code type}} @throws IommufdException ENOENT otherwise */
    <T extends IommufdObject> T get(int id, ObjectType type, Class<T> kind) {
        IommufdObject object = published.get(id);
        if (object == null || object.type() != type) {
            throw IommufdException.of(Errno.ENOENT, "no %s with id %d%s", type, id,
                    object == null ? "" : " (it is a " + object.type() + ")");
        }
        return kind.cast(object);
    }

    /** {@return a snapshot of every published object} */
    List<IommufdObject> all() {
        return new ArrayList<>(published.values());
    }

    boolean isEmpty() {
        return occupied.isEmpty();
    }

    int size() {
        return published.size();
    }
}
