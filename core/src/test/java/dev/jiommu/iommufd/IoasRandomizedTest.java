package dev.jiommu.iommufd;

import dev.jiommu.driver.mock.MockDevice;
import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommufd.IoasModel.Area;
import dev.jiommu.iommufd.IoasModel.ModelAccess;
import dev.jiommu.iommufd.IoasModel.ModelIoas;
import dev.jiommu.iommufd.IoasModel.Outcome;
import dev.jiommu.iommufd.IoasModel.Pages;
import dev.jiommu.iommufd.IoasModel.Slice;
import dev.jiommu.iommufd.IoasModel.Source;
import dev.jiommu.mem.MemoryFile;
import dev.jiommu.pt.Access;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.function.Supplier;
import java.util.stream.LongStream;
import java.util.stream.Stream;

import static dev.jiommu.iommufd.IoasModel.R;
import static dev.jiommu.iommufd.IoasModel.W;
import static dev.jiommu.iommufd.IoasModel.dropItemsOver;
import static dev.jiommu.iommufd.IoasModel.insert;
import static dev.jiommu.iommufd.IoasModel.predictAccessPin;
import static dev.jiommu.iommufd.IoasModel.predictMap;
import static dev.jiommu.iommufd.IoasModel.predictNewDomain;
import static dev.jiommu.iommufd.IoasModel.protName;
import static dev.jiommu.iommufd.IoasModel.slicesOf;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Random sequences of IOAS operations (map, map_file, copy, unmap, allow_iovas, mock-device
 * attach, detach and replace, access create, pin, unpin and close, IOAS destroy) run against the
 * context and against {@link IoasModel}, a small reference model written from the spec. Each
 * operation's outcome (IOVA, bytes, or errno) must be what the model predicts, and after every step:
 * each mock device reaches exactly what is mapped in its IOAS (sampled addresses, read and write),
 * MD_CHECK_MAP agrees for every area, and every page is pinned once per mapping (pages object)
 * that a domain or an access uses, 0 times otherwise. The fixture's teardown checks that closing
 * the context leaves nothing pinned.
 *
 * <p>Seeds: a few fixed ones, plus {@code -Djiommu.seed=N}. Steps: {@value #DEFAULT_STEPS} per
 * seed, {@value #LONG_STEPS} with {@code -Djiommu.longRandom=true}.
 */
class IoasRandomizedTest extends IommufdFixture {
    static final int DEFAULT_STEPS = 1_000;
    static final int LONG_STEPS = 10_000;

    /** The user memory the sequences map: the first 2 MiB of the scratch region (one huge page). */
    private static final long USER_VA = SCRATCH_VA;
    private static final long USER_BYTES = 2L << 20;
    private static final long FILE_BYTES = 256L << 10;
    /** Where fixed IOVAs mostly land: the bottom 8 MiB of the mock aperture, so areas collide. */
    private static final long WINDOW_START = MOCK_APERTURE_START;
    private static final long WINDOW_BYTES = 8L << 20;
    private static final int IOAS_COUNT = 3;
    private static final int MAX_DEVICES = 4;
    private static final int MAX_ACCESSES = 2;

    static Stream<Long> seeds() {
        LongStream fixed = LongStream.of(1, 42, 0x5eed_cafeL, 20_261_121L);
        Long extra = Long.getLong("jiommu.seed");
        return extra == null ? fixed.boxed() : Stream.concat(Stream.of(extra), fixed.boxed());
    }

    static int steps() {
        return Boolean.getBoolean("jiommu.longRandom") ? LONG_STEPS : DEFAULT_STEPS;
    }

    @ParameterizedTest(name = "seed={0}")
    @MethodSource("seeds")
    void randomOperationsMatchTheModel(long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        Run run = new Run();
        int steps = steps();
        for (int step = 0; step < steps; step++) {
            try {
                run.step(random);
                run.checkInvariants(random);
            } catch (AssertionError | RuntimeException e) {
                throw new AssertionError(String.format("seed=%d step=%d (of %d) failed: %s%nlast operations, oldest first:%n  %s",
                        seed, step, steps, e.getMessage(), String.join("\n  ", run.trace)), e);
            }
        }
        // Closing the context releases everything, whatever the sequence left behind.
        ctx().close();
        assertThat(user().pinnedPages()).as("seed=%d: user pages pinned after close", seed).isZero();
        assertThat(run.file.pinnedPages()).as("seed=%d: file pages pinned after close", seed).isZero();
        assertThat(ctx().accounting().pinnedPages()).as("seed=%d: pinned_vm after close", seed).isZero();
        StringBuilder outcomes = new StringBuilder();
        run.stats.forEach((k, v) -> outcomes.append(' ').append(k).append('=').append(v[0]));
        System.out.printf("IoasRandomizedTest seed=%d: %d steps,%s%n", seed, steps, outcomes);
    }

    // ---- one run ---------------------------------------------------------------------------------

    private final class Run {
        final MemoryFile file = memfdCreate(FILE_BYTES);
        final List<ModelIoas> ioases = new ArrayList<>();
        final Map<Integer, ModelIoas> deviceIoas = new LinkedHashMap<>();
        final List<ModelAccess> accesses = new ArrayList<>();
        final Deque<String> trace = new ArrayDeque<>();
        final Map<String, int[]> stats = new TreeMap<>();
        int nextPagesId;

        Run() {
            byte[] bytes = new byte[(int) FILE_BYTES];
            new SplittableRandom(7).nextBytes(bytes);
            file.write(0, bytes);
            for (int i = 0; i < IOAS_COUNT; i++) {
                ioases.add(new ModelIoas(ctx().ioasAlloc()));
            }
        }

        void note(String op) {
            trace.addLast(op);
            if (trace.size() > 24) {
                trace.removeFirst();
            }
        }

        /** Runs {@code call}, checks it against {@code expected}, counts the outcome; {@return the call's value, or 0 on the expected error} */
        long expect(String name, Outcome expected, Supplier<Long> call) {
            long value;
            try {
                value = call.get();
            } catch (ErrnoException e) {
                assertThat(expected.errno()).as("%s failed with %s (%s), the model expected success", name, e.errno(), e.getMessage())
                        .isNotNull();
                assertThat(e.errno()).as("%s errno (%s)", name, e.getMessage()).isEqualTo(expected.errno());
                stats.computeIfAbsent(name + " " + e.errno(), k -> new int[1])[0]++;
                trace.addLast(trace.removeLast() + " -> " + e.errno());
                return 0;
            }
            assertThat(expected.errno()).as("%s succeeded (0x%x), the model expected an error", name, value).isNull();
            stats.computeIfAbsent(name + " ok", k -> new int[1])[0]++;
            trace.addLast(trace.removeLast() + String.format(" -> 0x%x", value));
            return value;
        }

        void step(SplittableRandom r) {
            int k = r.nextInt(100);
            if (k < 18) {
                opMap(r, Source.USER);
            } else if (k < 27) {
                opMap(r, Source.FILE);
            } else if (k < 37) {
                opCopy(r);
            } else if (k < 56) {
                opUnmap(r);
            } else if (k < 59) {
                opAllowIovas(r);
            } else if (k < 67) {
                opAttach(r);
            } else if (k < 72) {
                opDetach(r);
            } else if (k < 76) {
                opReplace(r);
            } else if (k < 79) {
                opAccessCreate(r);
            } else if (k < 88) {
                opAccessPin(r);
            } else if (k < 93) {
                opAccessUnpin(r);
            } else if (k < 95) {
                opAccessClose(r);
            } else if (k < 97) {
                opDestroyIoas(r);
            } else {
                opUnmapAll(r);
            }
        }

        // ---- random values ------------------------------------------------------------------------

        ModelIoas anyIoas(SplittableRandom r) {
            return ioases.get(r.nextInt(ioases.size()));
        }

        long randomLength(SplittableRandom r, long room) {
            int k = r.nextInt(100);
            long length;
            if (k < 75) {
                length = MOCK_PAGE_SIZE * (1 + r.nextInt(16));
            } else if (k < 85) {
                length = PAGE_SIZE * (1 + r.nextInt(32));
            } else if (k < 93) {
                length = (1 + r.nextLong(room)) & -PAGE_SIZE;
            } else {
                length = 1 + r.nextInt(3 * (int) PAGE_SIZE);
            }
            return Math.max(1, Math.min(length, room));
        }

        long randomOffset(SplittableRandom r, long size) {
            long offset = r.nextLong(size);
            int k = r.nextInt(100);
            if (k < 65) {
                return offset & -MOCK_PAGE_SIZE;
            }
            if (k < 90) {
                return offset & -PAGE_SIZE;
            }
            return offset;
        }

        long randomIova(SplittableRandom r) {
            int k = r.nextInt(100);
            if (k < 85) {
                return WINDOW_START + (r.nextLong(WINDOW_BYTES) & -MOCK_PAGE_SIZE);
            }
            if (k < 92) {
                return WINDOW_START + r.nextLong(WINDOW_BYTES);
            }
            return r.nextLong(MOCK_APERTURE_START) & -MOCK_PAGE_SIZE;
        }

        int randomProt(SplittableRandom r) {
            int k = r.nextInt(100);
            return k < 65 ? R | W : k < 90 ? R : W;
        }

        // ---- map, map_file, copy -----------------------------------------------------------------

        void opMap(SplittableRandom r, Source source) {
            long size = source == Source.USER ? USER_BYTES : FILE_BYTES;
            long offset = randomOffset(r, size);
            boolean fixed = r.nextBoolean();
            map(anyIoas(r), source, offset, randomLength(r, size - offset), randomProt(r), fixed, fixed ? randomIova(r) : 0);
        }

        /** A map of whole CPU pages, which an IOAS with an access accepts. */
        void opMapPages(SplittableRandom r, ModelIoas m) {
            long offset = r.nextLong(USER_BYTES / PAGE_SIZE) * PAGE_SIZE;
            long length = PAGE_SIZE * (1 + r.nextLong(Math.min(16, (USER_BYTES - offset) / PAGE_SIZE)));
            boolean fixed = r.nextBoolean();
            map(m, Source.USER, offset, length, randomProt(r), fixed, fixed ? randomIova(r) & -PAGE_SIZE : 0);
        }

        void map(ModelIoas m, Source source, long offset, long length, int prot, boolean fixed, long iova) {
            long start = source == Source.USER ? USER_VA + offset : offset;
            Pages pages = new Pages(nextPagesId++, source, start, length, (prot & W) != 0);
            List<Slice> slices = List.of(new Slice(pages, 0, length, prot));
            String name = source == Source.USER ? "map" : "map_file";
            note(String.format("%s %s %s start=0x%x length=0x%x prot=%s iova=%s", name, m, source, start, length, protName(prot),
                    fixed ? String.format("0x%x", iova) : "auto"));
            Outcome expected = predictMap(m, slices, length, fixed, iova, start);
            int flags = prot | (fixed ? Iommufd.MAP_FIXED_IOVA : 0);
            long at = expect(name, expected, () -> source == Source.USER
                    ? ctx().ioasMap(m.id, flags, start, length, iova)
                    : ctx().ioasMapFile(m.id, flags, file, start, length, iova));
            if (!expected.failed()) {
                assertThat(at).as("%s IOVA", name).isEqualTo(expected.value());
                insert(m, slices, at);
            }
        }

        void opCopy(SplittableRandom r) {
            ModelIoas src = anyIoas(r);
            ModelIoas dst = anyIoas(r);
            long srcIova;
            long length;
            if (src.areas.isEmpty() || r.nextInt(10) == 0) {
                srcIova = randomIova(r);
                length = randomLength(r, 64 * PAGE_SIZE);
            } else {
                List<Area> all = new ArrayList<>(src.areas.values());
                int i = r.nextInt(all.size());
                Area first = all.get(i);
                Area lastArea = r.nextInt(4) == 0 ? all.get(Math.min(all.size() - 1, i + r.nextInt(3))) : first;
                srcIova = first.iova();
                long end = lastArea.last() + 1;
                if (r.nextInt(3) == 0 && first.length() > MOCK_PAGE_SIZE) {
                    srcIova += MOCK_PAGE_SIZE * r.nextLong(first.length() / MOCK_PAGE_SIZE);
                }
                if (r.nextInt(3) == 0 && end - srcIova > MOCK_PAGE_SIZE) {
                    end -= MOCK_PAGE_SIZE * r.nextLong((end - srcIova) / MOCK_PAGE_SIZE);
                }
                length = end - srcIova;
            }
            int prot = randomProt(r);
            boolean fixed = r.nextBoolean();
            long dstIova = fixed ? randomIova(r) : 0;
            note(String.format("copy %s [0x%x, +0x%x) -> %s iova=%s prot=%s", src, srcIova, length, dst,
                    fixed ? String.format("0x%x", dstIova) : "auto", protName(prot)));
            Outcome expected;
            List<Slice> slices = slicesOf(src, srcIova, length, prot);
            if (slices == null) {
                expected = Outcome.fail(Errno.ENOENT);
            } else {
                Slice s0 = slices.getFirst();
                expected = predictMap(dst, slices, length, fixed, dstIova, s0.pages().start() + s0.pagesOffset());
            }
            int flags = prot | (fixed ? Iommufd.MAP_FIXED_IOVA : 0);
            long copyIova = srcIova;
            long copyLength = length;
            long at = expect("copy", expected, () -> ctx().ioasCopy(dst.id, flags, src.id, copyIova, copyLength, dstIova));
            if (!expected.failed()) {
                assertThat(at).as("copy IOVA").isEqualTo(expected.value());
                insert(dst, slices, at);
            }
        }

        // ---- unmap -------------------------------------------------------------------------------

        void opUnmap(SplittableRandom r) {
            ModelIoas m = anyIoas(r);
            long iova;
            long length;
            int k = r.nextInt(100);
            List<Area> all = new ArrayList<>(m.areas.values());
            if (all.isEmpty() || k < 15) {
                iova = randomIova(r);
                length = randomLength(r, 64 * PAGE_SIZE);
            } else {
                Area a = all.get(r.nextInt(all.size()));
                iova = a.iova();
                length = a.length();
                if (k < 40) {
                    Area b = all.get(Math.min(all.size() - 1, all.indexOf(a) + r.nextInt(4)));
                    length = b.last() + 1 - iova;
                    if (r.nextBoolean()) {
                        iova -= Math.min(iova, MOCK_PAGE_SIZE * r.nextInt(3));
                        length = b.last() + 1 - iova + MOCK_PAGE_SIZE * r.nextInt(3);
                    }
                } else if (k < 55) {
                    iova += MOCK_PAGE_SIZE;
                }
            }
            long unmapIova = iova;
            long unmapLength = length;
            note(String.format("unmap %s [0x%x, +0x%x)", m, unmapIova, unmapLength));
            // Areas go one at a time in ascending order; the first one sticking out stops the call (ENOENT).
            long last = iova + length - 1;
            long removed = 0;
            Errno errno = null;
            List<Area> gone = new ArrayList<>();
            for (Area a = m.firstIntersecting(iova, last); a != null; a = m.firstIntersecting(iova, last)) {
                if (a.iova() < iova || a.last() > last) {
                    errno = Errno.ENOENT;
                    break;
                }
                m.areas.remove(a.iova());
                gone.add(a);
                removed += a.length();
            }
            if (errno == null && removed == 0) {
                errno = Errno.ENOENT;
            }
            Outcome expected = errno == null ? Outcome.ok(removed) : Outcome.fail(errno);
            long got = expect("unmap", expected, () -> ctx().ioasUnmap(m.id, unmapIova, unmapLength));
            if (!expected.failed()) {
                assertThat(got).as("bytes unmapped").isEqualTo(removed);
            }
            for (Area a : gone) {
                dropItemsOver(m, a);
            }
        }

        void opUnmapAll(SplittableRandom r) {
            ModelIoas m = anyIoas(r);
            note("unmap all " + m);
            long total = 0;
            for (Area a : m.areas.values()) {
                total += a.length();
            }
            long got = expect("unmap_all", Outcome.ok(total), () -> ctx().ioasUnmap(m.id, 0, Iommufd.UNMAP_ALL_LENGTH));
            assertThat(got).isEqualTo(total);
            for (Area a : List.copyOf(m.areas.values())) {
                m.areas.remove(a.iova());
                dropItemsOver(m, a);
            }
        }

        // ---- allowed ranges ------------------------------------------------------------------------

        void opAllowIovas(SplittableRandom r) {
            ModelIoas m = anyIoas(r);
            List<IovaRange> ranges = new ArrayList<>();
            int n = r.nextInt(3);
            for (int i = 0; i < n; i++) {
                long start = r.nextInt(10) == 0 ? r.nextLong(MOCK_APERTURE_START) : WINDOW_START + (r.nextLong(WINDOW_BYTES) & -PAGE_SIZE);
                long len = PAGE_SIZE * (1 + r.nextInt(512));
                ranges.add(new IovaRange(start, start + len - 1));
            }
            note("allow_iovas " + m + " " + ranges);
            Errno errno = null;
            for (int i = 0; i < ranges.size() && errno == null; i++) {
                for (int j = 0; j < i; j++) {
                    if (ranges.get(j).intersects(ranges.get(i).start(), ranges.get(i).last())) {
                        errno = Errno.EINVAL;
                    }
                }
            }
            if (errno == null) {
                for (IovaRange a : ranges) {
                    for (IovaRange res : m.reserved()) {
                        if (res.intersects(a.start(), a.last())) {
                            errno = Errno.EADDRINUSE;
                        }
                    }
                }
            }
            Outcome expected = errno == null ? Outcome.ok(0) : Outcome.fail(errno);
            expect("allow_iovas", expected, () -> {
                ctx().ioasAllowIovas(m.id, ranges);
                return 0L;
            });
            if (errno == null) {
                List<IovaRange> sorted = new ArrayList<>(ranges);
                sorted.sort((x, y) -> Long.compareUnsigned(x.start(), y.start()));
                m.allowed = List.copyOf(sorted);
            }
        }

        // ---- devices ----------------------------------------------------------------------------------

        void opAttach(SplittableRandom r) {
            if (deviceIoas.size() >= MAX_DEVICES) {
                opDetach(r);
                return;
            }
            ModelIoas m = anyIoas(r);
            note("mock_domain " + m);
            Errno errno = m.hasDomain() ? null : predictNewDomain(m);
            IommufdSelftest.MockDomain[] made = new IommufdSelftest.MockDomain[1];
            expect("mock_domain", errno == null ? Outcome.ok(0) : Outcome.fail(errno), () -> {
                made[0] = test.mockDomain(m.id);
                return (long) made[0].hwptId();
            });
            if (errno == null) {
                joined(m, made[0].stdevId(), made[0].hwptId());
            }
        }

        void joined(ModelIoas m, int stdevId, int hwptId) {
            if (m.hasDomain()) {
                assertThat(hwptId).as("a device joining %s reuses its auto HWPT", m).isEqualTo(m.hwptId);
            } else {
                m.hwptId = hwptId;
            }
            m.devices.add(stdevId);
            deviceIoas.put(stdevId, m);
        }

        void left(int stdevId) {
            ModelIoas m = deviceIoas.remove(stdevId);
            m.devices.remove(Integer.valueOf(stdevId));
            if (!m.hasDomain()) {
                // The auto HWPT went with its last device.
                assertErrno(Errno.ENOENT, () -> ctx().destroy(m.hwptId));
            }
        }

        void opDetach(SplittableRandom r) {
            if (deviceIoas.isEmpty()) {
                opAttach(r);
                return;
            }
            List<Integer> devices = new ArrayList<>(deviceIoas.keySet());
            int stdevId = devices.get(r.nextInt(devices.size()));
            note("destroy selftest #" + stdevId + " on " + deviceIoas.get(stdevId));
            expect("detach", Outcome.ok(0), () -> {
                ctx().destroy(stdevId);
                return 0L;
            });
            left(stdevId);
        }

        void opReplace(SplittableRandom r) {
            if (deviceIoas.isEmpty()) {
                opAttach(r);
                return;
            }
            List<Integer> devices = new ArrayList<>(deviceIoas.keySet());
            int stdevId = devices.get(r.nextInt(devices.size()));
            ModelIoas from = deviceIoas.get(stdevId);
            ModelIoas to = anyIoas(r);
            note("mock_domain_replace #" + stdevId + " " + from + " -> " + to);
            Errno errno = to == from || to.hasDomain() ? null : predictNewDomain(to);
            long hwpt = expect("replace", errno == null ? Outcome.ok(0) : Outcome.fail(errno),
                    () -> (long) test.mockDomainReplace(stdevId, to.id));
            if (errno == null && to != from) {
                left(stdevId);
                joined(to, stdevId, (int) hwpt);
            } else if (errno == null) {
                assertThat((int) hwpt).isEqualTo(from.hwptId);
            }
        }

        // ---- accesses -----------------------------------------------------------------------------------

        void opAccessCreate(SplittableRandom r) {
            if (accesses.size() >= MAX_ACCESSES) {
                opAccessClose(r);
                return;
            }
            ModelIoas m = anyIoas(r);
            if (r.nextBoolean()) {
                // Half the time, an IOAS whose areas are all whole pages, so that the access can join it.
                for (ModelIoas candidate : ioases) {
                    if (candidate.areas.values().stream().allMatch(a -> ((a.iova() | a.length() | a.pageOffset()) & (PAGE_SIZE - 1)) == 0)) {
                        m = candidate;
                        break;
                    }
                }
            }
            ModelIoas target = m;
            note("create_access " + m);
            Errno errno = null;
            long align = Math.max(m.alignment(), PAGE_SIZE);
            for (Area a : m.areas.values()) {
                if (((a.iova() | a.length() | a.pageOffset()) & (align - 1)) != 0) {
                    errno = Errno.EADDRINUSE;
                }
            }
            long fd = expect("create_access", errno == null ? Outcome.ok(0) : Outcome.fail(errno),
                    () -> (long) test.createAccess(target.id, IommufdSelftest.ACCESS_CREATE_NEEDS_PIN_PAGES));
            if (errno == null) {
                ModelAccess access = new ModelAccess((int) fd, target);
                accesses.add(access);
                target.accesses.add(access);
            }
        }

        void opAccessPin(SplittableRandom r) {
            if (accesses.isEmpty()) {
                opAccessCreate(r);
                return;
            }
            ModelAccess access = accesses.get(r.nextInt(accesses.size()));
            ModelIoas m = access.ioas;
            if (m.areas.isEmpty() && r.nextBoolean()) {
                opMapPages(r, m);
                return;
            }
            long iova;
            long length;
            List<Area> all = new ArrayList<>(m.areas.values());
            if (all.isEmpty() || r.nextInt(8) == 0) {
                iova = randomIova(r);
                length = randomLength(r, 16 * PAGE_SIZE);
            } else {
                // Whole pages of one area, or from inside one area to inside the next (a hole gives ENOENT).
                Area a = all.get(r.nextInt(all.size()));
                Area b = all.get(Math.min(all.size() - 1, all.indexOf(a) + (r.nextInt(3) == 0 ? 1 : 0)));
                iova = a.iova() + PAGE_SIZE * r.nextLong(Math.max(1, a.length() / PAGE_SIZE));
                long end = b.last() + 1 - PAGE_SIZE * r.nextLong(Math.max(1, b.length() / PAGE_SIZE));
                if (end <= iova) {
                    end = Math.min(b.last() + 1, iova + PAGE_SIZE);
                }
                length = end - iova;
            }
            boolean write = r.nextInt(3) == 0;
            long pinIova = iova;
            long pinLength = length;
            note(String.format("access_pages fd=%d %s [0x%x, +0x%x)%s", access.fd, m, pinIova, pinLength, write ? " write" : ""));
            Errno errno = predictAccessPin(m, iova, length, write);
            long item = expect("access_pages", errno == null ? Outcome.ok(0) : Outcome.fail(errno),
                    () -> (long) test.accessPages(access.fd, write ? IommufdSelftest.ACCESS_PAGES_WRITE : 0, pinIova, pinLength, 0));
            if (errno == null) {
                assertThat(access.items).doesNotContainKey((int) item);
                access.items.put((int) item, new long[] {iova, length});
            }
        }

        void opAccessUnpin(SplittableRandom r) {
            if (accesses.isEmpty()) {
                opAccessCreate(r);
                return;
            }
            ModelAccess access = accesses.get(r.nextInt(accesses.size()));
            boolean stale = access.items.isEmpty() || (!access.dropped.isEmpty() && r.nextInt(4) == 0);
            int item;
            if (stale) {
                item = access.dropped.isEmpty() ? 1_000_000 : access.dropped.get(r.nextInt(access.dropped.size()));
            } else {
                List<Integer> ids = new ArrayList<>(access.items.keySet());
                item = ids.get(r.nextInt(ids.size()));
            }
            note(String.format("destroy_access_pages fd=%d item=%d%s", access.fd, item, stale ? " (gone)" : ""));
            expect("destroy_access_pages", stale ? Outcome.fail(Errno.ENOENT) : Outcome.ok(0), () -> {
                test.destroyAccessPages(access.fd, item);
                return 0L;
            });
            access.items.remove(item);
        }

        void opAccessClose(SplittableRandom r) {
            if (accesses.isEmpty()) {
                opAccessCreate(r);
                return;
            }
            ModelAccess access = accesses.get(r.nextInt(accesses.size()));
            note("close access fd=" + access.fd + " on " + access.ioas);
            expect("close_access", Outcome.ok(0), () -> {
                test.closeAccess(access.fd);
                return 0L;
            });
            accesses.remove(access);
            access.ioas.accesses.remove(access);
        }

        // ---- IOAS destroy --------------------------------------------------------------------------------

        void opDestroyIoas(SplittableRandom r) {
            ModelIoas m = anyIoas(r);
            note("destroy " + m);
            boolean busy = m.hasDomain() || !m.accesses.isEmpty();
            expect("destroy_ioas", busy ? Outcome.fail(Errno.EBUSY) : Outcome.ok(0), () -> {
                ctx().destroy(m.id);
                return 0L;
            });
            if (!busy) {
                m.areas.clear();
                m.allowed = List.of();
                m.id = ctx().ioasAlloc();
            }
        }

        // ---- invariants ----------------------------------------------------------------------------------

        void checkInvariants(SplittableRandom r) {
            for (ModelIoas m : ioases) {
                if (!m.hasDomain()) {
                    continue;
                }
                for (Area a : m.areas.values()) {
                    if (a.pages().source() == Source.USER) {
                        test.mdCheckMap(m.hwptId, a.iova(), a.length(), a.address(a.iova()));
                    } else {
                        checkMockIovaFile(m.hwptId, file, a.address(a.iova()), a.iova(), a.length());
                    }
                }
                for (int stdevId : m.devices) {
                    checkDma(r, m, mockDevice(stdevId));
                }
            }
            checkPins();
        }

        /** The device reaches every mapped byte it samples, with the area's permissions, and nothing else. */
        void checkDma(SplittableRandom r, ModelIoas m, MockDevice device) {
            for (Area a : m.areas.values()) {
                for (long at : new long[] {a.iova(), a.last(), a.iova() + r.nextLong(a.length())}) {
                    long pa = physical(a, at);
                    assertThat(device.translate(at, Access.READ)).as("%s DMA read at 0x%x (%s in %s)", device, at, a, m)
                            .isEqualTo((a.prot() & R) != 0 ? pa : -1);
                    assertThat(device.translate(at, Access.WRITE)).as("%s DMA write at 0x%x (%s in %s)", device, at, a, m)
                            .isEqualTo((a.prot() & W) != 0 ? pa : -1);
                }
                for (long at : new long[] {a.iova() - 1, a.last() + 1}) {
                    if (m.areaAt(at) == null) {
                        assertThat(device.canRead(at)).as("%s DMA just outside %s in %s at 0x%x", device, a, m, at).isFalse();
                    }
                }
            }
            for (int i = 0; i < 8; i++) {
                long at = r.nextLong(WINDOW_START + WINDOW_BYTES + (1L << 20));
                if (m.areaAt(at) == null) {
                    assertThat(device.canRead(at)).as("%s DMA to unmapped 0x%x in %s", device, at, m).isFalse();
                }
            }
        }

        long physical(Area a, long at) {
            long address = a.address(at);
            return a.pages().source() == Source.USER ? user().physicalAddress(address) : file.physicalAddress(address);
        }

        /** Each page is pinned once for every pages object a domain or an access uses it through. */
        void checkPins() {
            Map<Integer, BitSet> used = new HashMap<>();
            Map<Integer, Source> sources = new HashMap<>();
            for (ModelIoas m : ioases) {
                if (m.hasDomain()) {
                    for (Area a : m.areas.values()) {
                        markPages(used, sources, a, a.iova(), a.last());
                    }
                }
                for (ModelAccess access : m.accesses) {
                    for (long[] item : access.items.values()) {
                        long last = item[0] + item[1] - 1;
                        for (Area a = m.firstIntersecting(item[0], last); a != null; a = m.firstIntersecting(a.last() + 1, last)) {
                            markPages(used, sources, a, Math.max(a.iova(), item[0]), Math.min(a.last(), last));
                            if (a.last() >= last) {
                                break;
                            }
                        }
                    }
                }
            }
            int[] userPins = new int[(int) (USER_BYTES / PAGE_SIZE)];
            int[] filePins = new int[(int) (FILE_BYTES / PAGE_SIZE)];
            long total = 0;
            for (Map.Entry<Integer, BitSet> e : used.entrySet()) {
                int[] pins = sources.get(e.getKey()) == Source.USER ? userPins : filePins;
                for (int p = e.getValue().nextSetBit(0); p >= 0; p = e.getValue().nextSetBit(p + 1)) {
                    pins[p]++;
                    total++;
                }
            }
            int runStart = 0;
            for (int p = 0; p <= userPins.length; p++) {
                if (p == userPins.length || userPins[p] != userPins[runStart]) {
                    // MD_CHECK_REFS over each run of equal counts, and the page counts themselves
                    test.mdCheckRefs(USER_VA + runStart * PAGE_SIZE, (p - runStart) * PAGE_SIZE, userPins[runStart]);
                    runStart = p;
                }
                if (p < userPins.length) {
                    assertThat(user().pinCount(USER_VA + p * PAGE_SIZE)).as("pins of user page %d", p).isEqualTo(userPins[p]);
                }
            }
            for (int p = 0; p < filePins.length; p++) {
                assertThat(file.pinCount(p * PAGE_SIZE)).as("pins of file page %d", p).isEqualTo(filePins[p]);
            }
            assertThat(ctx().accounting().pinnedPages()).as("pinned_vm").isEqualTo(total);
        }

        void markPages(Map<Integer, BitSet> used, Map<Integer, Source> sources, Area a, long from, long to) {
            long base = a.pages().source() == Source.USER ? USER_VA : 0;
            int first = (int) ((a.address(from) - base) / PAGE_SIZE);
            int last = (int) ((a.address(to) - base) / PAGE_SIZE);
            used.computeIfAbsent(a.pages().id(), k -> new BitSet()).set(first, last + 1);
            sources.put(a.pages().id(), a.pages().source());
        }
    }
}
