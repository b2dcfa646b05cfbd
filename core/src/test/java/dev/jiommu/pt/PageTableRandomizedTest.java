package dev.jiommu.pt;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.pt.FormatConfigs.FormatConfig;
import dev.jiommu.pt.PageTableAssertions.Leaf;
import dev.jiommu.pt.PageTableAssertions.Snapshot;
import dev.jiommu.pt.ReferenceMappings.RefLeaf;
import dev.jiommu.pt.Seeds.Seed;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static dev.jiommu.pt.PageTableAssertions.alignUp;
import static dev.jiommu.pt.PageTableAssertions.assertWalkerAgrees;
import static dev.jiommu.pt.PageTableAssertions.clearLow;
import static dev.jiommu.pt.PageTableAssertions.leaves;
import static dev.jiommu.pt.PageTableAssertions.lowBits;
import static dev.jiommu.pt.PageTableAssertions.slotAddress;
import static dev.jiommu.pt.PageTableAssertions.snapshot;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

/**
 * Random map / unmap / DMA / read-and-clear-dirty sequences on every format, each step checked
 * against {@link ReferenceMappings}: the same leaves (address, size, permission, dirty state of
 * every replica), the same unmap byte counts, the same dirty bitmaps; the walker and the software
 * lookup agree with the model on every leaf's edges and on random addresses; a failed map changes
 * nothing; and allocation failures at every point of a map leave nothing behind.
 *
 * <p>Addresses come from windows at the bottom and top of the input range (for sign-extended
 * formats, of both halves), so the top-table corners get traffic. Every failure message starts
 * with the format, the seed and the step; {@code -Djiommu.seed=0x…} replays one.
 */
class PageTableRandomizedTest {
    private static final int STEPS = 200;
    private static final int ENOMEM_STEPS = 80;
    /** Random addresses probed after each step, besides every leaf's edges. */
    private static final int PROBES = 24;
    /** Past this many leaves the run only unmaps, DMAs and reads dirty state, so steps stay cheap. */
    private static final int MAX_LEAVES = 1500;
    /** Leaves whose edges are probed after each step; beyond it a random sample of this many. */
    private static final int PROBED_LEAVES = 128;

    static Stream<Arguments> cases() {
        return FormatConfigs.all().flatMap(c -> Seeds.seeds().map(s -> Arguments.of(c, s)));
    }

    @ParameterizedTest(name = "{0} seed={1}")
    @MethodSource("cases")
    void randomOperationsMatchTheReference(FormatConfig config, Seed seed) {
        try (PageTableFixture fixture = new PageTableFixture(config.format())) {
            Run run = new Run(fixture, seed, 1L << Math.min(32, config.format().inputBits() - 2));
            for (int step = 0; step < STEPS; step++) {
                run.step = step;
                run.inContext(() -> {
                    int op = run.random.nextInt(100);
                    if ((op < 40 && run.model.size() < MAX_LEAVES) || run.model.size() < 4) {
                        run.map(run.randomMapRange());
                    } else if (op < 65) {
                        run.unmap();
                    } else if (op < 80) {
                        run.dmaAccess();
                    } else if (op < 92) {
                        run.readAndClearDirty();
                    } else {
                        run.invalidCall();
                    }
                    run.verify();
                });
            }
            run.inContext(run::unmapEverything);
        }
    }

    /**
     * The kernel's fail-nth idea on map: in a memory with no free frame, each map is tried with
     * 0, 1, 2, … frames released until it succeeds; every ENOMEM must leave leaves, table pages and
     * the memory's frame count exactly as they were.
     */
    @ParameterizedTest(name = "{0} seed={1}")
    @MethodSource("cases")
    void failedAllocationsLeaveNothingBehind(FormatConfig config, Seed seed) {
        PhysicalMemory memory = PhysicalMemory.create(2L << 20);
        try (PageTableFixture fixture = new PageTableFixture(config.format(), memory, config.format().pageSizes())) {
            Deque<Long> ballast = new ArrayDeque<>();
            grabAll(memory, ballast);
            long full = memory.allocatedFrames();
            ErrnoException noRoot = PageTableAssertions.assertErrno(Errno.ENOMEM, () -> new PageTable(config.format(), memory));
            assertThat(memory.allocatedFrames()).as("a table that could not get its root: %s", noRoot.getMessage()).isEqualTo(full);

            Run run = new Run(fixture, seed, 1L << Math.min(32, config.format().inputBits() - 2));
            for (int step = 0; step < ENOMEM_STEPS; step++) {
                run.step = step;
                run.inContext(() -> enomemStep(run, memory, ballast));
            }
            assertThat(run.enomems).as("%s: the test never made a map run out of memory", run.context()).isPositive();
            assertThat(run.enomemsAfterProgress).as("%s: no map ran out of memory after allocating a table", run.context()).isPositive();
            while (!ballast.isEmpty()) {
                memory.free(ballast.pop(), PhysicalMemory.FRAME_BYTES);
            }
            run.inContext(run::unmapEverything);
        }
    }

