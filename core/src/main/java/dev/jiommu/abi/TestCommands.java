package dev.jiommu.abi;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommufd.IommufdSelftest;
import dev.jiommu.mem.DmaBuf;

/**
 * The handler of IOMMU_TEST_CMD (the kernel's selftest.c, iommufd-uapi.md §8.2): one operation per
 * call, its arguments in the union member the operation names. Access operations name the access
 * by its fd, resolved in the caller's fd table (an fd that is not an access is EBADFD, as
 * selftest.c says); DMABUF_GET answers with a new fd as the ioctl's return value.
 */
final class TestCommands {
    private final TestCmdStruct test = new TestCmdStruct();

    long testCmd(AbiCall call) {
        TestCmdStruct s = test.wrap(call.struct(), 0);
        IommufdSelftest selftest = call.iommufd().selftest();
        switch (s.op()) {
            case TestCmdStruct.OP_ADD_RESERVED -> selftest.addReserved(s.id(), s.addReservedStart(), s.addReservedLengthBytes());
            case TestCmdStruct.OP_MOCK_DOMAIN, TestCmdStruct.OP_MOCK_DOMAIN_FLAGS -> {
                IommufdSelftest.MockDomain md = s.op() == TestCmdStruct.OP_MOCK_DOMAIN_FLAGS
                        ? selftest.mockDomainFlags(s.id(), s.mockDomainFlagsDevFlags()) : selftest.mockDomain(s.id());
                s.mockDomainOutStdevId(md.stdevId()).mockDomainOutHwptId(md.hwptId()).mockDomainOutIdevId(md.idevId());
                call.respond();
                call.undoIfUnanswered(IoctlTable.DESTROY_OBJECT, md.stdevId(), 0);
            }
            case TestCmdStruct.OP_MOCK_DOMAIN_REPLACE -> {
                s.mockDomainReplacePtId(selftest.mockDomainReplace(s.id(), s.mockDomainReplacePtId()));
                call.respond();
            }
            case TestCmdStruct.OP_MD_CHECK_MAP -> selftest.mdCheckMap(s.id(), s.checkMapIova(), s.checkMapLengthBytes(), s.checkMapUptr());
            case TestCmdStruct.OP_MD_CHECK_REFS -> selftest.mdCheckRefs(s.checkRefsUptr(), s.checkRefsLengthBytes(), s.checkRefsRefs());
            case TestCmdStruct.OP_CREATE_ACCESS -> createAccess(call, s, selftest);
            case TestCmdStruct.OP_DESTROY_ACCESS_PAGES -> selftest.destroyAccessPages(access(call, s.id()), s.destroyAccessPagesId());
            case TestCmdStruct.OP_ACCESS_PAGES -> accessPages(call, s, selftest);
            case TestCmdStruct.OP_ACCESS_RW -> {
                checkAccessArguments(s.accessRwLengthBytes(), s.accessRwFlags(),
                        IommufdSelftest.ACCESS_RW_WRITE | IommufdSelftest.ACCESS_RW_SLOW_PATH | IommufdSelftest.FLAGS_SYZ, "access_rw");
                selftest.accessRw(access(call, s.id()), s.accessRwIova(), s.accessRwLengthBytes(), s.accessRwUptr(), s.accessRwFlags());
            }
            // The limit is a u32; the typed call takes an int, and any value above 2^31 is as good as 2^31 - 1.
            case TestCmdStruct.OP_SET_TEMP_MEMORY_LIMIT -> selftest.setTempMemoryLimit((int) Math.min(s.memoryLimitBytes(), Integer.MAX_VALUE));
            case TestCmdStruct.OP_ACCESS_REPLACE_IOAS -> selftest.accessReplaceIoas(access(call, s.id()), s.accessReplaceIoasIoasId());
            case TestCmdStruct.OP_DIRTY -> {
                s.dirtyOutNrDirty(selftest.dirty(s.id(), s.dirtyFlags(), s.dirtyIova(), s.dirtyLengthBytes(), s.dirtyPageSizeBytes(),
                        s.dirtyUptr()));
                call.respond();
            }
            case TestCmdStruct.OP_MD_CHECK_IOTLB -> selftest.mdCheckIotlb(s.id(), s.checkIotlbId(), s.checkIotlbIotlb());
            case TestCmdStruct.OP_TRIGGER_IOPF -> selftest.triggerIopf(s.triggerIopfDevId(), s.triggerIopfPasid(), s.triggerIopfGrpid(),
                    s.triggerIopfPerm(), s.triggerIopfAddr());
            case TestCmdStruct.OP_DEV_CHECK_CACHE -> selftest.devCheckCache(s.id(), s.checkDevCacheId(), s.checkDevCacheCache());
            case TestCmdStruct.OP_TRIGGER_VEVENT -> selftest.triggerVevent(s.triggerVeventDevId());
            case TestCmdStruct.OP_PASID_ATTACH -> {
                s.pasidAttachPtId(selftest.pasidAttach(s.id(), s.pasidAttachPasid(), s.pasidAttachPtId()));
                call.respond();
                call.undoIfUnanswered(IoctlTable.PASID_DETACH, s.id(), s.pasidAttachPasid());
            }
            case TestCmdStruct.OP_PASID_REPLACE -> {
                s.pasidAttachPtId(selftest.pasidReplace(s.id(), s.pasidAttachPasid(), s.pasidAttachPtId()));
                call.respond();
            }
            case TestCmdStruct.OP_PASID_DETACH -> selftest.pasidDetach(s.id(), s.pasidDetachPasid());
            case TestCmdStruct.OP_PASID_CHECK_HWPT -> selftest.pasidCheckHwpt(s.id(), s.pasidCheckPasid(), s.pasidCheckHwptId());
            case TestCmdStruct.OP_DMABUF_GET -> {
                // The fd is the ioctl's value (the 7.3.4 tree returns 0 here by mistake; the selftest expects the fd).
                return call.fds().install(selftest.dmabufGet(s.dmabufGetLengthBytes()));
            }
            case TestCmdStruct.OP_DMABUF_REVOKE -> {
                if (!(call.fds().lookup(s.dmabufRevokeFd()) instanceof DmaBuf buf)) {
                    throw ErrnoException.of(Errno.EINVAL, "dmabuf_revoke: fd %d is not a dma-buf", s.dmabufRevokeFd());
                }
                selftest.dmabufRevoke(buf, s.dmabufRevokeRevoked() != 0);
            }
            default -> throw ErrnoException.of(Errno.EOPNOTSUPP, "test_cmd: op %d unknown", s.op());
        }
        return 0;
    }

