package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommu.IommuDriver;
import dev.jiommu.iommu.ReservedRegion;

import java.util.List;

/**
 * Attach, replace and detach of a device's RID or PASIDs to IOASes and HWPTs (the kernel's
 * device.c; iommufd-uapi.md §3.4, §3.5, §3.8). Every call runs under the context lock.
 *
 * <p>Reference moves: an attachment holds one reference on its HWPT and one on the device; a
 * replace takes the new HWPT's before it drops the old one's, and an auto HWPT whose last device
 * leaves is destroyed on the spot.
 */
final class Attachments {
    private final IommufdContext context;

    Attachments(IommufdContext context) {
        this.context = context;
    }

    /** Attaches {@code pasid} (NO_PASID for the RID) to {@code ptId}; {@return the HWPT now attached} */
    Hwpt attach(IommufdDevice idev, int pasid, int ptId) {
        if (idev.attached.containsKey(pasid)) {
            throw IommufdException.of(Errno.EBUSY, "attach %s pasid %s: already attached to %s", idev, describe(pasid), idev.attached.get(pasid));
        }
        return attachOrReplace(idev, pasid, ptId);
    }

    /** Replaces what {@code pasid} is attached to; hitless, the old attachment stays on failure. */
    Hwpt replace(IommufdDevice idev, int pasid, int ptId) {
        if (!idev.attached.containsKey(pasid)) {
            throw IommufdException.of(Errno.EINVAL, "replace %s pasid %s: not attached", idev, describe(pasid));
        }
        return attachOrReplace(idev, pasid, ptId);
    }

    /** Detaches {@code pasid}; never fails, and detaching what is not attached is fine. */
    void detach(IommufdDevice idev, int pasid) {
        Hwpt old = idev.attached.remove(pasid);
        idev.device.driver().detach(idev.device, pasid);
        if (old == null) {
            return;
        }
        if (old.fault != null) {
            old.fault.flush(idev, pasid); // outstanding faults of this attachment are answered INVALID
        }
        if (pasid == IommuDriver.NO_PASID) {
            old.ioas().iopt.removeReserved(idev);
        }
        idev.put();
        release(old);
    }

    /** Detaches every PASID and the RID (unbind). */
    void detachAll(IommufdDevice idev) {
        for (Integer pasid : List.copyOf(idev.attached.keySet())) {
            detach(idev, pasid);
        }
    }

    private Hwpt attachOrReplace(IommufdDevice idev, int pasid, int ptId) {
        IommufdObject target = context.objects.find(ptId);
        if (target == null) {
            throw IommufdException.of(Errno.ENOENT, "attach %s pasid %s: no object with id %d", idev, describe(pasid), ptId);
        }
        checkPasidCapable(idev, pasid);
        return switch (target) {
            case Ioas ioas -> {
                if (pasid != IommuDriver.NO_PASID) {
                    throw IommufdException.of(Errno.EINVAL, "attach %s pasid %d to %s: automatic domains are never PASID-compatible",
                            idev, pasid, ioas);
                }
                yield attachToIoas(idev, ioas);
            }
            case Hwpt hwpt -> {
                if (hwpt != idev.attached.get(pasid)) {
                    switchTo(idev, pasid, hwpt);
                }
                yield hwpt;
            }
            default -> throw IommufdException.of(Errno.EINVAL, "attach %s: %s is neither an IOAS nor an HWPT", idev, target);
        };
    }

    private static void checkPasidCapable(IommufdDevice idev, int pasid) {
        if (pasid == IommuDriver.NO_PASID) {
            return;
        }
        int bits = idev.device.pasidBits();
        if (bits == 0 || pasid < 0 || (bits < 31 && pasid >= (1 << bits))) {
            throw IommufdException.of(Errno.EINVAL, "attach %s pasid %d: the device has %d PASID bits", idev, pasid, bits);
        }
    }

