package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static dev.jiommu.iommufd.IommufdFixture.MOCK_APERTURE_LAST;
import static dev.jiommu.iommufd.IommufdFixture.MOCK_APERTURE_START;
import static dev.jiommu.iommufd.IommufdFixture.MOCK_PAGE_SIZE;
import static dev.jiommu.iommufd.IommufdFixture.PAGE_SIZE;

/**
 * The reference model {@link IoasRandomizedTest} checks the context against: IOASes with their
 * areas, allowed ranges, attached mock devices and accesses, and what each operation does to them,
 * written from iommufd-uapi.md §2–§4 and §8 (and, where the spec is silent, the kernel source it
 * cites). It knows nothing of the implementation; a difference is a bug on one side.
 */
final class IoasModel {
    static final long MAX = -1L;
    static final int R = Iommufd.MAP_READABLE;
    static final int W = Iommufd.MAP_WRITEABLE;
    /** The automatic IOVA allocator keeps at most this much alignment of the memory's address (§4.4). */
    static final long MAX_AUTO_ALIGN = 2L << 20;

    private IoasModel() {
    }

    enum Source { USER, FILE }

    /** One MAP or MAP_FILE: what COPY shares, and what is pinned once however many use it (iopt_pages). */
    record Pages(int id, Source source, long start, long length, boolean writable) {
    }

    /** [iova, iova + length) maps bytes [pagesOffset, …) of {@code pages}; prot is R/W. */
    record Area(long iova, long length, Pages pages, long pagesOffset, int prot) {
        long last() {
            return iova + length - 1;
        }

        /** {@return the source address (VA or file offset) of the byte at {@code at}} */
        long address(long at) {
            return pages.start() + pagesOffset + (at - iova);
        }

        long pageOffset() {
            return address(iova) & (PAGE_SIZE - 1);
        }
    }

    /** A piece of memory to map: {@code length} bytes of {@code pages} from {@code pagesOffset}. */
    record Slice(Pages pages, long pagesOffset, long length, int prot) {
    }

    static final class ModelIoas {
        int id;
        final TreeMap<Long, Area> areas = new TreeMap<>();
        List<IovaRange> allowed = List.of();
        /** Selftest objects whose device is attached here; they all share one auto HWPT. */
        final List<Integer> devices = new ArrayList<>();
        int hwptId;
        final List<ModelAccess> accesses = new ArrayList<>();

        ModelIoas(int id) {
            this.id = id;
        }

        boolean hasDomain() {
            return !devices.isEmpty();
        }

        long alignment() {
            long a = 1;
            if (hasDomain()) {
                a = MOCK_PAGE_SIZE;
            }
            if (!accesses.isEmpty()) {
                a = PAGE_SIZE;
            }
            return a;
        }

        /** The reserved ranges: the complement of the mock aperture while a domain is attached. */
        List<IovaRange> reserved() {
            return hasDomain() ? List.of(new IovaRange(0, MOCK_APERTURE_START - 1), new IovaRange(MOCK_APERTURE_LAST + 1, MAX))
                    : List.of();
        }

        Area areaAt(long iova) {
            Map.Entry<Long, Area> e = areas.floorEntry(iova);
            return e != null && e.getValue().last() >= iova ? e.getValue() : null;
        }

        Area firstIntersecting(long start, long last) {
            Area a = areaAt(start);
            if (a != null) {
                return a;
            }
            Map.Entry<Long, Area> e = areas.ceilingEntry(start);
            return e != null && e.getKey() <= last ? e.getValue() : null;
        }

        @Override
        public String toString() {
            return "ioas#" + id;
        }
    }

    static final class ModelAccess {
        final int fd;
        ModelIoas ioas;
        /** Pin items by id: [iova, length]. */
        final Map<Integer, long[]> items = new LinkedHashMap<>();
        final List<Integer> dropped = new ArrayList<>();

        ModelAccess(int fd, ModelIoas ioas) {
            this.fd = fd;
            this.ioas = ioas;
        }
    }