    private static void createAccess(AbiCall call, TestCmdStruct s, IommufdSelftest selftest) {
        int handle = selftest.createAccess(s.id(), s.createAccessFlags());
        int fd;
        try {
            fd = call.fds().install(new FdTable.SelftestAccess(selftest, handle));
        } catch (ErrnoException e) {
            selftest.closeAccess(handle);
            throw e;
        }
        s.createAccessOutAccessFd(fd);
        call.respond();
        call.undoIfUnanswered(IoctlTable.CLOSE_FD_AND_DESTROY, fd, 0);
    }

    private static void accessPages(AbiCall call, TestCmdStruct s, IommufdSelftest selftest) {
        checkAccessArguments(s.accessPagesLengthBytes(), s.accessPagesFlags(),
                IommufdSelftest.ACCESS_PAGES_WRITE | IommufdSelftest.FLAGS_SYZ, "access_pages");
        int handle = access(call, s.id());
        int item = selftest.accessPages(handle, s.accessPagesFlags(), s.accessPagesIova(), s.accessPagesLengthBytes(), s.accessPagesUptr());
        s.accessPagesOutAccessPagesId(item);
        call.respond();
        call.undoIfUnanswered(IoctlTable.DESTROY_ACCESS_PAGES, handle, item);
    }

    /** selftest.c refuses a long request (ENOMEM) and unknown flags (EOPNOTSUPP) before it looks at the fd. */
    private static void checkAccessArguments(long lengthBytes, int flags, int known, String what) {
        if (Long.compareUnsigned(lengthBytes, IommufdSelftest.ACCESS_MAX_BYTES) > 0) {
            throw ErrnoException.of(Errno.ENOMEM, "%s: length 0x%x above 16 MiB", what, lengthBytes);
        }
        if ((flags & ~known) != 0) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "%s: unknown flags 0x%x", what, flags & ~known);
        }
    }

    /** {@return the typed handle of the access behind {@code fd}} EBADFD when it is not an open access */
    private static int access(AbiCall call, int fd) {
        Object file;
        try {
            file = call.fds().lookup(fd);
        } catch (ErrnoException e) {
            if (e.errno() != Errno.EBADF) {
                throw e;
            }
            throw ErrnoException.of(Errno.EBADFD, "fd %d is not open", fd);
        }
        // An access of another context cannot be reached through this one's handles.
        if (!(file instanceof FdTable.SelftestAccess access) || access.selftest() != call.iommufd().selftest()) {
            throw ErrnoException.of(Errno.EBADFD, "fd %d is not a selftest access of this iommufd", fd);
        }
        return access.handle();
    }
}