    /** One step of the fail-nth run: a map tried with ever more free frames, or an unmap. */
    private static void enomemStep(Run run, PhysicalMemory memory, Deque<Long> ballast) {
        if (run.random.nextInt(100) < 70 || run.model.size() < 4) {
            long[] range = run.randomMapRange();
            range[2] = Math.min(range[2], 16L * (1L << (run.format.itemShift(0) + run.format.indexBits(0))));
            range[2] = alignUp(range[2], run.granule);
            Snapshot before = snapshot(run.table, memory); // every failed attempt must come back to exactly this
            for (int released = 0; ; released++) {
                int freed = release(memory, ballast, released);
                Snapshot unchanged = new Snapshot(before.leaves(), before.tablePages(), before.allocatedFrames() - freed);
                boolean expected = run.model.map(range[0], range[1], range[2], (int) range[3]);
                try {
                    run.mapExpecting(range, expected, unchanged);
                    grabAll(memory, ballast);
                    break;
                } catch (ErrnoException e) {
                    if (e.errno() != Errno.ENOMEM) {
                        throw e;
                    }
                    run.enomems++;
                    if (freed > 0) {
                        run.enomemsAfterProgress++;
                    }
                    if (expected) {
                        run.model.unmap(range[0], range[0] + range[2] - 1); // the model mapped it; take it back
                    }
                    assertThat(snapshot(run.table, memory)).as("%s: ENOMEM with %d frames free left state behind: %s",
                            run.context(), freed, e.getMessage()).isEqualTo(unchanged);
                    grabAll(memory, ballast);
                    if (ballast.isEmpty() || released >= ballast.size()) {
                        break; // genuinely out of memory; the failure above changed nothing, which is the point
                    }
                }
            }
        } else {
            run.unmap();
            grabAll(memory, ballast);
        }
        run.verify();
    }

    private static void grabAll(PhysicalMemory memory, Deque<Long> ballast) {
        while (true) {
            try {
                ballast.push(memory.allocateFrame());
            } catch (ErrnoException e) {
                assertThat(e.errno()).isEqualTo(Errno.ENOMEM);
                return;
            }
        }
    }

    /** Frees up to {@code frames} ballast frames; {@return how many} */
    private static int release(PhysicalMemory memory, Deque<Long> ballast, int frames) {
        int freed = 0;
        for (; freed < frames && !ballast.isEmpty(); freed++) {
            memory.free(ballast.pop(), PhysicalMemory.FRAME_BYTES);
        }
        return freed;
    }

    /** One randomized run: the table under test, the model, and the operations on both. */
    private static final class Run {
        final PageTableFixture fixture;
        final PageTable table;
        final PageTableFormat format;
        final PhysicalMemory memory;
        final Seed seed;
        final SplittableRandom random;
        final ReferenceMappings model;
        final long granule;
        final long windowBytes;
        final long[] windows;
        final WalkResult result = new WalkResult();
        int step;
        int enomems;
        int enomemsAfterProgress;

        Run(PageTableFixture fixture, Seed seed, long windowBytes) {
            this.fixture = fixture;
            this.table = fixture.table;
            this.format = table.format();
            this.memory = fixture.memory;
            this.seed = seed;
            this.random = new SplittableRandom(seed.value());
            this.model = new ReferenceMappings(format, table.pageSizes());
            this.granule = Long.lowestOneBit(table.pageSizes());
            this.windowBytes = windowBytes;
            int bits = format.inputBits();
            if (format.signExtended()) {
                long half = 1L << (bits - 1);
                windows = new long[] {0, half - windowBytes, -half, -windowBytes};
            } else {
                windows = new long[] {0, lowBits(-1L, bits) - windowBytes + 1};
            }
        }

