package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommu.IommuPagingDomain;
import dev.jiommu.mem.DmaBuf;
import dev.jiommu.mem.UserMemory;
import dev.jiommu.pt.Prot;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The IOVA side of an IOAS (the kernel's io_pagetable): its areas, the reserved and allowed
 * ranges, the paging domains that mirror every area, and the IOVA alignment all of them impose
 * (iommufd-uapi.md §4).
 *
 * <p>Every operation validates first, then changes, and undoes in reverse on failure, so a refused
 * call leaves the areas, the domains and the pins as they were. IOVAs are unsigned 64-bit;
 * {@code last} is inclusive. Guarded by the context lock.
 */
final class IoPagetable {
    static final long PAGE_BYTES = UserMemory.PAGE_BYTES;
    static final long ULONG_MAX = -1L;
    /** Automatic IOVAs keep at most huge-page (THP PMD) alignment of the user address. */
    static final long MAX_AUTO_ALIGN = 2L << 20;

    /** An interval that may not be mapped, and who put it there (a domain, a device, or a test). */
    record Reserved(long start, long last, Object owner) {
    }

    /** Told when an area it holds pins in is being unmapped; must release them (the access unmap callback). */
    interface AccessHolder {
        void unmapped(long iova, long last);
    }

    private static final Comparator<Long> UNSIGNED = Long::compareUnsigned;

    private final TreeMap<Long, IoptArea> areas = new TreeMap<>(UNSIGNED);
    /** The free space between areas, kept in step with {@link #areas}. */
    private final IovaHoles holes = new IovaHoles();
    private final List<Reserved> reserved = new ArrayList<>();
    private List<IovaRange> allowed = List.of();
    private final List<IommuPagingDomain> domains = new ArrayList<>();
    private final List<AccessHolder> accessHolders = new ArrayList<>();
    private int pinCapableAccesses;
    private boolean hugePages = true;
    private long alignment = 1;

    // ---- queries -----------------------------------------------------------------------------

    long alignment() {
        return alignment;
    }

    boolean hugePages() {
        return hugePages;
    }

    List<IommuPagingDomain> domains() {
        return List.copyOf(domains);
    }

    boolean hasAreas() {
        return !areas.isEmpty();
    }

    int areaCount() {
        return areas.size();
    }

    List<IoptArea> areas() {
        return new ArrayList<>(areas.values());
    }

    /** {@return the holes of the reserved ranges in [0, 2^64−1], ascending (IOVA_RANGES)} */
    List<IovaRange> usableRanges() {
        List<Reserved> sorted = new ArrayList<>(reserved);
        sorted.sort((a, b) -> Long.compareUnsigned(a.start(), b.start()));
        List<IovaRange> usable = new ArrayList<>();
        long cur = 0;
        boolean done = false;
        for (Reserved r : sorted) {
            if (Long.compareUnsigned(r.start(), cur) > 0) {
                usable.add(new IovaRange(cur, r.start() - 1));
            }
            if (Long.compareUnsigned(r.last(), cur) >= 0) {
                if (r.last() == ULONG_MAX) {
                    done = true;
                    break;
                }
                cur = r.last() + 1;
            }
        }
        if (!done) {
            usable.add(new IovaRange(cur, ULONG_MAX));
        }
        return usable;
    }

    // ---- map ---------------------------------------------------------------------------------

    /**
     * Makes one area over [iova, iova + length) of {@code pages} bytes [pagesOffset, …).
     *
     * @param fixed      map at {@code iova} exactly; otherwise allocate one
     * @param alignHint  the user address whose alignment an automatic IOVA keeps (0: none)
     * @return the area's IOVA
     */
    long map(IoptPages pages, long pagesOffset, long length, long iova, boolean fixed, int prot, long alignHint) {
        long pageOffset = pages.offsetInPage(pagesOffset);
        checkLengthAligned(length);
        long at = fixed ? checkFixed(iova, length) : allocIova(length, alignHint, pageOffset);
        checkAligned(at, length, pageOffset);
        IoptArea area = new IoptArea(at, at + length - 1, pages, pagesOffset, prot);
        insertArea(area);
        return at;
    }

    /** A piece of a source IOAS for COPY: {@code length} bytes of {@code pages} from {@code pagesOffset}. */
    record Slice(IoptPages pages, long pagesOffset, long length, int prot) {
    }

    /** {@return the slices backing [iova, iova + length) of this IOAS} @throws IommufdException ENOENT for a hole */
    List<Slice> slices(long iova, long length) {
        long last = iova + length - 1;
        List<Slice> slices = new ArrayList<>();
        long cur = iova;
        while (true) {
            Map.Entry<Long, IoptArea> e = areas.floorEntry(cur);
            if (e == null || Long.compareUnsigned(e.getValue().last, cur) < 0) {
                throw IommufdException.of(Errno.ENOENT, "copy: no area at iova 0x%x", cur);
            }
            IoptArea a = e.getValue();
            long sliceLast = Long.compareUnsigned(a.last, last) < 0 ? a.last : last;
            slices.add(new Slice(a.pages, a.pagesOffset + (cur - a.iova), sliceLast - cur + 1, a.prot));
            if (sliceLast == last) {
                return slices;
            }
            cur = sliceLast + 1;
        }
    }

    /** Maps {@code slices} back to back from {@code iova} (fixed) or an allocated IOVA; all or nothing. */
    long copyIn(List<Slice> slices, long length, long iova, boolean fixed, int prot) {
        Slice first = slices.getFirst();
        checkLengthAligned(length);
        long at = fixed ? checkFixed(iova, length)
                : allocIova(length, first.pages().start() + first.pagesOffset(), first.pages().offsetInPage(first.pagesOffset()));
        long cur = at;
        for (Slice s : slices) {
            if ((prot & Prot.WRITE) != 0 && !s.pages().writable()) {
                throw IommufdException.of(Errno.EPERM, "copy: writeable copy of read-only memory at iova 0x%x", cur);
            }
            checkAligned(cur, s.length(), s.pages().offsetInPage(s.pagesOffset()));
            cur += s.length();
        }
        List<IoptArea> made = new ArrayList<>();
        cur = at;
        try {
            for (Slice s : slices) {
                IoptArea area = new IoptArea(cur, cur + s.length() - 1, s.pages(), s.pagesOffset(), prot);
                insertArea(area);
                made.add(area);
                cur += s.length();
            }
        } catch (RuntimeException e) {
            for (IoptArea area : made.reversed()) {
                removeArea(area);
            }
            throw e;
        }
        return at;
    }

    private void insertArea(IoptArea area) {
        List<IommuPagingDomain> filled = new ArrayList<>();
        try {
            for (IommuPagingDomain d : domains) {
                fillDomain(d, area);
                filled.add(d);
            }
        } catch (ErrnoException e) {
            for (IommuPagingDomain d : filled.reversed()) {
                emptyDomain(d, area);
            }
            throw IommufdException.from(e);
        }
        areas.put(area.iova, area);
        holes.use(area.iova, area.last);
        area.pages.addAreaRef();
    }

    /** {@return the fixed IOVA after checking it is free} */
    private long checkFixed(long iova, long length) {
        if ((iova & (alignment - 1)) != 0) {
            throw IommufdException.of(Errno.EINVAL, "map iova=0x%x: not aligned to the IOAS alignment 0x%x", iova, alignment);
        }
        long last = iova + length - 1;
        if (Long.compareUnsigned(last, iova) < 0) {
            throw IommufdException.of(Errno.EOVERFLOW, "map iova=0x%x length=0x%x: wraps past 2^64", iova, length);
        }
        for (Reserved r : reserved) {
            if (Long.compareUnsigned(r.start(), last) <= 0 && Long.compareUnsigned(iova, r.last()) <= 0) {
                throw IommufdException.of(Errno.EINVAL, "map [0x%x, 0x%x]: intersects reserved [0x%x, 0x%x]", iova, last, r.start(), r.last());
            }
        }
        IoptArea clash = firstAreaIntersecting(iova, last);
        if (clash != null) {
            throw IommufdException.of(Errno.EEXIST, "map [0x%x, 0x%x]: overlaps %s", iova, last, clash);
        }
        return iova;
    }

    /** The first check of a map or copy, before any IOVA is looked at (iommufd-uapi.md §2.5 step 6, the kernel's iopt_alloc_area_pages). */
    private void checkLengthAligned(long length) {
        if ((length & (alignment - 1)) != 0) {
            throw IommufdException.of(Errno.EINVAL, "map length=0x%x: not aligned to the IOAS alignment 0x%x", length, alignment);
        }
    }

    private void checkAligned(long iova, long length, long pageOffset) {
        if ((length & (alignment - 1)) != 0 || (iova & (alignment - 1)) != 0) {
            throw IommufdException.of(Errno.EINVAL, "map iova=0x%x length=0x%x: not aligned to the IOAS alignment 0x%x", iova, length, alignment);
        }
        if ((pageOffset & (alignment - 1)) != 0) {
            throw IommufdException.of(Errno.EINVAL, "map: sub-page offset 0x%x of the memory is not aligned to 0x%x", pageOffset, alignment);
        }
    }

    /** The kernel's automatic IOVA allocator, exactly (iommufd-uapi.md §4.4). */
    private long allocIova(long length, long addr, long pageOffset) {
        if (length == 0 || Long.compareUnsigned(length, ULONG_MAX >>> 1) >= 0) {
            throw IommufdException.of(Errno.EOVERFLOW, "automatic iova for length=0x%x: too long", length);
        }
        long align = roundUpPowerOfTwo(length);
        if (addr != 0) {
            align = Math.min(align, Long.lowestOneBit(addr));
        }
        align = Math.min(align, MAX_AUTO_ALIGN);
        if (align < alignment) {
            throw IommufdException.of(Errno.EINVAL, "automatic iova: the memory's alignment 0x%x is below the IOAS alignment 0x%x", align, alignment);
        }
        List<IovaRange> windows = allowed.isEmpty() ? List.of(new IovaRange(PAGE_BYTES, ULONG_MAX - PAGE_BYTES)) : allowed;
        for (IovaRange window : windows) {
            long start = Long.compareUnsigned(window.start(), PAGE_BYTES) < 0 ? PAGE_BYTES : window.start();
            long last = Long.compareUnsigned(window.last(), ULONG_MAX - PAGE_BYTES) > 0 ? ULONG_MAX - PAGE_BYTES : window.last();
            if (Long.compareUnsigned(start, last) > 0) {
                continue;
            }
            long found = findHole(start, last, length, align, pageOffset);
            if (found != -1) {
                return found;
            }
        }
        throw IommufdException.of(Errno.ENOSPC, "automatic iova: no hole of 0x%x bytes aligned to 0x%x", length, align);
    }

    /**
     * {@return the first fitting candidate in the holes of (reserved ∪ areas) within [start, last],
     * or -1}: holes between areas come from the index in ascending order, skipping those too small
     * to hold {@code length} (no piece of them could), and each is cut around the reserved ranges.
     */
    private long findHole(long start, long last, long length, long align, long pageOffset) {
        long[] hole = holes.holeAt(start);
        if (hole == null) {
            hole = holes.firstAfter(start, length);
        }
        while (hole != null && Long.compareUnsigned(hole[0], last) <= 0) {
            long from = Long.compareUnsigned(hole[0], start) < 0 ? start : hole[0];
            long to = Long.compareUnsigned(hole[1], last) > 0 ? last : hole[1];
            long found = fitBetweenReserved(from, to, length, align, pageOffset);
            if (found != -1 || hole[1] == ULONG_MAX) {
                return found;
            }
            hole = holes.firstAfter(hole[1], length);
        }
        return -1;
    }

    /** {@return the kernel's candidate in the first piece of [from, to] outside reserved ranges that fits, or -1} */
    private long fitBetweenReserved(long from, long to, long length, long align, long pageOffset) {
        long cur = from;
        for (Reserved r : reserved) {
            if (Long.compareUnsigned(r.last(), cur) < 0) {
                continue;
            }
            if (Long.compareUnsigned(r.start(), to) > 0) {
                break;
            }
            if (Long.compareUnsigned(r.start(), cur) > 0) {
                long found = fit(cur, r.start() - 1, length, align, pageOffset);
                if (found != -1) {
                    return found;
                }
            }
            if (r.last() == ULONG_MAX || Long.compareUnsigned(r.last(), to) >= 0) {
                return -1;
            }
            cur = r.last() + 1;
        }
        return fit(cur, to, length, align, pageOffset);
    }

    /** The kernel's test of one hole: align up, OR in the page offset, and require room for the length. */
    private static long fit(long holeStart, long holeLast, long length, long align, long pageOffset) {
        long candidate = ((holeStart + align - 1) & -align) | pageOffset;
        if (Long.compareUnsigned(candidate, holeStart) >= 0 && Long.compareUnsigned(candidate, holeLast) < 0
                && Long.compareUnsigned(holeLast - candidate, length - 1) >= 0) {
            return candidate;
        }
        return -1;
    }

    private static long roundUpPowerOfTwo(long value) {
        long high = Long.highestOneBit(value);
        return high == value ? value : high << 1;
    }

    // ---- unmap -------------------------------------------------------------------------------

    /**
     * Removes every area inside [iova, last]; each intersecting area must be wholly inside. Areas
     * go one at a time in ascending order, so a failure leaves the earlier ones removed (as the
     * kernel does).
     *
     * @return the bytes unmapped (0 is possible only for {@code all} on an empty IOAS)
     */
    long unmap(long iova, long last, boolean all) {
        long unmapped = 0;
        while (true) {
            IoptArea area = all ? (areas.isEmpty() ? null : areas.firstEntry().getValue()) : firstAreaIntersecting(iova, last);
            if (area == null) {
                break;
            }
            if (!all && (Long.compareUnsigned(area.iova, iova) < 0 || Long.compareUnsigned(area.last, last) > 0)) {
                throw IommufdException.of(Errno.ENOENT, "unmap [0x%x, 0x%x]: %s is not wholly inside", iova, last, area)
                        .withProgressBytes(unmapped);
            }
            if (area.locks > 0) {
                throw IommufdException.of(Errno.EBUSY, "unmap: %s is locked by a HW queue", area).withProgressBytes(unmapped);
            }
            try {
                releaseAccessItems(area);
            } catch (IommufdException e) {
                throw e.withProgressBytes(unmapped);
            }
            removeArea(area);
            unmapped += area.lengthBytes();
        }
        if (unmapped == 0 && !all) {
            throw IommufdException.of(Errno.ENOENT, "unmap [0x%x, 0x%x]: nothing mapped there", iova, last).withProgressBytes(0);
        }
        return unmapped;
    }

    private void releaseAccessItems(IoptArea area) {
        for (int round = 0; area.accessItems > 0 && round < 100; round++) {
            for (AccessHolder holder : List.copyOf(accessHolders)) {
                holder.unmapped(area.iova, area.last);
            }
        }
        if (area.accessItems > 0) {
            throw IommufdException.of(Errno.EDEADLK, "unmap: accesses keep %d pins in %s", area.accessItems, area);
        }
    }

    private void removeArea(IoptArea area) {
        for (IommuPagingDomain d : domains) {
            emptyDomain(d, area);
        }
        areas.remove(area.iova);
        holes.free(area.iova, area.last);
        area.pages.dropAreaRef();
    }

    /**
     * Cuts the area containing {@code at} into [iova, at − 1] and [at, last] (VFIO type1 compat only).
     * Nothing happens when an area already starts at {@code at} or none contains it.
     */
    void cut(long at) {
        Map.Entry<Long, IoptArea> e = areas.floorEntry(at);
        if (e == null || e.getValue().iova == at || Long.compareUnsigned(e.getValue().last, at) < 0) {
            return;
        }
        IoptArea area = e.getValue();
        if (area.pages.source() instanceof DmaBuf) {
            throw IommufdException.of(Errno.EOPNOTSUPP, "cannot split %s: it maps a dma-buf", area);
        }
        if (area.accessItems > 0) {
            throw IommufdException.of(Errno.EINVAL, "cannot split %s: accesses hold pins in it", area);
        }
        if (!domains.isEmpty() && hugePages) {
            throw IommufdException.of(Errno.EINVAL, "cannot split %s: huge pages may span the cut", area);
        }
        long headLength = at - area.iova;
        if ((headLength & (alignment - 1)) != 0) {
            throw IommufdException.of(Errno.EINVAL, "cannot split %s at 0x%x: not aligned to 0x%x", area, at, alignment);
        }
        // Domains hold one user per page per area: re-take them for the two halves before dropping the old.
        IoptArea head = new IoptArea(area.iova, at - 1, area.pages, area.pagesOffset, area.prot);
        IoptArea tail = new IoptArea(at, area.last, area.pages, area.pagesOffset + headLength, area.prot);
        for (int i = 0; i < domains.size(); i++) {
            area.pages.acquire(head.firstPage(), head.lastPage());
            area.pages.acquire(tail.firstPage(), tail.lastPage());
            area.pages.release(area.firstPage(), area.lastPage());
        }
        areas.put(head.iova, head);
        areas.put(tail.iova, tail);
        area.pages.addAreaRef();
    }

    // ---- domains -----------------------------------------------------------------------------

    /** Adds a paging domain: reserves outside its aperture and copies every area into it. */
    void addDomain(IommuPagingDomain domain, Object owner) {
        long smallest = Long.lowestOneBit(domain.pageSizes());
        if (smallest > PAGE_BYTES) {
            throw IommufdException.of(Errno.EINVAL, "domain's smallest page 0x%x is larger than the CPU page", smallest);
        }
        long newAlignment = Math.max(alignment, smallest);
        checkAlignmentFits(newAlignment);
        List<Reserved> added = new ArrayList<>();
        try {
            if (domain.apertureStart() != 0) {
                added.add(addReserved(0, domain.apertureStart() - 1, domain));
            }
            if (domain.apertureLast() != ULONG_MAX) {
                added.add(addReserved(domain.apertureLast() + 1, ULONG_MAX, domain));
            }
        } catch (IommufdException e) {
            reserved.removeAll(added);
            throw e;
        }
        List<IoptArea> filled = new ArrayList<>();
        try {
            for (IoptArea area : areas.values()) {
                fillDomain(domain, area);
                filled.add(area);
            }
        } catch (ErrnoException e) {
            for (IoptArea area : filled.reversed()) {
                emptyDomain(domain, area);
            }
            reserved.removeAll(added);
            throw IommufdException.from(e);
        }
        domains.add(domain);
        alignment = newAlignment;
    }

    /** Takes a domain out: unmaps every area from it, drops its reserved ranges, lowers the alignment. */
    void removeDomain(IommuPagingDomain domain) {
        if (!domains.remove(domain)) {
            throw new IllegalStateException("bug: removing a domain that is not in this IOAS");
        }
        for (IoptArea area : areas.values()) {
            emptyDomain(domain, area);
        }
        reserved.removeIf(r -> r.owner() == domain);
        alignment = computeAlignment();
    }

    private void fillDomain(IommuPagingDomain domain, IoptArea area) {
        if (area.revoked) {
            return;
        }
        int first = area.firstPage();
        int last = area.lastPage();
        area.pages.acquire(first, last);
        long mapped = 0;
        try {
            long iova = area.iova;
            long remaining = area.lengthBytes();
            long runIova = iova;
            long runPa = 0;
            long runLength = 0;
            for (int k = first; k <= last; k++) {
                long inPage = k == first ? area.offsetInPageAt(area.iova) : 0;
                long chunk = Math.min(PAGE_BYTES - inPage, remaining);
                long pa = area.pages.physical(k) + inPage;
                if (runLength > 0 && hugePages && pa == runPa + runLength) {
                    runLength += chunk;
                } else {
                    if (runLength > 0) {
                        domain.map(runIova, runPa, runLength, area.prot | Prot.CACHE);
                        mapped += runLength;
                    }
                    runIova = iova;
                    runPa = pa;
                    runLength = chunk;
                }
                iova += chunk;
                remaining -= chunk;
            }
            domain.map(runIova, runPa, runLength, area.prot | Prot.CACHE);
        } catch (ErrnoException e) {
            if (mapped > 0) {
                domain.unmap(area.iova, mapped);
            }
            area.pages.release(first, last);
            throw e;
        }
    }

    private void emptyDomain(IommuPagingDomain domain, IoptArea area) {
        if (area.revoked) {
            return;
        }
        long unmapped = domain.unmap(area.iova, area.lengthBytes());
        if (unmapped != area.lengthBytes()) {
            throw new IllegalStateException(String.format("driver bug: unmap of %s returned 0x%x bytes", area, unmapped));
        }
        area.pages.release(area.firstPage(), area.lastPage());
    }

    // ---- reserved and allowed ranges, alignment, options -------------------------------------------

    /** Adds a reserved range; @throws IommufdException EADDRINUSE over an area or an allowed range */
    Reserved addReserved(long start, long last, Object owner) {
        IoptArea area = firstAreaIntersecting(start, last);
        if (area != null) {
            throw IommufdException.of(Errno.EADDRINUSE, "reserve [0x%x, 0x%x]: %s is mapped there", start, last, area);
        }
        for (IovaRange a : allowed) {
            if (a.intersects(start, last)) {
                throw IommufdException.of(Errno.EADDRINUSE, "reserve [0x%x, 0x%x]: intersects allowed range %s", start, last, a);
            }
        }
        Reserved r = new Reserved(start, last, owner);
        reserved.add(r);
        reserved.sort((a, b) -> Long.compareUnsigned(a.start(), b.start()));
        return r;
    }

    void removeReserved(Object owner) {
        reserved.removeIf(r -> r.owner() == owner);
    }

    /** Replaces the allowed list (already checked for shape by the caller); EADDRINUSE over a reserved range. */
    void setAllowed(List<IovaRange> ranges) {
        for (IovaRange a : ranges) {
            for (Reserved r : reserved) {
                if (a.intersects(r.start(), r.last())) {
                    throw IommufdException.of(Errno.EADDRINUSE, "allow %s: intersects reserved [0x%x, 0x%x]", a, r.start(), r.last());
                }
            }
        }
        List<IovaRange> sorted = new ArrayList<>(ranges);
        sorted.sort((x, y) -> Long.compareUnsigned(x.start(), y.start()));
        allowed = List.copyOf(sorted);
    }

    /** Turns huge IOPTEs on or off (IOMMU_OPTION_HUGE_PAGES). */
    void hugePages(boolean enabled) {
        if (enabled == hugePages) {
            return;
        }
        if (!enabled && !domains.isEmpty() && !areas.isEmpty()) {
            throw IommufdException.of(Errno.EINVAL, "huge pages cannot be turned off with both domains and mappings present");
        }
        boolean old = hugePages;
        hugePages = enabled;
        try {
            long next = computeAlignment();
            checkAlignmentFits(next);
            alignment = next;
        } catch (IommufdException e) {
            hugePages = old;
            throw e;
        }
    }

    /** Registers an in-kernel access; a pin-capable one raises the alignment to the CPU page. */
    void addAccess(AccessHolder holder, boolean pinCapable) {
        if (pinCapable) {
            long next = Math.max(alignment, PAGE_BYTES);
            checkAlignmentFits(next);
            pinCapableAccesses++;
            alignment = next;
        }
        accessHolders.add(holder);
    }

    void removeAccess(AccessHolder holder, boolean pinCapable) {
        accessHolders.remove(holder);
        if (pinCapable) {
            pinCapableAccesses--;
            alignment = computeAlignment();
        }
    }

    private long computeAlignment() {
        long a = 1;
        for (IommuPagingDomain d : domains) {
            a = Math.max(a, Long.lowestOneBit(d.pageSizes()));
        }
        if (pinCapableAccesses > 0 || !hugePages) {
            a = Math.max(a, PAGE_BYTES);
        }
        return a;
    }

    private void checkAlignmentFits(long newAlignment) {
        for (IoptArea area : areas.values()) {
            long pageOffset = area.pages.offsetInPage(area.pagesOffset);
            if (((area.iova | area.lengthBytes() | pageOffset) & (newAlignment - 1)) != 0) {
                throw IommufdException.of(Errno.EADDRINUSE, "alignment 0x%x: %s (sub-page offset 0x%x) does not conform", newAlignment, area, pageOffset);
            }
        }
    }

    // ---- access pinning and copying --------------------------------------------------------------

    /**
     * Pins [iova, iova + length) for an access: one user on every page, one item on every area.
     *
     * @return the physical address of each CPU page, in order
     */
    long[] accessPin(long iova, long length, boolean write) {
        if (length == 0 || ((iova | length) & (PAGE_BYTES - 1)) != 0) {
            throw IommufdException.of(Errno.EINVAL, "access pin iova=0x%x length=0x%x: not whole CPU pages", iova, length);
        }
        List<IoptArea> covering = covering(iova, length, write ? Prot.WRITE : Prot.READ);
        long[] physical = new long[Math.toIntExact(length / PAGE_BYTES)];
        List<IoptArea> pinned = new ArrayList<>();
        long last = iova + length - 1;
        try {
            for (IoptArea a : covering) {
                long from = Long.compareUnsigned(a.iova, iova) < 0 ? iova : a.iova;
                long to = Long.compareUnsigned(a.last, last) > 0 ? last : a.last;
                a.pages.acquire(a.pageAt(from), a.pageAt(to));
                pinned.add(a);
                a.accessItems++;
                for (long at = from; Long.compareUnsigned(at, to) <= 0; at += PAGE_BYTES) {
                    physical[(int) ((at - iova) / PAGE_BYTES)] = a.pages.physical(a.pageAt(at)) + a.offsetInPageAt(at);
                    if (at + PAGE_BYTES == 0) {
                        break;
                    }
                }
            }
        } catch (IommufdException e) {
            for (IoptArea a : pinned) {
                unpinSlice(a, iova, last);
            }
            throw e;
        }
        return physical;
    }

    /** Adds {@code delta} to the lock count of every area in [iova, iova + length) (HW queues; unmap is EBUSY while locked). */
    void lock(long iova, long length, int delta) {
        for (IoptArea a : covering(iova, length, 0)) {
            a.locks += delta;
        }
    }

    /** Releases an {@link #accessPin} of the same range. */
    void accessUnpin(long iova, long length) {
        long last = iova + length - 1;
        for (IoptArea a : covering(iova, length, 0)) {
            unpinSlice(a, iova, last);
        }
    }

    private void unpinSlice(IoptArea a, long iova, long last) {
        long from = Long.compareUnsigned(a.iova, iova) < 0 ? iova : a.iova;
        long to = Long.compareUnsigned(a.last, last) > 0 ? last : a.last;
        a.pages.release(a.pageAt(from), a.pageAt(to));
        a.accessItems--;
    }

    /**
     * IOAS_NOIOMMU_GET_PA's walk (the kernel's iopt_get_phys): the physical address of {@code iova}
     * and how far from it the area's pages run physically contiguous, capped by {@code maxLength}.
     * Like the kernel it counts page steps from {@code iova}, so an unaligned start may count the
     * area's last page whole. Our "storage" is the pin bookkeeping: an area whose pages nothing
     * pins has no physical address to give (EOPNOTSUPP, the kernel's "no no-IOMMU storage domain").
     */
    Iommufd.PhysicalRange physicalRange(long iova, long maxLength) {
        Map.Entry<Long, IoptArea> e = areas.floorEntry(iova);
        IoptArea area = e == null || Long.compareUnsigned(e.getValue().last, iova) < 0 ? null : e.getValue();
        if (area == null) {
            throw IommufdException.of(Errno.ENOENT, "noiommu_get_pa: nothing mapped at iova 0x%x", iova);
        }
        if (area.revoked) {
            throw IommufdException.of(Errno.EINVAL, "noiommu_get_pa: %s maps a revoked dma-buf", area);
        }
        int page = area.pageAt(iova);
        if (area.pages.users(page) == 0) {
            throw IommufdException.of(Errno.EOPNOTSUPP, "noiommu_get_pa: nothing holds the pages of %s (no domain or access)", area);
        }
        long physical = area.pages.physical(page) + area.offsetInPageAt(iova);
        long length = Math.min(PAGE_BYTES - (iova & (PAGE_BYTES - 1)), area.last - iova + 1);
        long expected = physical;
        for (long at = iova; Long.compareUnsigned(at, area.last) < 0 && Long.compareUnsigned(length, maxLength) < 0; ) {
            long next = at + PAGE_BYTES;
            if (Long.compareUnsigned(next, at) < 0 || Long.compareUnsigned(next, area.last) > 0) {
                break;
            }
            int nextPage = area.pageAt(next);
            if (area.pages.users(nextPage) == 0 || area.pages.physical(nextPage) + area.offsetInPageAt(next) != expected + PAGE_BYTES) {
                break;
            }
            at = next;
            expected += PAGE_BYTES;
            length += PAGE_BYTES;
        }
        return new Iommufd.PhysicalRange(physical, Long.compareUnsigned(length, maxLength) > 0 ? maxLength : length);
    }

    /**
     * Copies between a buffer and [iova, iova + buffer.length) through the areas (ACCESS_RW), at any
     * alignment, pinning each page only while it is copied.
     */
    void accessRw(long iova, byte[] buffer, boolean write, dev.jiommu.mem.PhysicalMemory memory) {
        if (buffer.length == 0) {
            throw IommufdException.of(Errno.EINVAL, "access rw iova=0x%x: zero length", iova);
        }
        List<IoptArea> covering = covering(iova, buffer.length, write ? Prot.WRITE : Prot.READ);
        long cur = iova;
        int done = 0;
        for (IoptArea a : covering) {
            while (done < buffer.length && Long.compareUnsigned(cur, a.last) <= 0) {
                int page = a.pageAt(cur);
                long inPage = a.offsetInPageAt(cur);
                int chunk = (int) Math.min(PAGE_BYTES - inPage, Math.min(buffer.length - done, a.last - cur + 1));
                a.pages.acquire(page, page);
                try {
                    long pa = a.pages.physical(page) + inPage;
                    if (write) {
                        memory.writeBytes(pa, Arrays.copyOfRange(buffer, done, done + chunk));
                    } else {
                        System.arraycopy(memory.readBytes(pa, chunk), 0, buffer, done, chunk);
                    }
                } finally {
                    a.pages.release(page, page);
                }
                done += chunk;
                cur += chunk;
            }
        }
    }

    /**
     * {@return the areas covering [iova, iova + length) without holes} ENOENT for a hole; EPERM for an
     * area that lacks {@code neededProt} (WRITE for a write, READ for a read, as the kernel's
     * check_area_prot; 0 checks nothing, for releasing what was already pinned)
     */
    private List<IoptArea> covering(long iova, long length, int neededProt) {
        long last = iova + length - 1;
        if (Long.compareUnsigned(last, iova) < 0) {
            throw IommufdException.of(Errno.EOVERFLOW, "access iova=0x%x length=0x%x: wraps past 2^64", iova, length);
        }
        List<IoptArea> covering = new ArrayList<>();
        long cur = iova;
        while (true) {
            Map.Entry<Long, IoptArea> e = areas.floorEntry(cur);
            if (e == null || Long.compareUnsigned(e.getValue().last, cur) < 0) {
                throw IommufdException.of(Errno.ENOENT, "access: nothing mapped at iova 0x%x", cur);
            }
            IoptArea a = e.getValue();
            if (a.revoked) {
                throw IommufdException.of(Errno.ENODEV, "access: %s maps a revoked dma-buf", a);
            }
            if ((a.prot & neededProt) != neededProt) {
                throw IommufdException.of(Errno.EPERM, "access %s: %s does not permit it",
                        neededProt == Prot.WRITE ? "write" : "read", a);
            }
            covering.add(a);
            if (Long.compareUnsigned(a.last, last) >= 0) {
                return covering;
            }
            cur = a.last + 1;
        }
    }

    /** The exporter revoked {@code buf}: its areas leave every domain (their IOVA stays taken until unmapped). */
    void revoke(DmaBuf buf) {
        for (IoptArea area : areas.values()) {
            if (area.pages.source() == buf && !area.revoked) {
                for (IommuPagingDomain d : domains) {
                    emptyDomain(d, area);
                }
                area.revoked = true;
            }
        }
    }

    /** {@return whether any area intersects [start, last]} */
    boolean hasAreaIn(long start, long last) {
        return firstAreaIntersecting(start, last) != null;
    }

    private IoptArea firstAreaIntersecting(long start, long last) {
        Map.Entry<Long, IoptArea> below = areas.floorEntry(start);
        if (below != null && Long.compareUnsigned(below.getValue().last, start) >= 0) {
            return below.getValue();
        }
        Map.Entry<Long, IoptArea> above = areas.ceilingEntry(start);
        if (above != null && Long.compareUnsigned(above.getKey(), last) <= 0) {
            return above.getValue();
        }
        return null;
    }

    /** Releases everything (IOAS destroy): every area from every domain. Domains must already be gone. */
    void destroy() {
        if (!domains.isEmpty()) {
            throw new IllegalStateException("bug: destroying an IOAS that still has domains");
        }
        for (IoptArea area : List.copyOf(areas.values())) {
            releaseAccessItems(area);
            removeArea(area);
        }
    }
}
