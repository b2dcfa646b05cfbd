package dev.jiommu.iommufd;

/** {@code struct iommu_iova_range}: an IOVA interval with an inclusive {@code last}. */
public record IovaRange(long start, long last) {
    /** {@return whether the two intervals share an address (unsigned compare)} */
    public boolean intersects(long otherStart, long otherLast) {
        return Long.compareUnsigned(start, otherLast) <= 0 && Long.compareUnsigned(otherStart, last) <= 0;
    }

    @Override
    public String toString() {
        return String.format("[0x%x, 0x%x]", start, last);
    }
}