        String context() {
            return format.name() + " seed=" + seed + " step=" + step;
        }

        /** Runs {@code body}, prefixing any assertion failure with the format, seed and step. */
        void inContext(Runnable body) {
            try {
                body.run();
            } catch (AssertionError e) {
                String message = String.valueOf(e.getMessage());
                throw message.contains(context()) ? e : new AssertionError(context() + ": " + message, e);
            }
        }

        long window() {
            return windows[random.nextInt(windows.length)];
        }

        /** {@return {iova, pa, length, prot}}: a few pages of one random size, sometimes misaligned */
        long[] randomMapRange() {
            long sizes = table.pageSizes() & (windowBytes / 16 * 2 - 1);
            int shift = nthBit(sizes, random.nextInt(Long.bitCount(sizes)));
            long page = 1L << shift;
            long length = page * (1 + random.nextInt(3));
            if (random.nextInt(3) == 0) {
                long delta = granule * (1 + random.nextInt(7));
                length = random.nextBoolean() || length <= delta ? length + delta : length - delta;
            }
            long offset = clearLow(random.nextLong(windowBytes - length), shift);
            long misalign = random.nextInt(4) == 0 ? granule * random.nextInt(1, 8) : 0;
            offset = Math.min(offset + misalign, clearLow(windowBytes - length, Long.numberOfTrailingZeros(granule)));
            long iova = window() + offset;
            long outputSpan = lowBits(-1L, format.outputBits()) + 1;
            long pa;
            if (random.nextInt(3) < 2) {
                pa = clearLow(random.nextLong(outputSpan - length - page), shift) + lowBits(iova, shift);
            } else {
                // A pa aligned to the granule only makes granule-sized leaves: keep the range short.
                length = Math.min(length, granule * random.nextInt(1, 64));
                pa = clearLow(random.nextLong(outputSpan - length), Long.numberOfTrailingZeros(granule));
            }
            int prot = random.nextInt(3) == 0 ? Prot.READ : Prot.READ_WRITE;
            return new long[] {iova, pa, length, prot};
        }

        void map(long[] range) {
            Snapshot before = snapshot(table, memory);
            boolean expected = model.map(range[0], range[1], range[2], (int) range[3]);
            mapExpecting(range, expected, before);
        }

        /** Maps on the table; it must succeed exactly when the model did, and otherwise say EEXIST and change nothing. */
        void mapExpecting(long[] range, boolean expected, Snapshot before) {
            String what = String.format("%s: map iova=0x%x pa=0x%x length=0x%x %s", context(), range[0], range[1], range[2],
                    Prot.describe((int) range[3]));
            try {
                table.map(range[0], range[1], range[2], (int) range[3]);
                if (!expected) {
                    fail("%s succeeded over %s", what, model.intersecting(range[0], range[0] + range[2] - 1));
                }
            } catch (ErrnoException e) {
                if (e.errno() == Errno.ENOMEM) {
                    throw e;
                }
                assertThat(expected).as("%s failed: %s", what, e.getMessage()).isFalse();
                assertThat(e.errno()).as(what).isEqualTo(Errno.EEXIST);
                assertThat(snapshot(table, memory)).as("%s: failed map changed the table", what).isEqualTo(before);
            }
        }

        void unmap() {
            long iova;
            long length;
            List<RefLeaf> leaves = model.leaves();
            if (!leaves.isEmpty() && random.nextBoolean()) {
                RefLeaf leaf = leaves.get(random.nextInt(leaves.size()));
                iova = leaf.iova();
                long size = 1L << leaf.sizeShift();
                switch (random.nextInt(4)) {
                    case 0 -> length = size;
                    case 1 -> length = size + granule * random.nextInt(1, 1024);
                    case 2 -> length = granule;
                    default -> {
                        // Start inside the page: unmap must stop at once.
                        iova += granule * random.nextLong(1, Math.max(2, size / granule));
                        iova = Math.min(iova, leaf.last() - granule + 1);
                        length = granule * random.nextInt(1, 64);
                    }
                }
            } else {
                iova = window() + clearLow(random.nextLong(windowBytes / 2), Long.numberOfTrailingZeros(granule));
                length = alignUp(random.nextLong(1, windowBytes / 4), granule);
            }
            long last = iova + length - 1;
            if (!format.inputValid(last) || Long.compareUnsigned(last, iova) < 0 || (format.signExtended() && (iova < 0) != (last < 0))) {
                length = granule;
                last = iova + length - 1;
            }
            long expected = model.unmap(iova, last);
            assertThat(table.unmap(iova, length))
                    .as("%s: unmap iova=0x%x length=0x%x returned", context(), iova, length)
                    .isEqualTo(expected);
        }

