package dev.jiommu.abi;

import dev.jiommu.errno.Errno;
import dev.jiommu.iommufd.IommufdException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static dev.jiommu.abi.Layouts.U32;

/**
 * A real device through its VFIO cdev ({@code /dev/vfio/devices/vfioN}), bound to a
 * {@link KernelIommufd}: what a user needs to put a device under iommufd (iommufd-uapi.md §6).
 * {@link #bind} opens the cdev and binds it (VFIO_DEVICE_BIND_IOMMUFD, which yields the device's
 * ID in that iommufd); {@link #attach} and {@link #detach} point the device's RID, or one PASID, at
 * an IOAS or HWPT; {@link #close()} unbinds (closing the device fd).
 */
public final class VfioCdev implements AutoCloseable {
    static final int BIND_IOMMUFD = IoctlNumbers.io(IoctlNumbers.VFIO_BASE + 18);
    static final int ATTACH_IOMMUFD_PT = IoctlNumbers.io(IoctlNumbers.VFIO_BASE + 19);
    static final int DETACH_IOMMUFD_PT = IoctlNumbers.io(IoctlNumbers.VFIO_BASE + 20);
    /** struct vfio_device_bind_iommufd: argsz, flags, iommufd, out_devid, token_uuid_ptr. */
    static final int BIND_BYTES = 24;
    static final int BIND_OUT_DEVID = 12;
    /** struct vfio_device_attach_iommufd_pt: argsz, flags, pt_id, pasid. */
    static final int ATTACH_BYTES = 16;
    static final int ATTACH_PT_ID = 8;
    static final int ATTACH_PASID = 12;
    static final int ATTACH_FLAG_PASID = 1;
    /** struct vfio_device_detach_iommufd_pt: argsz, flags, pasid. */
    static final int DETACH_BYTES = 12;
    static final int DETACH_PASID = 8;
    static final int DETACH_FLAG_PASID = 1;

    private final int deviceFd;
    private final int devId;
    private final String path;
    private boolean closed;

    private VfioCdev(int deviceFd, int devId, String path) {
        this.deviceFd = deviceFd;
        this.devId = devId;
        this.path = path;
    }

    /** Opens the cdev at {@code path} and binds it to {@code iommufd}. @throws IommufdException with the errno */
    public static VfioCdev bind(KernelIommufd iommufd, String path) {
        int fd = LinuxSyscalls.open(path, LinuxSyscalls.O_RDWR);
        if (fd < 0) {
            throw KernelIommufd.failure(-fd, "open(%s)", path);
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment bind = arena.allocate(BIND_BYTES, 8);
            bind.set(U32, 0, BIND_BYTES);
            bind.set(U32, 8, iommufd.fd());
            long rc = LinuxSyscalls.ioctl(fd, BIND_IOMMUFD, bind.address());
            if (rc < 0) {
                LinuxSyscalls.close(fd);
                throw KernelIommufd.failure((int) -rc, "VFIO_DEVICE_BIND_IOMMUFD(%s)", path);
            }
            return new VfioCdev(fd, bind.get(U32, BIND_OUT_DEVID), path);
        }
    }

    /** {@return the device's ID in the iommufd it is bound to} */
    public int devId() {
        return devId;
    }

    /** Attaches the RID to {@code ptId} (an IOAS or a HWPT). {@return the HWPT attached (an automatic one for an IOAS)} */
    public int attach(int ptId) {
        return attach(0, ptId, 0);
    }

    /** Attaches {@code pasid} to {@code ptId}. {@return the HWPT attached} */
    public int attachPasid(int pasid, int ptId) {
        return attach(ATTACH_FLAG_PASID, ptId, pasid);
    }

    private int attach(int flags, int ptId, int pasid) {
        ensureBound();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment attach = arena.allocate(ATTACH_BYTES, 8);
            attach.set(U32, 0, ATTACH_BYTES);
            attach.set(U32, 4, flags);
            attach.set(U32, ATTACH_PT_ID, ptId);
            attach.set(U32, ATTACH_PASID, pasid);
            check(LinuxSyscalls.ioctl(deviceFd, ATTACH_IOMMUFD_PT, attach.address()), "VFIO_DEVICE_ATTACH_IOMMUFD_PT(pt %d)", ptId);
            return attach.get(U32, ATTACH_PT_ID);
        }
    }

    /** Detaches the RID (DMA is blocked). */
    public void detach() {
        detach(0, 0);
    }

    /** Detaches {@code pasid}. */
    public void detachPasid(int pasid) {
        detach(DETACH_FLAG_PASID, pasid);
    }

    private void detach(int flags, int pasid) {
        ensureBound();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment detach = arena.allocate(DETACH_BYTES, 8);
            detach.set(U32, 0, DETACH_BYTES);
            detach.set(U32, 4, flags);
            detach.set(U32, DETACH_PASID, pasid);
            check(LinuxSyscalls.ioctl(deviceFd, DETACH_IOMMUFD_PT, detach.address()), "VFIO_DEVICE_DETACH_IOMMUFD_PT");
        }
    }

    /** The fd's number may belong to another file once closed: refuse before any ioctl. */
    private synchronized void ensureBound() {
        if (closed) {
            throw IommufdException.of(Errno.EBADF, "%s is unbound", path);
        }
    }

    private void check(long rc, String format, Object... args) {
        if (rc < 0) {
            throw KernelIommufd.failure((int) -rc, path + ": " + format, args);
        }
    }

    /** Unbinds: closes the device fd (the kernel detaches and unbinds the device). */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            LinuxSyscalls.close(deviceFd);
        }
    }
}
