package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;
import dev.jiommu.iommu.IommuPagingDomain;
import dev.jiommu.mem.UserMemory;

/**
 * VFIO type1 / type1v2 container emulation on an iommufd context (iommufd-uapi.md §7): the legacy
 * container ioctls, answered against the compat IOAS.
 */
final class VfioCompat implements VfioContainer {
    private final IommufdContext context;

    VfioCompat(IommufdContext context) {
        this.context = context;
    }

    @Override
    public int apiVersion() {
        return VFIO_API_VERSION;
    }

    @Override
    public int checkExtension(int extension) {
        return context.locked(() -> switch (extension) {
            case TYPE1_IOMMU, TYPE1V2_IOMMU, UNMAP_ALL -> 1;
            case DMA_CC_IOMMU -> {
                Ioas ioas = context.compatIoas();
                boolean all = true;
                for (HwptPaging hwpt : ioas.hwpts) {
                    all &= hwpt.enforceCacheCoherency;
                }
                yield all ? 1 : 0;
            }
            default -> 0;
        });
    }

    @Override
    public void setIommu(int type) {
        context.lockedRun(() -> {
            // The type is checked before the compat IOAS is looked up, as vfio_compat.c does.
            if (type != TYPE1_IOMMU && type != TYPE1V2_IOMMU) {
                throw IommufdException.of(Errno.EINVAL, "set_iommu: type %d is neither TYPE1 nor TYPE1v2", type);
            }
            Ioas ioas = context.compatIoas();
            if (type == TYPE1_IOMMU) {
                ioas.iopt.hugePages(false);
            }
        });
    }

    @Override
    public Info info() {
        return context.locked(() -> {
            Ioas ioas = context.compatIoas();
            long sizes = -1L;
            for (IommuPagingDomain d : ioas.iopt.domains()) {
                sizes &= d.pageSizes();
            }
            // With no domain nothing limits the sizes: every power of two from the CPU page up.
            // Sizes below the CPU page fold into it; the result is never below the IOAS alignment.
            if ((sizes & (UserMemory.PAGE_BYTES - 1)) != 0) {
                sizes = (sizes & -UserMemory.PAGE_BYTES) | UserMemory.PAGE_BYTES;
            }
            sizes &= -ioas.iopt.alignment();
            return new Info(sizes, ioas.iopt.usableRanges(), -1);
        });
    }

    @Override
    public void mapDma(int flags, long vaddr, long iova, long sizeBytes) {
        context.lockedRun(() -> {
            if ((flags & ~(DMA_MAP_READ | DMA_MAP_WRITE)) != 0) {
                throw IommufdException.of(Errno.EINVAL, "map_dma: flags 0x%x unknown", flags);
            }
            Ioas ioas = context.compatIoas();
            int mapFlags = Iommufd.MAP_FIXED_IOVA | ((flags & DMA_MAP_READ) != 0 ? Iommufd.MAP_READABLE : 0)
                    | ((flags & DMA_MAP_WRITE) != 0 ? Iommufd.MAP_WRITEABLE : 0);
            if (sizeBytes == 0) {
                throw IommufdException.of(Errno.EINVAL, "map_dma: zero size");
            }
            if (Long.compareUnsigned(vaddr + sizeBytes, vaddr) < 0 || Long.compareUnsigned(iova + sizeBytes - 1, iova) < 0) {
                throw IommufdException.of(Errno.EOVERFLOW, "map_dma vaddr=0x%x iova=0x%x size=0x%x: wraps", vaddr, iova, sizeBytes);
            }
            IoptPages pages = new IoptPages(context.userMemory(), vaddr, sizeBytes, (flags & DMA_MAP_WRITE) != 0,
                    context.accounting(), PinAccounting.Mode.MM);
            context.mapPages(ioas, mapFlags, pages, sizeBytes, iova, vaddr);
        });
    }

    @Override
    public long unmapDma(int flags, long iova, long sizeBytes) {
        return context.locked(() -> {
            if ((flags & ~DMA_UNMAP_FLAG_ALL) != 0) {
                throw IommufdException.of(Errno.EINVAL, "unmap_dma: flags 0x%x unknown", flags);
            }
            Ioas ioas = context.compatIoas();
            if ((flags & DMA_UNMAP_FLAG_ALL) != 0) {
                if (iova != 0 || sizeBytes != 0) {
                    throw IommufdException.of(Errno.EINVAL, "unmap_dma ALL: iova and size must be 0");
                }
                return ioas.iopt.unmap(0, -1L, true);
            }
            // From here on a failure still reports the bytes unmapped before it (possibly 0): the
            // kernel writes size back whatever iopt_unmap_iova returned.
            if (sizeBytes == 0) {
                throw IommufdException.of(Errno.EINVAL, "unmap_dma: zero size").withProgressBytes(0);
            }
            long last = iova + sizeBytes - 1;
            if (Long.compareUnsigned(last, iova) < 0) {
                throw IommufdException.of(Errno.EOVERFLOW, "unmap_dma iova=0x%x size=0x%x: wraps", iova, sizeBytes)
                        .withProgressBytes(0);
            }
            if (!ioas.iopt.hugePages()) {
                // Type1 (v1) lets a caller unmap any part of a mapping: cut the areas at the ends first.
                ioas.iopt.cut(iova);
                if (last != -1L) {
                    ioas.iopt.cut(last + 1);
                }
            }
            try {
                return ioas.iopt.unmap(iova, last, false);
            } catch (IommufdException e) {
                if (e.errno() == Errno.ENOENT && !ioas.iopt.hasAreaIn(iova, last)) {
                    return 0L; // unmapping nothing is success here, unlike IOAS_UNMAP
                }
                throw e;
            }
        });
    }
}
