package dev.jiommu.abi;

import dev.jiommu.driver.mock.MockIommuDriver;
import dev.jiommu.errno.Errno;
import dev.jiommu.iommu.SelftestDevices;
import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.iommufd.IommufdContext;
import dev.jiommu.iommufd.IommufdSelftest;
import dev.jiommu.iommufd.PinAccounting;
import dev.jiommu.mem.MemoryFile;
import dev.jiommu.mem.PhysicalMemory;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.GroupLayout;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.SequenceLayout;
import java.lang.foreign.StructLayout;
import java.lang.foreign.UnionLayout;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.stream.LongStream;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Random ioctls against a context with live objects: an IOAS with a mapping and a mock device, a
 * nest parent, a vIOMMU with a vDEVICE and a nested HWPT, a dirty-tracking HWPT, a fault queue and a
 * vEVENTQ with their fds, a memfd and a dma-buf fd. Command numbers are mostly the table's (and the
 * VFIO path's); each struct is built from the command's layout, field by field after its name (IDs
 * of live objects, fds, flag bits, the caller's buffers, page multiples, IOVAs, driver types,
 * reserved fields mostly zero), then some of it mutated, and sizes are mostly right. Every call must
 * end in a result, never an exception (the decoder turns ErrnoException into −errno; anything else
 * escaping is a bug), and the context must close cleanly at the end with nothing pinned.
 *
 * <p>Seeds: a few fixed ones, plus {@code -Djiommu.seed=N}. Calls per seed: {@value #DEFAULT_CALLS},
 * {@value #LONG_CALLS} with {@code -Djiommu.longFuzz=true}. {@code -Djiommu.fuzzStats=true} prints how
 * each command ended, to see what the fuzzer reaches.
 */
class AbiFuzzTest {
    static final int DEFAULT_CALLS = 50_000;
    static final int LONG_CALLS = 1_000_000;
    private static final boolean STATS = Boolean.getBoolean("jiommu.fuzzStats");

    private static final long PAGE = 4096;
    private static final long ARG = 0x10_0000;
    private static final long BUFFER = 0x40_0000;
    private static final int BUFFER_BYTES = 0x1_0000;
    private static final long READ_ONLY = 0x80_0000;
    private static final long MAP_VA = 0x100_0000;
    private static final long MAP_BYTES = 1L << 20;
    private static final long UNMAPPED = 0x7000_0000_0000L;
    private static final int STRUCT_ROOM = 256;

    /** Where pointers in the structs point: the caller's regions, their edges, and nowhere. */
    private static final long[] POINTERS = {BUFFER, BUFFER + 8, BUFFER + 0x3, BUFFER + BUFFER_BYTES - 16, BUFFER + BUFFER_BYTES - 4,
            MAP_VA, MAP_VA + PAGE, MAP_VA + 16 * PAGE, MAP_VA + MAP_BYTES - PAGE, READ_ONLY, ARG + 128, 0, UNMAPPED, -PAGE};
    private static final long[] LENGTHS = {PAGE, 2 * PAGE, 16 * PAGE, 2048, 1, 4, 8, 12, 24, 48, MAP_BYTES, MAP_BYTES + PAGE,
            1L << 32, 1L << 44, -1L, -PAGE, 0};
    private static final long[] IOVAS = {MockIommuDriver.APERTURE_START, MockIommuDriver.APERTURE_START + PAGE,
            MockIommuDriver.APERTURE_START + 16 * PAGE, 0, 0x1000, MockIommuDriver.APERTURE_LAST + 1 - PAGE, 1L << 40, -PAGE};
    /** The mock's type values (payloads, invalidation, hw_info, vIOMMU, vEVENTQ, HW queue) and a few vendor ones. */
    private static final int[] TYPES = {0xdead, 0xdeadbeef, 0xbeefbeef, 0xfeedbeef, 0, 1, 2, 3};

    /** The commands aimed at: every row of the table, and the VFIO path with its own structs. */
    private static final List<IoctlOp> OPS = IoctlTable.standard().ops();
    private static final int[] VFIO_INT = {IoctlNumbers.VFIO_GET_API_VERSION, IoctlNumbers.VFIO_CHECK_EXTENSION, IoctlNumbers.VFIO_SET_IOMMU,
            IoctlNumbers.VFIO_IOMMU_DIRTY_PAGES};
    private static final int[] VFIO_STRUCT = {IoctlNumbers.VFIO_IOMMU_GET_INFO, IoctlNumbers.VFIO_IOMMU_MAP_DMA, IoctlNumbers.VFIO_IOMMU_UNMAP_DMA};
    private static final StructLayout[] VFIO_LAYOUTS = {VfioIommuType1InfoStruct.LAYOUT, VfioIommuType1DmaMapStruct.LAYOUT,
            VfioIommuType1DmaUnmapStruct.LAYOUT};
    /** TEST_CMD op → the union member holding its arguments. */
    private static final String[] TEST_MEMBERS = {null, "add_reserved", "mock_domain", "check_map", "check_refs", "create_access",
            "destroy_access_pages", "access_pages", "access_rw", "memory_limit", "mock_domain_replace", "access_replace_ioas",
            "mock_domain_flags", "dirty", "check_iotlb", "trigger_iopf", "check_dev_cache", "trigger_vevent", "pasid_attach",
            "pasid_replace", "pasid_detach", "pasid_check", "dmabuf_get", "dmabuf_revoke"};

    static Stream<Long> seeds() {
        LongStream fixed = LongStream.of(1, 0x5eed_cafeL, 20_261_121L);
        Long extra = Long.getLong("jiommu.seed");
        return extra == null ? fixed.boxed() : Stream.concat(Stream.of(extra), fixed.boxed());
    }

    static int calls() {
        return Boolean.getBoolean("jiommu.longFuzz") ? LONG_CALLS : DEFAULT_CALLS;
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void onlyErrnoResultsAndACleanCloseAfterRandomIoctls(long seed) {
        int calls = calls();
        System.out.printf("AbiFuzzTest: seed %d, %d calls%n", seed, calls);
        World world = new World();
        SplittableRandom random = new SplittableRandom(seed);
        TreeMap<String, Integer> stats = new TreeMap<>();
        long successes = 0;
        for (int i = 0; i < calls; i++) {
            Call call = call(random, world);
            if (random.nextInt(64) == 0) {
                world.scribble(random);
            }
            if (random.nextInt(512) == 0) {
                world.closeAnFd(random);
            }
            long result;
            try {
                world.caller.poke(ARG, call.struct);
                result = world.decoder.ioctl(call.cmd, call.arg);
            } catch (Throwable escaped) {
                throw new AssertionError(String.format("seed %d call %d: ioctl(0x%x, 0x%x) with %s threw", seed, i, call.cmd, call.arg,
                        HexFormat.of().formatHex(call.struct, 0, 96)), escaped);
            }
            assertThat(result).as("seed %d call %d: ioctl(0x%x) result", seed, i, call.cmd).isGreaterThanOrEqualTo(-4095);
            if (result >= 0) {
                successes++;
                world.harvest(call.cmd);
            }
            if (STATS) {
                boolean known = OPS.stream().anyMatch(o -> o.cmd() == call.cmd) || (call.cmd & 0xff00) == 0x3b00 && (call.cmd & 0xff) < 0x80;
                String what = result >= 0 ? "ok" : Errno.of((int) -result).name();
                stats.merge(known ? String.format("%04x %s", call.cmd, what) : "other " + what, 1, Integer::sum);
            }
        }
        System.out.printf("AbiFuzzTest: seed %d, %d calls, %d succeeded, %d objects live, %d fds open%n", seed, calls, successes,
                world.ctx.objectCount(), world.fds.openCount());
        stats.forEach((k, v) -> System.out.println("  " + k + " " + v));
        world.closeCleanly(seed);
    }

    private record Call(int cmd, long arg, byte[] struct) {
    }

    private static Call call(SplittableRandom random, World world) {
        long arg = random.nextInt(20) == 0 ? pick(random, POINTERS) : ARG;
        ByteBuffer b = ByteBuffer.allocate(STRUCT_ROOM).order(ByteOrder.LITTLE_ENDIAN);
        int roll = random.nextInt(100);
        if (roll < 80) {
            IoctlOp op = OPS.get(random.nextInt(OPS.size()));
            int op2 = 1 + random.nextInt(TEST_MEMBERS.length - 1);
            fill(random, world, b, op.layout(), 0, op.cmd() == IoctlNumbers.TEST_CMD ? TEST_MEMBERS[op2] : null);
            if (op.cmd() == IoctlNumbers.TEST_CMD) {
                b.putInt(4, random.nextInt(16) == 0 ? random.nextInt(30) : op2);
            }
            // Mostly well-formed; DESTROY mostly of what the fuzzer made, so the world's objects live long.
            if (random.nextInt(10) < (op.cmd() == IoctlNumbers.DESTROY ? 9 : 4)) {
                world.recipe(random, op.cmd(), b);
            }
            b.putInt(0, size(random, (int) op.sizeBytes(), (int) op.minSizeBytes()));
            mutate(random, world, b, (int) op.sizeBytes());
            return new Call(op.cmd(), arg, b.array());
        }
        if (roll < 90) {
            int k = random.nextInt(VFIO_STRUCT.length);
            fill(random, world, b, VFIO_LAYOUTS[k], 0, null);
            int size = (int) VFIO_LAYOUTS[k].byteSize();
            b.putInt(0, random.nextInt(4) == 0 ? (int) pick(random, LENGTHS) : size + (random.nextInt(3) == 0 ? 64 : 0));
            mutate(random, world, b, size);
            return new Call(VFIO_STRUCT[k], arg, b.array());
        }
        if (roll < 95) {
            int cmd = VFIO_INT[random.nextInt(VFIO_INT.length)];
            long intArg = random.nextInt(3) == 0 ? random.nextLong() : random.nextInt(12);
            return new Call(cmd, intArg, b.array());
        }
        b.putInt(0, 8 + 8 * random.nextInt(12));
        mutate(random, world, b, 96);
        return new Call(random.nextBoolean() ? IoctlNumbers.io(random.nextInt(256)) : random.nextInt(), arg, b.array());
    }

    /** The size word: mostly the struct's, sometimes its first version's, one short, a newer caller's, or anything. */
    private static int size(SplittableRandom random, int size, int min) {
        return switch (random.nextInt(24)) {
            case 0 -> min;
            case 1 -> min - 1;
            case 2 -> size + 1 + random.nextInt(64);
            case 3 -> random.nextInt();
            default -> size;
        };
    }

    /** Fills each named field of {@code layout} with a value its name asks for; the union by {@code member}. */
    private static void fill(SplittableRandom random, World world, ByteBuffer b, GroupLayout layout, long base, String member) {
        long offset = base;
        for (MemoryLayout field : layout.memberLayouts()) {
            fillField(random, world, b, field, offset, member);
            offset += field.byteSize();
        }
    }

    private static void fillField(SplittableRandom random, World world, ByteBuffer b, MemoryLayout field, long at, String member) {
        String name = field.name().orElse("");
        switch (field) {
            case UnionLayout union -> {
                MemoryLayout chosen = union.memberLayouts().stream().filter(m -> m.name().orElse("").equals(member)).findFirst()
                        .orElse(union.memberLayouts().getFirst());
                fillField(random, world, b, chosen, at, null);
            }
            case StructLayout struct -> fill(random, world, b, struct, at, null);
            case SequenceLayout sequence -> {
                if (random.nextInt(20) == 0) {
                    b.put((int) at + random.nextInt((int) sequence.byteSize()), (byte) 1);
                }
            }
            case ValueLayout value when value.byteSize() == 8 -> b.putLong((int) at, value64(random, world, name));
            case ValueLayout value when value.byteSize() == 4 -> b.putInt((int) at, value32(random, world, name));
            case ValueLayout value when value.byteSize() == 2 -> b.putShort((int) at, (short) small(random, name));
            default -> {
                // padding and u8 outputs: zero
            }
        }
    }

    private static int value32(SplittableRandom random, World world, String name) {
        if (name.equals("size") || name.equals("last") || name.startsWith("out_")) {
            return random.nextInt(10) == 0 ? random.nextInt() : 0;
        }
        if (name.startsWith("__reserved") || name.equals("reserved") || name.equals("pad")) {
            return random.nextInt(12) == 0 ? 1 << random.nextInt(32) : 0;
        }
        if (name.equals("option_id")) {
            return random.nextInt(8) == 0 ? random.nextInt() : random.nextInt(3);
        }
        if (name.endsWith("_id") || name.equals("id")) {
            return world.id(random);
        }
        if (name.endsWith("fd")) {
            return world.fd(random);
        }
        if (name.contains("flags")) {
            return switch (random.nextInt(6)) {
                case 0, 1 -> 0;
                case 2 -> 1 << random.nextInt(4);
                case 3 -> (1 + random.nextInt(15));
                case 4 -> 1 << random.nextInt(32);
                default -> random.nextInt(8);
            };
        }
        if (name.contains("type")) {
            return random.nextInt(8) == 0 ? random.nextInt() : pick(random, TYPES);
        }
        if (name.contains("len") || name.equals("limit") || name.equals("length")) {
            return random.nextInt(3) == 0 ? (int) pick(random, LENGTHS) : 4 * random.nextInt(8);
        }
        return small(random, name);
    }

    /** Counts, ops, indexes, PASIDs, slots: mostly small. */
    private static int small(SplittableRandom random, String name) {
        return switch (random.nextInt(8)) {
            case 0 -> random.nextInt();
            case 1 -> 1 << random.nextInt(20);
            default -> random.nextInt(name.equals("pasid") ? 1100 : name.equals("op") ? 3 : 6);
        };
    }

    private static long value64(SplittableRandom random, World world, String name) {
        if (random.nextInt(16) == 0) {
            return random.nextLong();
        }
        if (name.contains("uptr") || name.equals("user_va") || name.equals("vaddr") || name.equals("data") || name.equals("allowed_iovas")) {
            return pick(random, POINTERS);
        }
        if (name.contains("length") || name.equals("size") || name.equals("page_size") || name.equals("val64")) {
            return random.nextBoolean() ? pick(random, LENGTHS) : (1L + random.nextInt(32)) * (random.nextBoolean() ? PAGE : 2048);
        }
        if (name.contains("iova") || name.equals("addr") || name.equals("start")) {
            return random.nextInt(4) == 0 ? random.nextInt(4) * PAGE : pick(random, IOVAS);
        }
        if (name.startsWith("out_")) {
            return 0;
        }
        return random.nextInt(4) == 0 ? random.nextLong() : random.nextInt(64); // virt_id, iova_pgsizes, ...
    }

    /** Now and then a few words of the struct become something else entirely. */
    private static void mutate(SplittableRandom random, World world, ByteBuffer b, int size) {
        if (random.nextInt(4) != 0) {
            return;
        }
        for (int n = 1 + random.nextInt(3); n > 0; n--) {
            int at = 4 * random.nextInt(Math.max(1, size / 4));
            b.putInt(at, switch (random.nextInt(4)) {
                case 0 -> 0;
                case 1 -> world.id(random);
                case 2 -> -1;
                default -> random.nextInt();
            });
        }
        if (random.nextInt(8) == 0) {
            b.put(size + random.nextInt(16), (byte) random.nextInt(256)); // a newer caller's non-zero tail
        }
    }

    private static long pick(SplittableRandom random, long[] values) {
        return values[random.nextInt(values.length)];
    }

    private static int pick(SplittableRandom random, int[] values) {
        return values[random.nextInt(values.length)];
    }

    /** The caller and its context, with something of everything alive. */
    private static final class World {
        final PhysicalMemory memory = PhysicalMemory.create(64L << 20);
        final CallerMemory caller = new CallerMemory(memory);
        final IommufdContext ctx;
        final LocalFdTable fds = new LocalFdTable(64);
        final MemoryFile memfd = new MemoryFile(memory, "memfd", 16 * PAGE, true);
        final AbiDecoder decoder;
        /** IDs of objects made here or by successful calls; the fuzzer names them most of the time. */
        final List<Integer> ids = new ArrayList<>();
        /** How many of {@link #ids} the world made itself. */
        static final int WORLD_IDS = 13;
        final int ioas;
        final int[] idevs;
        final int[] stdevs;
        final int[] hwpts;
        final int parent;
        final int dirty;
        final int viommu;
        final int nested;

        World() {
            caller.register(ARG, PAGE, true);
            caller.register(BUFFER, BUFFER_BYTES, true);
            caller.register(READ_ONLY, PAGE, false);
            caller.register(MAP_VA, MAP_BYTES, true);
            ctx = new IommufdContext(caller, new MockIommuDriver(memory));
            // The caller is another process than the one that opened the context: CHANGE_PROCESS moves charges.
            decoder = new AbiDecoder(ctx, caller, fds, new PinAccounting(IommufdContext.UNLIMITED));
            IommufdSelftest selftest = ctx.selftest();
            int ioas = ctx.ioasAlloc();
            IommufdSelftest.MockDomain md = selftest.mockDomain(ioas);
            IommufdSelftest.MockDomain pasid = selftest.mockDomainFlags(ioas, SelftestDevices.PASID);
            ctx.ioasMap(ioas, Iommufd.MAP_READABLE | Iommufd.MAP_WRITEABLE, MAP_VA, 16 * PAGE, 0);
            int parent = ctx.hwptAlloc(Iommufd.HWPT_ALLOC_NEST_PARENT, md.idevId(), ioas, Iommufd.HWPT_DATA_NONE, null, 0);
            int dirty = ctx.hwptAlloc(Iommufd.HWPT_ALLOC_DIRTY_TRACKING, md.idevId(), ioas, Iommufd.HWPT_DATA_NONE, null, 0);
            ctx.hwptSetDirtyTracking(dirty, Iommufd.DIRTY_TRACKING_ENABLE);
            int viommu = ctx.viommuAlloc(0, 0xdeadbeef, md.idevId(), parent, null).viommuId();
            int vdevice = ctx.vdeviceAlloc(viommu, md.idevId(), 5);
            int nested = ctx.hwptAlloc(0, md.idevId(), viommu, MockIommuDriver.HWPT_DATA_SELFTEST, new byte[8], 0);
            Iommufd.FaultQueueAlloc fault = ctx.faultQueueAlloc(0);
            Iommufd.VeventqAlloc veventq = ctx.veventqAlloc(0, viommu, IommufdSelftest.VEVENTQ_TYPE_SELFTEST, 4);
            ids.addAll(List.of(ioas, md.stdevId(), md.idevId(), md.hwptId(), pasid.stdevId(), pasid.idevId(), parent, dirty, viommu,
                    vdevice, nested, fault.faultId(), veventq.veventqId()));
            this.ioas = ioas;
            this.idevs = new int[] {md.idevId(), pasid.idevId()};
            this.stdevs = new int[] {md.stdevId(), pasid.stdevId()};
            this.hwpts = new int[] {md.hwptId(), parent, dirty, nested};
            this.parent = parent;
            this.dirty = dirty;
            this.viommu = viommu;
            this.nested = nested;
            fds.install(memfd);
            fds.install(selftest.dmabufGet(4 * PAGE));
            fds.install(fault.file());
            fds.install(veventq.file());
        }

        /*
         * Well-formed commands for the objects of the world: the fields that must agree with each
         * other do, so the calls get past the first checks and reach the typed API's deeper rules.
         */
        void recipe(SplittableRandom random, int cmd, ByteBuffer b) {
            int idev = idevs[random.nextInt(2)];
            long page = PAGE * random.nextInt(16);
            int rw = Iommufd.MAP_READABLE | Iommufd.MAP_WRITEABLE;
            if (cmd == IoctlNumbers.DESTROY) {
                b.putInt(4, ids.size() > WORLD_IDS ? ids.get(WORLD_IDS + random.nextInt(ids.size() - WORLD_IDS)) : 0);
            } else if (cmd == IoctlNumbers.IOAS_MAP) {
                b.putInt(4, rw | (random.nextBoolean() ? Iommufd.MAP_FIXED_IOVA : 0)).putInt(8, ioasOrNew(random)).putInt(12, 0)
                        .putLong(16, MAP_VA + page).putLong(24, PAGE * (1 + random.nextInt(8)))
                        .putLong(32, MockIommuDriver.APERTURE_START + PAGE * (16 + random.nextInt(64)));
            } else if (cmd == IoctlNumbers.IOAS_UNMAP) {
                b.putInt(4, ioasOrNew(random)).putLong(8, MockIommuDriver.APERTURE_START + PAGE * random.nextInt(80))
                        .putLong(16, PAGE * (1 + random.nextInt(16)));
            } else if (cmd == IoctlNumbers.IOAS_COPY) {
                b.putInt(4, rw).putInt(8, ioasOrNew(random)).putInt(12, ioas).putLong(16, PAGE * (1 + random.nextInt(4))).putLong(24, 0)
                        .putLong(32, MockIommuDriver.APERTURE_START + page);
            } else if (cmd == IoctlNumbers.HWPT_ALLOC) {
                int flags = new int[] {0, Iommufd.HWPT_ALLOC_NEST_PARENT, Iommufd.HWPT_ALLOC_DIRTY_TRACKING, Iommufd.HWPT_ALLOC_PASID}[random.nextInt(4)];
                int pt = new int[] {ioas, parent, viommu}[random.nextInt(3)];
                boolean payload = pt != ioas || random.nextBoolean();
                b.putInt(4, pt == ioas ? flags : 0).putInt(8, idev).putInt(12, pt).putInt(20, 0).putInt(24, payload ? MockIommuDriver.HWPT_DATA_SELFTEST : 0)
                        .putInt(28, payload ? 8 : 0).putLong(32, payload ? BUFFER : 0);
            } else if (cmd == IoctlNumbers.GET_HW_INFO) {
                b.putInt(4, 0).putInt(8, idev).putInt(12, random.nextInt(24)).putLong(16, BUFFER + random.nextInt(64)).putInt(24, 0).putInt(28, 0);
            } else if (cmd == IoctlNumbers.HWPT_GET_DIRTY_BITMAP) {
                b.putInt(4, dirty).putInt(8, random.nextInt(2)).putInt(12, 0).putLong(16, MockIommuDriver.APERTURE_START)
                        .putLong(24, PAGE * (1 + random.nextInt(64))).putLong(32, PAGE).putLong(40, BUFFER + random.nextInt(64));
            } else if (cmd == IoctlNumbers.HWPT_INVALIDATE) {
                boolean viaViommu = random.nextBoolean();
                b.putInt(4, viaViommu ? viommu : nested).putLong(8, BUFFER + 8L * random.nextInt(64)).putInt(16, 0xdeadbeef)
                        .putInt(20, viaViommu ? 12 : 8).putInt(24, random.nextInt(5)).putInt(28, 0);
            } else if (cmd == IoctlNumbers.VIOMMU_ALLOC) {
                boolean payload = random.nextBoolean();
                b.putInt(4, 0).putInt(8, 0xdeadbeef).putInt(12, idev).putInt(16, parent).putInt(24, payload ? 8 * (1 + random.nextInt(3)) : 0)
                        .putInt(28, 0).putLong(32, payload ? BUFFER : 0);
            } else if (cmd == IoctlNumbers.VDEVICE_ALLOC) {
                b.putInt(4, viommu).putInt(8, idev).putLong(16, random.nextInt(8));
            } else if (cmd == IoctlNumbers.VEVENTQ_ALLOC) {
                b.putInt(4, 0).putInt(8, viommu).putInt(12, IommufdSelftest.VEVENTQ_TYPE_SELFTEST).putInt(16, 1 + random.nextInt(8)).putInt(28, 0);
            } else if (cmd == IoctlNumbers.HW_QUEUE_ALLOC) {
                b.putInt(4, 0).putInt(8, viommu).putInt(12, 0xdeadbeef).putInt(16, random.nextInt(3))
                        .putLong(24, MockIommuDriver.APERTURE_START + page).putLong(32, PAGE);
            } else if (cmd == IoctlNumbers.OPTION) {
                b.putInt(4, 1).putShort(8, (short) random.nextInt(2)).putShort(10, (short) 0).putInt(12, ioasOrNew(random))
                        .putLong(16, random.nextInt(2));
            } else if (cmd == IoctlNumbers.IOAS_MAP_FILE) {
                b.putInt(4, rw).putInt(8, ioasOrNew(random)).putInt(12, LocalFdTable.FIRST_FD + random.nextInt(2)).putLong(16, page / 4)
                        .putLong(24, PAGE * (1 + random.nextInt(4))).putLong(32, 0);
            } else if (cmd == IoctlNumbers.TEST_CMD) {
                b.putInt(8, switch (b.getInt(4)) {
                    case TestCmdStruct.OP_MOCK_DOMAIN_REPLACE, TestCmdStruct.OP_PASID_ATTACH, TestCmdStruct.OP_PASID_REPLACE,
                         TestCmdStruct.OP_PASID_DETACH, TestCmdStruct.OP_PASID_CHECK_HWPT -> stdevs[random.nextInt(2)];
                    case TestCmdStruct.OP_MD_CHECK_MAP, TestCmdStruct.OP_DIRTY -> hwpts[random.nextInt(hwpts.length)];
                    case TestCmdStruct.OP_DEV_CHECK_CACHE -> idev;
                    case TestCmdStruct.OP_MD_CHECK_IOTLB -> nested;
                    default -> ioasOrNew(random);
                });
            }
        }

        private int ioasOrNew(SplittableRandom random) {
            return random.nextInt(4) == 0 ? ids.get(random.nextInt(ids.size())) : ioas;
        }

        int id(SplittableRandom random) {
            return switch (random.nextInt(10)) {
                case 0 -> random.nextInt(64);
                case 1 -> random.nextInt();
                default -> ids.get(random.nextInt(ids.size()));
            };
        }

        int fd(SplittableRandom random) {
            return random.nextInt(10) == 0 ? random.nextInt() : LocalFdTable.FIRST_FD + random.nextInt(10);
        }

        /** A successful call may have made an object: its ID is the next one, usually; remember the newest few. */
        void harvest(int cmd) {
            ByteBuffer out = ByteBuffer.wrap(caller.read(ARG, 32)).order(ByteOrder.LITTLE_ENDIAN);
            int id = 0;
            if (cmd == IoctlNumbers.IOAS_ALLOC || cmd == IoctlNumbers.FAULT_QUEUE_ALLOC) {
                id = out.getInt(8);
            } else if (cmd == IoctlNumbers.HWPT_ALLOC) {
                id = out.getInt(16);
            } else if (cmd == IoctlNumbers.VDEVICE_ALLOC) {
                id = out.getInt(12);
            } else if (cmd == IoctlNumbers.VIOMMU_ALLOC || cmd == IoctlNumbers.VEVENTQ_ALLOC || cmd == IoctlNumbers.HW_QUEUE_ALLOC) {
                id = out.getInt(20);
            }
            if (id > 0) {
                ids.add(id);
                if (ids.size() > 40) {
                    ids.remove(WORLD_IDS); // keep the world's own, forget the oldest made since
                }
            }
        }

        /** The caller's buffer holds arrays and payloads: give part of it new contents, mostly small numbers. */
        void scribble(SplittableRandom random) {
            ByteBuffer b = ByteBuffer.allocate(256).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < 256; i += 8) {
                b.putLong(i, switch (random.nextInt(5)) {
                    case 0 -> 0;
                    case 1 -> random.nextInt(8);
                    case 2 -> pick(random, IOVAS);
                    case 3 -> (long) random.nextInt(4) << 32 | ids.get(random.nextInt(ids.size()));
                    default -> random.nextLong();
                });
            }
            caller.write(BUFFER + 256L * random.nextInt(BUFFER_BYTES / 256), b.array());
        }

        /** A caller closes its fds now and then (not the memfd, which the world keeps). */
        void closeAnFd(SplittableRandom random) {
            int fd = LocalFdTable.FIRST_FD + 1 + random.nextInt(12);
            try {
                fds.lookup(fd);
            } catch (RuntimeException notOpen) {
                return;
            }
            fds.close(fd);
        }

        void closeCleanly(long seed) {
            ctx.close();
            assertThat(caller.pinnedPages()).as("seed %d: pinned user pages after close", seed).isZero();
            assertThat(memfd.pinnedPages()).as("seed %d: pinned memfd pages after close", seed).isZero();
            memfd.close();
        }
    }
}