        /** A DMA read or write at a random mapped address, with accessed/dirty updates on, as hardware does. */
        void dmaAccess() {
            List<RefLeaf> leaves = model.leaves();
            RefLeaf leaf = leaves.get(random.nextInt(leaves.size()));
            long iova = leaf.iova() + clearLow(random.nextLong(1L << leaf.sizeShift()), Long.numberOfTrailingZeros(granule));
            boolean write = random.nextBoolean();
            WalkStatus status = fixture.walker.walk(format, table.rootAddress(), iova, write ? Access.WRITE : Access.READ,
                    PageTableWalker.UPDATE_ACCESSED | PageTableWalker.UPDATE_DIRTY, result);
            boolean allowed = !write || (leaf.prot() & Prot.WRITE) != 0;
            assertThat(status).as("%s: DMA %s at 0x%x in %s: %s", context(), write ? "write" : "read", iova, leaf, result)
                    .isEqualTo(allowed ? WalkStatus.OK : WalkStatus.PERMISSION);
            if (allowed) {
                assertThat(result.outputAddress()).as(context()).isEqualTo(leaf.pa() + (iova - leaf.iova()));
                assertThat(result.leafShift()).as(context()).isEqualTo(leaf.sizeShift());
                if (write) {
                    model.markDirty(iova);
                }
            }
        }

        void readAndClearDirty() {
            int pageShift = Long.numberOfTrailingZeros(granule);
            long iova = window() + clearLow(random.nextLong(windowBytes / 2), pageShift);
            long length = alignUp(random.nextLong(1, Math.min(windowBytes / 2, granule << 16)), granule);
            boolean noClear = random.nextInt(4) == 0;
            long[] expected = model.readAndClearDirty(iova, iova + length - 1, pageShift, noClear);
            DirtyBitmap bitmap = new DirtyBitmap(iova, pageShift, length >>> pageShift);
            table.readAndClearDirty(iova, length, bitmap, noClear);
            assertThat(bitmap.words())
                    .as("%s: dirty bitmap of [0x%x, +0x%x) noClear=%s", context(), iova, length, noClear)
                    .isEqualTo(expected);
        }

        /** A map the table must refuse before touching anything. */
        void invalidCall() {
            Snapshot before = snapshot(table, memory);
            long[] range = randomMapRange();
            int which = random.nextInt(4);
            Errno expected = switch (which) {
                case 0 -> Errno.EINVAL; // no read, no write
                case 1 -> Errno.EINVAL; // zero length
                case 2 -> granule > 1 ? Errno.EINVAL : Errno.ERANGE; // pa below the granule
                default -> format.inputBits() < 64 ? Errno.ERANGE : Errno.EINVAL;
            };
            long iova = range[0];
            long pa = range[1];
            long length = range[2];
            int prot = (int) range[3];
            switch (which) {
                case 0 -> prot = Prot.CACHE;
                case 1 -> length = 0;
                case 2 -> pa += granule / 2;
                default -> {
                    if (format.inputBits() < 64) {
                        iova = format.signExtended() ? 1L << (format.inputBits() - 1) : 1L << format.inputBits();
                    } else {
                        iova += granule / 2;
                    }
                }
            }
            long fIova = iova;
            long fPa = pa;
            long fLength = length;
            int fProt = prot;
            ErrnoException e = PageTableAssertions.assertErrno(expected, () -> table.map(fIova, fPa, fLength, fProt));
            assertThat(snapshot(table, memory)).as("%s: refused map changed the table: %s", context(), e.getMessage()).isEqualTo(before);
        }

