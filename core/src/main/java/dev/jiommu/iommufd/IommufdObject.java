package dev.jiommu.iommufd;

/**
 * Something with an ID in a context: an IOAS, an HWPT, a device binding… Its {@code users} count
 * starts at 1, the context's own reference; every object that depends on it adds one, and DESTROY
 * succeeds only when the context's reference is the last (iommufd-uapi.md §3.3).
 *
 * <p>All fields are guarded by the context lock.
 */
abstract class IommufdObject {
    private final ObjectType type;
    private int id;
    private int users = 1;

    IommufdObject(ObjectType type) {
        this.type = type;
    }

    final ObjectType type() {
        return type;
    }

    final int id() {
        return id;
    }

    final void id(int id) {
        this.id = id;
    }

    final int users() {
        return users;
    }

    /** Takes a reference: something now depends on this object. */
    final void get() {
        users++;
    }

    /** Drops a reference taken by {@link #get()}. */
    final void put() {
        if (users <= 1) {
            throw new IllegalStateException("bug: " + this + " reference dropped below the context's own");
        }
        users--;
    }

    /** Frees everything the object holds and drops its references on others; called with users == 1. */
    abstract void destroy();

    @Override
    public String toString() {
        return type + "#" + id;
    }
}
