package dev.jiommu.abi;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.iommufd.IovaRange;
import dev.jiommu.mem.DmaBuf;
import dev.jiommu.mem.MemoryFile;
import dev.jiommu.mem.UserMemory;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * The handlers of the object and IOAS commands (the kernel's main.c and ioas.c): DESTROY, IOAS_ALLOC,
 * ALLOW_IOVAS, COPY, IOVA_RANGES, MAP, MAP_FILE, UNMAP, OPTION, VFIO_IOAS, CHANGE_PROCESS. Each
 * checks what the typed API cannot see (reserved fields, user pointers, fds) in the kernel's order,
 * then calls it. The flyweights are this object's own.
 */
final class IoasCommands {
    /** Ranges read per user-memory read when loading an allowed list. */
    private static final int RANGES_PER_READ = 256;

    private final DestroyStruct destroy = new DestroyStruct();
    private final IoasAllocStruct ioasAlloc = new IoasAllocStruct();
    private final IoasAllowIovasStruct allowIovas = new IoasAllowIovasStruct();
    private final IoasCopyStruct copy = new IoasCopyStruct();
    private final IoasIovaRangesStruct iovaRanges = new IoasIovaRangesStruct();
    private final IoasMapStruct map = new IoasMapStruct();
    private final IoasMapFileStruct mapFile = new IoasMapFileStruct();
    private final IoasUnmapStruct unmap = new IoasUnmapStruct();
    private final IoasNoIommuGetPaStruct noIommuGetPa = new IoasNoIommuGetPaStruct();
    private final OptionStruct option = new OptionStruct();
    private final VfioIoasStruct vfioIoas = new VfioIoasStruct();
    private final IoasChangeProcessStruct changeProcess = new IoasChangeProcessStruct();

    long destroy(AbiCall call) {
        call.iommufd().destroy(destroy.wrap(call.struct(), 0).id());
        return 0;
    }

    long ioasAlloc(AbiCall call) {
        IoasAllocStruct s = ioasAlloc.wrap(call.struct(), 0);
        if (s.flags() != 0) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "ioas_alloc: flags 0x%x", s.flags());
        }
        int id = call.iommufd().ioasAlloc();
        s.outIoasId(id);
        call.respond();
        call.undoIfUnanswered(IoctlTable.DESTROY_OBJECT, id, 0);
        return 0;
    }

    long iovaRanges(AbiCall call) {
        IoasIovaRangesStruct s = iovaRanges.wrap(call.struct(), 0);
        if (s.reserved() != 0) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "iova_ranges: __reserved is 0x%x", s.reserved());
        }
        Iommufd.IovaRanges ranges = call.iommufd().ioasIovaRanges(s.ioasId());
        long capacity = s.numIovas();
        List<IovaRange> list = ranges.ranges();
        int written = (int) Math.min(capacity, list.size());
        if (written > 0) {
            ByteBuffer out = ByteBuffer.allocate(written * IoasIovaRangesStruct.RANGE_BYTES).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < written; i++) {
                out.putLong(list.get(i).start()).putLong(list.get(i).last());
            }
            call.caller().write(s.allowedIovas(), out.array());
        }
        s.numIovas(list.size()).outIovaAlignment(ranges.iovaAlignment());
        call.respond();
        if (capacity < list.size()) {
            throw ErrnoException.of(Errno.EMSGSIZE, "iova_ranges: %d ranges, room for %d", list.size(), capacity);
        }
        return 0;
    }

    /*
     * The kernel looks the IOAS up, then loads the ranges one by one: entry i is EFAULT if it cannot
     * be read, EINVAL if it is empty or overlaps an earlier one, whichever comes first. The typed call
     * checks the same once it has the whole list; only when the list is cut short by a fault does the
     * decoder decide between the two itself.
     */
    long allowIovas(AbiCall call) {
        IoasAllowIovasStruct s = allowIovas.wrap(call.struct(), 0);
        if (s.reserved() != 0) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "allow_iovas: __reserved is 0x%x", s.reserved());
        }
        long count = s.numIovas();
        List<IovaRange> ranges = new ArrayList<>((int) Math.min(count, RANGES_PER_READ));
        ErrnoException fault = loadRanges(call.caller(), s.allowedIovas(), count, ranges);
        if (fault != null) {
            call.iommufd().ioasIovaRanges(s.ioasId()); // ENOENT comes first
            if (firstInvalid(ranges) != null) {
                throw ErrnoException.of(Errno.EINVAL, "allow_iovas: range %s is empty or overlaps another", firstInvalid(ranges));
            }
            throw fault;
        }
        call.iommufd().ioasAllowIovas(s.ioasId(), ranges);
        return 0;
    }

    /** Reads up to {@code count} ranges; {@return the fault that stopped it early, or null} */
    private static ErrnoException loadRanges(UserMemory caller, long uptr, long count, List<IovaRange> into) {
        for (long i = 0; i < count; ) {
            int n = (int) Math.min(RANGES_PER_READ, count - i);
            long at = uptr + i * IoasIovaRangesStruct.RANGE_BYTES;
            try {
                addRanges(caller.read(at, n * IoasIovaRangesStruct.RANGE_BYTES), n, into);
                i += n;
            } catch (ErrnoException chunkFault) {
                for (int k = 0; k < n; k++) {
                    try {
                        addRanges(caller.read(at + (long) k * IoasIovaRangesStruct.RANGE_BYTES, IoasIovaRangesStruct.RANGE_BYTES), 1, into);
                    } catch (ErrnoException fault) {
                        return fault;
                    }
                }
                throw new IllegalStateException("bug: a read of " + n + " ranges at 0x" + Long.toHexString(at)
                        + " faulted, but each range alone did not", chunkFault);
            }
        }
        return null;
    }

    private static void addRanges(byte[] bytes, int n, List<IovaRange> into) {
        ByteBuffer in = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        for (int k = 0; k < n; k++) {
            into.add(new IovaRange(in.getLong(), in.getLong()));
        }
    }

    /** {@return a range that is empty or overlaps another, or null when the list is valid} */
    private static IovaRange firstInvalid(List<IovaRange> ranges) {
        List<IovaRange> sorted = new ArrayList<>(ranges);
        sorted.sort((x, y) -> Long.compareUnsigned(x.start(), y.start()));
        for (int i = 0; i < sorted.size(); i++) {
            IovaRange r = sorted.get(i);
            if (Long.compareUnsigned(r.start(), r.last()) >= 0) {
                return r;
            }
            if (i > 0 && Long.compareUnsigned(r.start(), sorted.get(i - 1).last()) <= 0) {
                return r;
            }
        }
        return null;
    }

    long ioasMap(AbiCall call) {
        IoasMapStruct s = map.wrap(call.struct(), 0);
        if (s.reserved() != 0) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "ioas_map: __reserved is 0x%x", s.reserved());
        }
        long iova = call.iommufd().ioasMap(s.ioasId(), s.flags(), s.userVa(), s.lengthBytes(), s.iova());
        s.iova(iova);
        call.respond();
        return 0;
    }

    /*
     * The fd is resolved after the flag, IOAS and range checks (iopt_map_file_pages): a dma-buf
     * first, else any open file (EBADF otherwise). The typed API takes the file itself, so for an fd
     * it cannot take the decoder runs those checks first, in the kernel's order.
     */
    long ioasMapFile(AbiCall call) {
        IoasMapFileStruct s = mapFile.wrap(call.struct(), 0);
        Object file = lookupOrNull(call.fds(), s.fd());
        Iommufd iommufd = call.iommufd();
        long iova = switch (file) {
            case DmaBuf buf -> iommufd.ioasMapFile(s.ioasId(), s.flags(), buf, s.start(), s.lengthBytes(), s.iova());
            case MemoryFile memfd -> iommufd.ioasMapFile(s.ioasId(), s.flags(), memfd, s.start(), s.lengthBytes(), s.iova());
            case null -> throw refuseFile(iommufd, s, Errno.EBADF, "is not open");
            default -> throw refuseFile(iommufd, s, Errno.EINVAL, "is neither a memfd nor a dma-buf");
        };
        s.iova(iova);
        call.respond();
        return 0;
    }

    private static Object lookupOrNull(FdTable fds, int fd) {
        try {
            return fds.lookup(fd);
        } catch (ErrnoException e) {
            if (e.errno() == Errno.EBADF) {
                return null;
            }
            throw e;
        }
    }

    private static ErrnoException refuseFile(Iommufd iommufd, IoasMapFileStruct s, Errno errno, String why) {
        int flags = s.flags();
        int known = Iommufd.MAP_FIXED_IOVA | Iommufd.MAP_READABLE | Iommufd.MAP_WRITEABLE;
        if ((flags & ~known) != 0) {
            return ErrnoException.of(Errno.EOPNOTSUPP, "ioas_map_file: flags 0x%x", flags);
        }
        if (s.iova() == -1L || s.lengthBytes() == -1L) {
            return ErrnoException.of(Errno.EOVERFLOW, "ioas_map_file iova=0x%x length=0x%x: ULONG_MAX", s.iova(), s.lengthBytes());
        }
        if ((flags & (Iommufd.MAP_READABLE | Iommufd.MAP_WRITEABLE)) == 0) {
            return ErrnoException.of(Errno.EINVAL, "ioas_map_file flags 0x%x: neither READABLE nor WRITEABLE", flags);
        }
        iommufd.ioasIovaRanges(s.ioasId()); // ENOENT for a bad IOAS, before the fd
        if (s.lengthBytes() == 0) {
            return ErrnoException.of(Errno.EINVAL, "ioas_map_file: zero length");
        }
        if (Long.compareUnsigned(s.start() + s.lengthBytes() - 1, s.start()) < 0) {
            return ErrnoException.of(Errno.EOVERFLOW, "ioas_map_file start=0x%x length=0x%x: wraps", s.start(), s.lengthBytes());
        }
        return ErrnoException.of(errno, "ioas_map_file: fd %d %s", s.fd(), why);
    }

    long ioasCopy(AbiCall call) {
        IoasCopyStruct s = copy.wrap(call.struct(), 0);
        long iova = call.iommufd().ioasCopy(s.dstIoasId(), s.flags(), s.srcIoasId(), s.srcIova(), s.lengthBytes(), s.dstIova());
        s.dstIova(iova);
        call.respond();
        return 0;
    }

    /*
     * A non-zero __reserved is refused exactly as an unknown flag is (EOPNOTSUPP, after the
     * capability check), so it goes to the typed call folded into the flags.
     */
    long noIommuGetPa(AbiCall call) {
        IoasNoIommuGetPaStruct s = noIommuGetPa.wrap(call.struct(), 0);
        int flags = s.flags() | (s.reserved() != 0 ? Iommufd.NOIOMMU_RESERVED_SET : 0);
        Iommufd.PhysicalRange range = call.iommufd().ioasNoIommuGetPa(flags, s.ioasId(), s.iova(), s.lengthBytes());
        s.outPhys(range.physicalAddress()).lengthBytes(range.lengthBytes());
        call.respond();
        return 0;
    }

    long ioasUnmap(AbiCall call) {
        IoasUnmapStruct s = unmap.wrap(call.struct(), 0);
        long unmapped = call.iommufd().ioasUnmap(s.ioasId(), s.iova(), s.lengthBytes());
        s.lengthBytes(unmapped);
        call.respond();
        return 0;
    }

    /*
     * Only val64 goes back, and only on success. An op other than GET or SET is EOPNOTSUPP after the
     * option and its object were checked, which a GET (it changes nothing) checks for the decoder.
     */
    long option(AbiCall call) {
        OptionStruct s = option.wrap(call.struct(), 0);
        if (s.reserved() != 0) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "option: __reserved is 0x%x", s.reserved());
        }
        Iommufd iommufd = call.iommufd();
        long value = switch (s.op()) {
            case IoctlTable.OPTION_OP_SET -> iommufd.optionSet(s.optionId(), s.objectId(), s.val64());
            case IoctlTable.OPTION_OP_GET -> iommufd.optionGet(s.optionId(), s.objectId());
            default -> {
                iommufd.optionGet(s.optionId(), s.objectId());
                throw ErrnoException.of(Errno.EOPNOTSUPP, "option %d: op %d unknown", s.optionId(), s.op());
            }
        };
        s.val64(value);
        call.respondField(OptionStruct.VAL64_OFFSET, Long.BYTES);
        return 0;
    }

    long vfioIoas(AbiCall call) {
        VfioIoasStruct s = vfioIoas.wrap(call.struct(), 0);
        if (s.reserved() != 0) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "vfio_ioas: __reserved is 0x%x", s.reserved());
        }
        int id = call.iommufd().vfioIoas(s.op(), s.ioasId());
        if (s.op() == Iommufd.VFIO_IOAS_GET) {
            s.ioasId(id);
            call.respond();
        }
        return 0;
    }

    long changeProcess(AbiCall call) {
        IoasChangeProcessStruct s = changeProcess.wrap(call.struct(), 0);
        if (s.reserved() != 0) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "ioas_change_process: __reserved is 0x%x", s.reserved());
        }
        call.iommufd().ioasChangeProcess(call.process());
        return 0;
    }
}