        /** The table matches the model leaf for leaf, and walker, lookup and model agree on every leaf's edges and random addresses. */
        void verify() {
            List<RefLeaf> expected = model.leaves();
            List<Leaf> actual = leaves(table);
            List<RefLeaf> seen = new ArrayList<>(actual.size());
            for (Leaf leaf : actual) {
                assertThat(leaf.level()).as("%s: %s level", context(), leaf).isEqualTo(format.levelOfPageShift(leaf.sizeShift()));
                int prot = format.leafProt(leaf.entry(), leaf.level()) & Prot.READ_WRITE;
                seen.add(new RefLeaf(leaf.iova(), leaf.pa(), leaf.sizeShift(), prot, dirtyAnySlot(leaf)));
            }
            if (!seen.equals(expected)) {
                assertThat(seen).as("%s: leaves (table) vs model", context()).containsExactlyElementsOf(expected);
            }
            assertThat(memory.allocatedFrames() - fixture.startFrames).as(context()).isGreaterThanOrEqualTo(table.tablePages());

            List<RefLeaf> probed = expected;
            if (expected.size() > PROBED_LEAVES) {
                probed = new ArrayList<>(PROBED_LEAVES);
                for (int i = 0; i < PROBED_LEAVES; i++) {
                    probed.add(expected.get(random.nextInt(expected.size())));
                }
            }
            for (RefLeaf leaf : probed) {
                long lastGranule = leaf.last() - granule + 1;
                long inside = leaf.iova() + clearLow(random.nextLong(1L << leaf.sizeShift()), Long.numberOfTrailingZeros(granule));
                probe(leaf.iova());
                probe(lastGranule + Math.min(42, granule - 1));
                probe(inside);
                probe(leaf.iova() - granule);
                probe(leaf.last() + 1);
                WalkStatus write = fixture.walker.walk(format, table.rootAddress(), inside, Access.WRITE, 0, result);
                // An Arm writable page that a dirty read cleaned (DBM, read-only) takes writes only with
                // hardware dirty updates on; the other formats record dirtiness beside the permission.
                boolean writable = (leaf.prot() & Prot.WRITE) != 0 && (leaf.dirty() || !(format instanceof dev.jiommu.pt.format.ArmLpae));
                assertThat(write).as("%s: write walk at 0x%x in %s: %s", context(), inside, leaf, result)
                        .isEqualTo(writable ? WalkStatus.OK : WalkStatus.PERMISSION);
            }
            for (int i = 0; i < PROBES; i++) {
                probe(window() + clearLow(random.nextLong(windowBytes), Long.numberOfTrailingZeros(granule)));
            }
            if (expected.isEmpty()) {
                assertThat(table.tablePages()).as("%s: an empty table keeps only its root", context())
                        .isEqualTo(PageTableAssertions.rootTablePages(format));
            }
        }

        private void probe(long iova) {
            long actual = assertWalkerAgrees(table, fixture.walker, iova);
            assertThat(actual).as("%s: iova=0x%x (model: %s)", context(), iova, model.leafAt(iova)).isEqualTo(model.translate(iova));
        }

        /** AMD replicates a leaf in each slot it covers; the page is dirty if any copy is. */
        private boolean dirtyAnySlot(Leaf leaf) {
            long first = slotAddress(table, memory, leaf.iova(), leaf.level());
            int slots = 1 << (leaf.sizeShift() - format.itemShift(leaf.level()));
            boolean dirty = false;
            for (int k = 0; k < slots; k++) {
                long entry = memory.read64(first + 8L * k);
                assertThat(format.leafShift(entry, leaf.level())).as("%s: slot %d of %s", context(), k, leaf).isEqualTo(leaf.sizeShift());
                dirty |= format.dirty(entry);
            }
            return dirty;
        }

        void unmapEverything() {
            for (RefLeaf leaf : model.leaves()) {
                assertThat(table.unmap(leaf.iova(), 1L << leaf.sizeShift())).as(context()).isEqualTo(1L << leaf.sizeShift());
                model.unmap(leaf.iova(), leaf.last());
            }
            verify();
        }

        private static int nthBit(long bits, int n) {
            long b = bits;
            for (int i = 0; i < n; i++) {
                b &= b - 1;
            }
            return Long.numberOfTrailingZeros(b);
        }
    }
}