    /** An expected outcome: a value, or an errno. */
    record Outcome(Errno errno, long value) {
        static Outcome fail(Errno errno) {
            return new Outcome(errno, 0);
        }

        static Outcome ok(long value) {
            return new Outcome(null, value);
        }

        boolean failed() {
            return errno != null;
        }
    }

    /** {@return the slices of [iova, +length) of {@code m}, or null if a hole is in the way (ENOENT)} */
    static List<Slice> slicesOf(ModelIoas m, long iova, long length, int prot) {
        List<Slice> slices = new ArrayList<>();
        long last = iova + length - 1;
        long cur = iova;
        while (true) {
            Area a = m.areaAt(cur);
            if (a == null) {
                return null;
            }
            long sliceLast = Math.min(a.last(), last);
            slices.add(new Slice(a.pages(), a.pagesOffset() + (cur - a.iova()), sliceLast - cur + 1, prot));
            if (sliceLast == last) {
                return slices;
            }
            cur = sliceLast + 1;
        }
    }

    /** What MAP, MAP_FILE and COPY do to {@code m} (§2.5 steps 6–8, §2.7, §4.3, §4.4). */
    static Outcome predictMap(ModelIoas m, List<Slice> slices, long length, boolean fixed, long iova, long addr) {
        long align = m.alignment();
        if ((length & (align - 1)) != 0) {
            return Outcome.fail(Errno.EINVAL);
        }
        long at;
        if (fixed) {
            if ((iova & (align - 1)) != 0) {
                return Outcome.fail(Errno.EINVAL);
            }
            long last = iova + length - 1;
            for (IovaRange res : m.reserved()) {
                if (res.intersects(iova, last)) {
                    return Outcome.fail(Errno.EINVAL);
                }
            }
            if (m.firstIntersecting(iova, last) != null) {
                return Outcome.fail(Errno.EEXIST);
            }
            at = iova;
        } else {
            Outcome auto = allocIova(m, length, addr, pageOffset(slices.getFirst()));
            if (auto.failed()) {
                return auto;
            }
            at = auto.value();
        }
        long cur = at;
        for (Slice s : slices) {
            if ((s.prot() & W) != 0 && !s.pages().writable()) {
                return Outcome.fail(Errno.EPERM);
            }
            if (((cur | s.length() | pageOffset(s)) & (align - 1)) != 0) {
                return Outcome.fail(Errno.EINVAL);
            }
            cur += s.length();
        }
        return Outcome.ok(at);
    }

    static long pageOffset(Slice s) {
        return (s.pages().start() + s.pagesOffset()) & (PAGE_SIZE - 1);
    }

    /** The automatic IOVA allocator as §4.4 states it: first fit from the bottom of each window. */
    static Outcome allocIova(ModelIoas m, long length, long addr, long pageOffset) {
        long align = Long.highestOneBit(length) == length ? length : Long.highestOneBit(length) << 1;
        if (addr != 0) {
            align = Math.min(align, Long.lowestOneBit(addr));
        }
        align = Math.min(align, MAX_AUTO_ALIGN);
        if (align < m.alignment()) {
            return Outcome.fail(Errno.EINVAL);
        }
        List<IovaRange> windows = m.allowed.isEmpty() ? List.of(new IovaRange(PAGE_SIZE, MAX - PAGE_SIZE)) : m.allowed;
        List<IovaRange> used = new ArrayList<>(m.reserved());
        for (Area a : m.areas.values()) {
            used.add(new IovaRange(a.iova(), a.last()));
        }
        used.sort((x, y) -> Long.compareUnsigned(x.start(), y.start()));
        for (IovaRange window : windows) {
            long ws = Long.compareUnsigned(window.start(), PAGE_SIZE) < 0 ? PAGE_SIZE : window.start();
            long wl = Long.compareUnsigned(window.last(), MAX - PAGE_SIZE) > 0 ? MAX - PAGE_SIZE : window.last();
            long cur = ws;
            boolean covered = false;
            for (IovaRange u : used) {
                if (Long.compareUnsigned(u.last(), cur) < 0) {
                    continue;
                }
                if (Long.compareUnsigned(u.start(), wl) > 0) {
                    break;
                }
                if (Long.compareUnsigned(u.start(), cur) > 0) {
                    long found = fit(cur, u.start() - 1, length, align, pageOffset);
                    if (found != -1) {
                        return Outcome.ok(found);
                    }
                }
                if (Long.compareUnsigned(u.last(), wl) >= 0) {
                    covered = true;
                    break;
                }
                cur = u.last() + 1;
            }
            if (!covered && Long.compareUnsigned(cur, wl) <= 0) {
                long found = fit(cur, wl, length, align, pageOffset);
                if (found != -1) {
                    return Outcome.ok(found);
                }
            }
        }
        return Outcome.fail(Errno.ENOSPC);
    }

