package dev.jiommu.driver.vtd;

import dev.jiommu.hw.PciRequesterId;
import dev.jiommu.iommu.IommuDevice;
import dev.jiommu.iommu.IommuDriver;
import dev.jiommu.iommu.ReservedRegion;

import java.util.List;

/**
 * A PCI device behind a VT-d unit, as the driver probed it: its requester id, PASID width, and
 * whether it does ATS and PRI. Its IOVA space loses the interrupt window, as Linux reports it
 * (IOMMU_RESV_MSI 0xfee00000–0xfeefffff).
 */
public final class VtdDevice implements IommuDevice {
    /** The x86 interrupt address range, reserved in every device's IOVA space. */
    public static final ReservedRegion MSI_WINDOW = new ReservedRegion(0xfee0_0000L, 0xfeef_ffffL, "msi");

    private final VtdDriver driver;
    private final PciRequesterId rid;
    private final int pasidBits;
    private final boolean ats;
    private final boolean pri;
    /** The scalable-mode PASID directory (0 in legacy mode) and its PDTS. */
    final long pasidDir;
    final int pdts;

    VtdDevice(VtdDriver driver, PciRequesterId rid, int pasidBits, boolean ats, boolean pri, long pasidDir, int pdts) {
        this.driver = driver;
        this.rid = rid;
        this.pasidBits = pasidBits;
        this.ats = ats;
        this.pri = pri;
        this.pasidDir = pasidDir;
        this.pdts = pdts;
    }

    public PciRequesterId requesterId() {
        return rid;
    }

    public int rid() {
        return rid.rid();
    }

    @Override
    public IommuDriver driver() {
        return driver;
    }

    @Override
    public String name() {
        return rid.toString();
    }

    @Override
    public List<ReservedRegion> reservedRegions() {
        return List.of(MSI_WINDOW);
    }

    @Override
    public boolean dirtyTrackingCapable() {
        return driver.dirtyTrackingSupported();
    }

    @Override
    public int pasidBits() {
        return pasidBits;
    }

    @Override
    public boolean enforcesCacheCoherency() {
        return driver.snoopControl();
    }

    @Override
    public boolean atsCapable() {
        return ats;
    }

    public boolean priCapable() {
        return pri;
    }

    @Override
    public String toString() {
        return name();
    }
}
