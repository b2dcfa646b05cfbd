package dev.jiommu.hw.vtd.spec;

/**
 * VT-d fault reason codes as FRCD.FR records them (VT-d 4.1 §7.1.3 and Appendix A; Linux's string
 * table and QEMU's VTDFaultReason). Open: an unknown code maps to {@link #UNKNOWN}.
 *
 * <p>Root- and context-entry faults use the legacy codes (0x1–0xb) in scalable mode too, as QEMU
 * reports them; the scalable-mode-only 0x30–0x42 codes are not modelled.
 */
public enum FaultReason {
    UNKNOWN(-1),
    ROOT_NOT_PRESENT(0x1),
    CONTEXT_NOT_PRESENT(0x2),
    CONTEXT_INVALID(0x3),
    ADDRESS_BEYOND_MGAW(0x4),
    WRITE(0x5),
    READ(0x6),
    PAGING_ENTRY_INVALID(0x7),
    ROOT_TABLE_INVALID(0x8),
    CONTEXT_TABLE_INVALID(0x9),
    ROOT_RESERVED(0xa),
    CONTEXT_RESERVED(0xb),
    PAGING_ENTRY_RESERVED(0xc),
    TRANSLATION_TYPE_BLOCKED(0xd),
    SM_DTE_CLEAR(0x44),
    SM_PASIDE_CLEAR(0x45),
    SM_PASID_BEYOND_PDTS(0x46),
    SM_PRE_CLEAR(0x47),
    SM_RID_PASID_INVALID(0x48),
    PASID_DIR_ACCESS(0x50),
    PASID_DIR_NOT_PRESENT(0x51),
    PASID_DIR_RESERVED(0x52),
    PASID_TABLE_ACCESS(0x58),
    PASID_ENTRY_NOT_PRESENT(0x59),
    PASID_ENTRY_RESERVED(0x5a),
    PASID_ENTRY_INVALID(0x5b),
    SM_EXECUTE_BLOCKED(0x5c),
    SM_SUPERVISOR_BLOCKED(0x5d),
    FS_ENTRY_ACCESS(0x70),
    FS_ENTRY_NOT_PRESENT(0x71),
    FS_ENTRY_RESERVED(0x72),
    FS_ROOT_INVALID(0x73),
    NESTED_FS_BEYOND_MGAW(0x74),
    NESTED_FS_READ_BLOCKED(0x75),
    NESTED_FS_WRITE_BLOCKED(0x76),
    NESTED_FS_AD_BLOCKED(0x77),
    SS_ENTRY_ACCESS(0x78),
    SS_PERMISSION(0x79),
    SS_ENTRY_RESERVED(0x7a),
    SS_ROOT_INVALID(0x7b),
    FS_NON_CANONICAL(0x80),
    FS_USER_SUPERVISOR(0x81),
    FS_EXECUTE(0x82),
    INPUT_BEYOND_MAX(0x83),
    SS_ADDRESS_BEYOND_MAX(0x84),
    FS_WRITE(0x85),
    FS_READ(0x86),
    SM_INTERRUPT_ADDRESS(0x87);

    private static final FaultReason[] BY_CODE = new FaultReason[256];

    static {
        for (FaultReason r : values()) {
            if (r.code < 0) {
                continue;
            }
            if (BY_CODE[r.code] != null) {
                throw new ExceptionInInitializerError("duplicate fault reason 0x" + Integer.toHexString(r.code));
            }
            BY_CODE[r.code] = r;
        }
    }

    private final int code;

    FaultReason(int code) {
        this.code = code;
    }

    /** {@return the FR value recorded in FRCD bits [103:96]} */
    public int code() {
        return code;
    }

    public static FaultReason of(int code) {
        FaultReason r = code >= 0 && code < BY_CODE.length ? BY_CODE[code] : null;
        return r == null ? UNKNOWN : r;
    }
}