    /** Auto-domain attach of the RID: reuse a compatible auto HWPT of the IOAS, or make one (§3.5). */
    private Hwpt attachToIoas(IommufdDevice idev, Ioas ioas) {
        Hwpt current = idev.rid();
        for (HwptPaging hwpt : List.copyOf(ioas.hwpts)) {
            if (!hwpt.auto()) {
                continue;
            }
            if (hwpt == current) {
                return hwpt;
            }
            try {
                switchTo(idev, IommuDriver.NO_PASID, hwpt);
                return hwpt;
            } catch (ErrnoException e) {
                if (e.errno() != Errno.EINVAL) {
                    throw e;
                }
            }
        }
        HwptPaging hwpt = context.createPaging(ioas, idev.device, 0, null, true);
        try {
            switchTo(idev, IommuDriver.NO_PASID, hwpt);
        } catch (RuntimeException e) {
            hwpt.destroy();
            context.objects.release(hwpt.id());
            throw e;
        }
        return hwpt;
    }

    /** Points {@code pasid} at {@code hwpt} (attach or atomic replace), moving the RID's reserved regions. */
    private void switchTo(IommufdDevice idev, int pasid, Hwpt hwpt) {
        boolean rid = pasid == IommuDriver.NO_PASID;
        if (!rid && (!hwpt.pasidCompatible || (idev.rid() != null && !idev.rid().pasidCompatible))) {
            throw IommufdException.of(Errno.EINVAL, "attach %s pasid %d to %s: it and the RID's HWPT must be PASID-compatible",
                    idev, pasid, hwpt);
        }
        if (rid && idev.hasPasidAttachments() && !hwpt.pasidCompatible) {
            throw IommufdException.of(Errno.EINVAL, "attach %s RID to %s: PASIDs are attached, so the RID's HWPT must be PASID-compatible",
                    idev, hwpt);
        }
        HwptPaging coherencyDomain = hwpt instanceof HwptPaging paging ? paging
                : hwpt instanceof HwptNested nestedOnParent ? nestedOnParent.parent : null;
        if (coherencyDomain != null && coherencyDomain.enforceCacheCoherency && !idev.device.enforcesCacheCoherency()) {
            throw IommufdException.of(Errno.EINVAL, "attach %s to %s: it enforces cache coherency, the device cannot", idev, hwpt);
        }
        if (hwpt instanceof HwptNested nested && nested.viommu != null
                && (idev.vdevice == null || idev.vdevice.viommu != nested.viommu)) {
            throw IommufdException.of(Errno.ENOENT, "attach %s to %s: the device has no vDEVICE in %s", idev, hwpt, nested.viommu);
        }
        Hwpt old = idev.attached.get(pasid);
        boolean moveReserved = rid && (old == null || old.ioas() != hwpt.ioas());
        if (moveReserved) {
            try {
                for (ReservedRegion r : idev.device.reservedRegions()) {
                    hwpt.ioas().iopt.addReserved(r.start(), r.last(), idev);
                }
            } catch (RuntimeException e) {
                hwpt.ioas().iopt.removeReserved(idev);
                throw e;
            }
        }
        try {
            idev.device.driver().attach(idev.device, pasid, hwpt.domain());
        } catch (RuntimeException e) {
            if (moveReserved) {
                hwpt.ioas().iopt.removeReserved(idev);
            }
            throw e;
        }
        hwpt.get();
        idev.attached.put(pasid, hwpt);
        if (coherencyDomain != null && idev.device.enforcesCacheCoherency()) {
            coherencyDomain.enforceCacheCoherency = true;
        }
        if (old == null) {
            idev.get();
        } else {
            if (old.fault != null) {
                old.fault.flush(idev, pasid);
            }
            if (moveReserved) {
                old.ioas().iopt.removeReserved(idev);
            }
            release(old);
        }
    }

    /** Drops an attachment's reference on an HWPT; an auto HWPT left with no users goes away. */
    private void release(Hwpt hwpt) {
        hwpt.put();
        if (hwpt.auto() && hwpt.users() == 1) {
            hwpt.destroy();
            context.objects.release(hwpt.id());
        }
    }

    private static String describe(int pasid) {
        return pasid == IommuDriver.NO_PASID ? "RID" : Integer.toString(pasid);
    }
}
