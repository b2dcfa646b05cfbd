package dev.jiommu.abi;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.iommufd.IommufdFile;

import java.util.Arrays;

/**
 * The handlers of the vIOMMU and event-queue commands (the kernel's viommu.c and eventq.c):
 * FAULT_QUEUE_ALLOC, VIOMMU_ALLOC, VDEVICE_ALLOC, VEVENTQ_ALLOC and HW_QUEUE_ALLOC. The two queues
 * come with a file, which gets a number in the caller's fd table; until the answer is written
 * back, the caller has neither the ID nor the fd, so a failed write takes both back.
 */
final class ViommuCommands {
    private final FaultAllocStruct faultAlloc = new FaultAllocStruct();
    private final ViommuAllocStruct viommuAlloc = new ViommuAllocStruct();
    private final VdeviceAllocStruct vdeviceAlloc = new VdeviceAllocStruct();
    private final VeventqAllocStruct veventqAlloc = new VeventqAllocStruct();
    private final HwQueueAllocStruct hwQueueAlloc = new HwQueueAllocStruct();

    long faultQueueAlloc(AbiCall call) {
        FaultAllocStruct s = faultAlloc.wrap(call.struct(), 0);
        Iommufd.FaultQueueAlloc made = call.iommufd().faultQueueAlloc(s.flags());
        int fd = install(call, made.file(), made.faultId());
        s.outFaultId(made.faultId()).outFaultFd(fd);
        call.respond();
        call.undoIfUnanswered(IoctlTable.CLOSE_FD_AND_DESTROY, fd, made.faultId());
        return 0;
    }

    long veventqAlloc(AbiCall call) {
        VeventqAllocStruct s = veventqAlloc.wrap(call.struct(), 0);
        if (s.reserved() != 0) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "veventq_alloc: __reserved is 0x%x", s.reserved());
        }
        Iommufd.VeventqAlloc made = call.iommufd().veventqAlloc(s.flags(), s.viommuId(), s.type(), (int) s.veventqDepth());
        int fd = install(call, made.file(), made.veventqId());
        s.outVeventqId(made.veventqId()).outVeventqFd(fd);
        call.respond();
        call.undoIfUnanswered(IoctlTable.CLOSE_FD_AND_DESTROY, fd, made.veventqId());
        return 0;
    }

    /** Gives a new queue's file an fd; when none is free (EMFILE) the queue goes again. */
    private static int install(AbiCall call, IommufdFile file, int objectId) {
        try {
            return call.fds().install(file);
        } catch (ErrnoException e) {
            file.close();
            call.iommufd().destroy(objectId);
            throw e;
        }
    }

    /*
     * The payload is read and written back by the driver, inside the allocation: a buffer the
     * driver cannot write its answer to fails the whole call (EFAULT) and nothing is left. The
     * answer goes back copy_struct_to_user's way: the caller's data_len bytes, zero past what the
     * driver has.
     */
    long viommuAlloc(AbiCall call) {
        ViommuAllocStruct s = viommuAlloc.wrap(call.struct(), 0);
        if (s.flags() != 0 || s.type() == Iommufd.VIOMMU_TYPE_DEFAULT) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "viommu_alloc: flags 0x%x type %d", s.flags(), s.type());
        }
        byte[] data = UserData.read(call.caller(), s.dataUptr(), s.dataLenBytes(), "viommu_alloc");
        Iommufd.ViommuAlloc made = call.iommufd().viommuAlloc(s.flags(), s.type(), s.devId(), s.hwptId(), data);
        byte[] out = made.outData();
        if (data.length > 0 && out.length > 0) {
            try {
                call.caller().write(s.dataUptr(), out.length == data.length ? out : Arrays.copyOf(out, data.length));
            } catch (ErrnoException fault) {
                call.iommufd().destroy(made.viommuId());
                throw fault;
            }
        }
        s.outViommuId(made.viommuId());
        call.respond();
        call.undoIfUnanswered(IoctlTable.DESTROY_OBJECT, made.viommuId(), 0);
        return 0;
    }

    long vdeviceAlloc(AbiCall call) {
        VdeviceAllocStruct s = vdeviceAlloc.wrap(call.struct(), 0);
        int id = call.iommufd().vdeviceAlloc(s.viommuId(), s.devId(), s.virtId());
        s.outVdeviceId(id);
        call.respond();
        call.undoIfUnanswered(IoctlTable.DESTROY_OBJECT, id, 0);
        return 0;
    }

    long hwQueueAlloc(AbiCall call) {
        HwQueueAllocStruct s = hwQueueAlloc.wrap(call.struct(), 0);
        int id = call.iommufd().hwQueueAlloc(s.flags(), s.viommuId(), s.type(), s.index(), s.nestingParentIova(), s.lengthBytes());
        s.outHwQueueId(id);
        call.respond();
        call.undoIfUnanswered(IoctlTable.DESTROY_OBJECT, id, 0);
        return 0;
    }
}
