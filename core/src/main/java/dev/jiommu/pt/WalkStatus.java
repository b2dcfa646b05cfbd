package dev.jiommu.pt;

/**
 * How a hardware page walk ended. Each emulator turns a fault into its own reason code (VT-d fault
 * reason, SMMU event, AMD event flags).
 */
public enum WalkStatus {
    /** Translated: the result holds the output address and the granted permissions. */
    OK,
    /** An entry on the way was not present. */
    NOT_PRESENT,
    /** The walk reached a leaf that does not grant the access. */
    PERMISSION,
    /** A leaf's access flag was clear and hardware is not allowed to set it (Arm AF fault). */
    ACCESS_FLAG,
    /** An entry set bits the format reserves (or named an impossible next level). */
    RESERVED_BITS,
    /** The input address is beyond what the table translates. */
    ADDRESS_SIZE,
    /** The input address is not in canonical (sign-extended) form. */
    NON_CANONICAL,
    /** A table pointer named memory that does not exist: the fetch itself failed. */
    TABLE_FETCH_ABORT,
    /** A level-skipping pointer (AMD v1) skipped levels whose index bits are not zero. */
    SKIPPED_BITS_NONZERO
}
