package dev.jiommu.iommufd;

import java.util.ArrayList;
import java.util.List;

/** An I/O address space object: its io_pagetable and the paging HWPTs built on it. */
final class Ioas extends IommufdObject {
    final IoPagetable iopt = new IoPagetable();
    /** HWPT_PAGINGs linked to this IOAS, in creation order (the auto-domain search order). */
    final List<HwptPaging> hwpts = new ArrayList<>();
    private final IommufdContext context;

    Ioas(IommufdContext context) {
        super(ObjectType.IOAS);
        this.context = context;
    }

    @Override
    void destroy() {
        if (!hwpts.isEmpty()) {
            throw new IllegalStateException("bug: destroying " + this + " with HWPTs " + hwpts);
        }
        iopt.destroy();
        context.forgetCompatIoas(this);
    }
}