    static long fit(long holeStart, long holeLast, long length, long align, long pageOffset) {
        long candidate = ((holeStart + align - 1) & -align) | pageOffset;
        if (Long.compareUnsigned(candidate, holeStart) >= 0 && Long.compareUnsigned(candidate, holeLast) < 0
                && Long.compareUnsigned(holeLast - candidate, length - 1) >= 0) {
            return candidate;
        }
        return -1;
    }

    static void insert(ModelIoas m, List<Slice> slices, long at) {
        long cur = at;
        for (Slice s : slices) {
            m.areas.put(cur, new Area(cur, s.length(), s.pages(), s.pagesOffset(), s.prot()));
            cur += s.length();
        }
    }

    /** The access unmap callback: every item of an access on {@code m} that touches the area goes. */
    static void dropItemsOver(ModelIoas m, Area area) {
        for (ModelAccess access : m.accesses) {
            access.items.entrySet().removeIf(e -> {
                long[] item = e.getValue();
                boolean hit = item[0] <= area.last() && area.iova() <= item[0] + item[1] - 1;
                if (hit) {
                    access.dropped.add(e.getKey());
                }
                return hit;
            });
        }
    }

    /** What adding the first (auto) domain to {@code m} gives: null for success, else the errno (§4.2). */
    static Errno predictNewDomain(ModelIoas m) {
        long align = Math.max(m.alignment(), MOCK_PAGE_SIZE);
        for (Area a : m.areas.values()) {
            if (((a.iova() | a.length() | a.pageOffset()) & (align - 1)) != 0) {
                return Errno.EADDRINUSE;
            }
        }
        for (IovaRange res : List.of(new IovaRange(0, MOCK_APERTURE_START - 1), new IovaRange(MOCK_APERTURE_LAST + 1, MAX))) {
            // Model areas live far below 2^63, so a signed search up to Long.MAX_VALUE covers "to ULONG_MAX".
            if (m.firstIntersecting(res.start(), res.last() == MAX ? Long.MAX_VALUE : res.last()) != null) {
                return Errno.EADDRINUSE;
            }
            for (IovaRange a : m.allowed) {
                if (a.intersects(res.start(), res.last())) {
                    return Errno.EADDRINUSE;
                }
            }
        }
        return null;
    }

    /**
     * §8.2 ACCESS_PAGES (the mock refuses more than 16 MiB), then §3.9 and the kernel's
     * iopt_access_pages: whole CPU pages, areas without holes, each area permitting the access.
     */
    static Errno predictAccessPin(ModelIoas m, long iova, long length, boolean write) {
        if (length > IommufdSelftest.ACCESS_MAX_BYTES) {
            return Errno.ENOMEM;
        }
        if (length == 0 || ((iova | length) & (PAGE_SIZE - 1)) != 0) {
            return Errno.EINVAL;
        }
        long last = iova + length - 1;
        long cur = iova;
        while (true) {
            Area a = m.areaAt(cur);
            if (a == null) {
                return Errno.ENOENT;
            }
            if ((a.prot() & (write ? W : R)) == 0) {
                return Errno.EPERM;
            }
            if (a.last() >= last) {
                return null;
            }
            cur = a.last() + 1;
        }
    }

    static String protName(int prot) {
        return ((prot & R) != 0 ? "R" : "") + ((prot & W) != 0 ? "W" : "");
    }
}
