package dev.jiommu.iommufd;

/** The kinds of object in a context's ID space (internal: the values never cross the ABI). */
public enum ObjectType {
    IOAS,
    HWPT_PAGING,
    HWPT_NESTED,
    DEVICE,
    ACCESS,
    FAULT,
    VIOMMU,
    VDEVICE,
    VEVENTQ,
    HW_QUEUE,
    SELFTEST
}
