package dev.jiommu.hw;

/** What became of a device's page request. */
public enum PageRequestStatus {
    /** Queued for software; a response will come if it was the last request of its group. */
    QUEUED,
    /** The queue was full: the IOMMU answered a last request itself (with success, so the device retries). */
    OVERFLOW,
    /** Page requests are not allowed for this requester; no response will come. */
    REFUSED
}
