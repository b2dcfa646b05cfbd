package dev.jiommu.hw.vtd;

/**
 * A snapshot of a VT-d unit's counters: cache hits and misses, walks, faults, invalidations,
 * page requests. Counted under the unit's lock.
 */
public record VtdStats(long iotlbHits, long iotlbMisses, int iotlbEntries, long iotlbEvictions, long contextHits, long contextMisses,
        long pasidHits, long pasidMisses, long walks, long tableReads, long faultsRecorded, long faultsSuppressed, long faultsLost,
        long descriptors, long invalidatedEntries, long pageRequests, long pageResponses, long queueErrors,
        long nestedWalkCacheHits) {

    @Override
    public String toString() {
        return String.format("iotlb hits=%d misses=%d entries=%d evictions=%d | context hits=%d misses=%d | pasid hits=%d misses=%d | "
                        + "walks=%d tableReads=%d | faults recorded=%d suppressed=%d lost=%d | descriptors=%d invalidated=%d | "
                        + "pageRequests=%d pageResponses=%d queueErrors=%d | nestedWalkCacheHits=%d",
                iotlbHits, iotlbMisses, iotlbEntries, iotlbEvictions, contextHits, contextMisses, pasidHits, pasidMisses, walks, tableReads,
                faultsRecorded, faultsSuppressed, faultsLost, descriptors, invalidatedEntries, pageRequests, pageResponses, queueErrors,
                nestedWalkCacheHits);
    }
}
