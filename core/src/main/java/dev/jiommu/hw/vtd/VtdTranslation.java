package dev.jiommu.hw.vtd;

import dev.jiommu.hw.TagCache;
import dev.jiommu.hw.Translator;
import dev.jiommu.hw.vtd.spec.ContextEntry;
import dev.jiommu.hw.vtd.spec.EcapReg;
import dev.jiommu.hw.vtd.spec.FaultReason;
import dev.jiommu.hw.vtd.spec.InvDesc;
import dev.jiommu.hw.vtd.spec.PasidDirEntry;
import dev.jiommu.hw.vtd.spec.PasidEntry;
import dev.jiommu.hw.vtd.spec.RootEntry;
import dev.jiommu.hw.vtd.spec.ScalableContextEntry;
import dev.jiommu.mem.BadPhysicalAddressException;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.pt.Access;
import dev.jiommu.pt.PageTableFormat;
import dev.jiommu.pt.PageTableWalker;
import dev.jiommu.pt.WalkResult;
import dev.jiommu.pt.WalkStatus;
import dev.jiommu.pt.format.VtdSecondStage;
import dev.jiommu.pt.format.X86_64;

/**
 * The translation side of a VT-d unit: root, context and PASID structures, the second-stage,
 * first-stage and nested walks, and the three caches they fill (context cache, PASID cache,
 * IOTLB). Only invalidations drop cache entries (besides capacity eviction), so software that
 * forgets one sees stale translations, as on hardware.
 *
 * <p>Not thread-safe: {@link VtdUnit} calls it under its lock. The outcome of the last
 * {@link #translate} is in this object's result fields.
 */
final class VtdTranslation {
    /* Implementation notes
     *
     * IOTLB entries are tagged (DID << 32 | PASID + 1, IOVA >> size << 2 | size code) and describe
     * the whole leaf that translated (base, size): one entry per 4 KiB, 2 MiB or 1 GiB leaf, as
     * hardware holds large pages. A lookup probes the 4 KiB tag, then 2 MiB, then 1 GiB. An
     * invalidation drops every entry whose leaf overlaps its range: a page-selective invalidation
     * of one 4 KiB page inside a 2 MiB leaf drops the 2 MiB translation, and a range covering a
     * whole 2 MiB or 1 GiB leaf drops it too.
     *
     * Faults are not cached, except not-present second-stage entries under caching mode (CAP.CM),
     * as hardware may; pass-through
     * needs no IOTLB entry. The one paging-structure cache is the nested one (stage-2 translations
     * of first-stage table pages), where a miss would otherwise cost 24 reads; first- and
     * second-stage walks otherwise start from their root.
     */

    static final int KIND_SS = 0;
    static final int KIND_FS = 1;
    static final int KIND_NESTED = 2;

    /** A cached context entry, legacy or scalable. Immutable. */
    static final class Ctx {
        final int sid;
        final boolean scalable;
        final boolean fpd;
        // legacy
        final int did;
        final int tt;
        final PageTableFormat ss;
        final long slptptr;
        // scalable
        final long pasidDir;
        final long pasidLimit;
        final int ridPasid;
        final boolean paside;
        final boolean dte;
        final boolean pre;

        Ctx(int sid, boolean scalable, boolean fpd, int did, int tt, PageTableFormat ss, long slptptr, long pasidDir, long pasidLimit,
                int ridPasid, boolean paside, boolean dte, boolean pre) {
            this.sid = sid;
            this.scalable = scalable;
            this.fpd = fpd;
            this.did = did;
            this.tt = tt;
            this.ss = ss;
            this.slptptr = slptptr;
            this.pasidDir = pasidDir;
            this.pasidLimit = pasidLimit;
            this.ridPasid = ridPasid;
            this.paside = paside;
            this.dte = dte;
            this.pre = pre;
        }

        boolean deviceTlbAllowed() {
            return scalable ? dte : tt == ContextEntry.TT_DEVICE_TLB;
        }
    }

    /** A cached PASID-table entry. Immutable. */
    static final class PasidCtx {
        final int sid;
        final int pasid;
        final int did;
        final int pgtt;
        final boolean fpd;
        final PageTableFormat ss;
        final long ssptptr;
        final boolean ssade;
        final PageTableFormat fs;
        final long fsptptr;
        final boolean sre;
        /** Write-protect enable: supervisor writes honour the first stage's R/W bit. */
        final boolean wpe;

        PasidCtx(int sid, int pasid, int did, int pgtt, boolean fpd, PageTableFormat ss, long ssptptr, boolean ssade, PageTableFormat fs,
                long fsptptr, boolean sre, boolean wpe) {
            this.wpe = wpe;
            this.sid = sid;
            this.pasid = pasid;
            this.did = did;
            this.pgtt = pgtt;
            this.fpd = fpd;
            this.ss = ss;
            this.ssptptr = ssptptr;
            this.ssade = ssade;
            this.fs = fs;
            this.fsptptr = fsptptr;
            this.sre = sre;
        }
    }

    /** A cached final translation of one leaf. Immutable. */
    static final class IotlbEntry {
        final int did;
        /** The PASID the entry was filled for, or -1 (legacy). */
        final int pasid;
        final int kind;
        final long iovaBase;
        final int shift;
        final long paBase;
        final int perms;
        /** Writes may use the entry: the leaf is already dirty, or nothing tracks dirtiness. */
        final boolean writeReady;
        /** A cached not-present second-stage translation (caching mode only): the page faults until invalidated. */
        final boolean negative;

        IotlbEntry(int did, int pasid, int kind, long iovaBase, int shift, long paBase, int perms, boolean writeReady) {
            this(did, pasid, kind, iovaBase, shift, paBase, perms, writeReady, false);
        }

        IotlbEntry(int did, int pasid, int kind, long iovaBase, int shift, long paBase, int perms, boolean writeReady, boolean negative) {
            this.did = did;
            this.pasid = pasid;
            this.kind = kind;
            this.iovaBase = iovaBase;
            this.shift = shift;
            this.paBase = paBase;
            this.perms = perms;
            this.writeReady = writeReady;
            this.negative = negative;
        }

        boolean overlaps(long first, long last) {
            long end = iovaBase + (1L << shift) - 1;
            return Long.compareUnsigned(iovaBase, last) <= 0 && Long.compareUnsigned(end, first) >= 0;
        }
    }

    private final PhysicalMemory memory;
    private final VtdConfig config;
    private final PageTableWalker walker;
    private final WalkResult walk = new WalkResult();
    private final WalkResult s2 = new WalkResult();
    private final PageTableFormat[] ssFormats = new PageTableFormat[6];
    private final PageTableFormat fs4 = new X86_64(4, true);
    private final PageTableFormat fs5 = new X86_64(5, true);
    private final int mgawBits;
    final TagCache<Ctx> contextCache;
    final TagCache<PasidCtx> pasidCache;
    final TagCache<IotlbEntry> iotlb;
    /**
     * The nested paging-structure cache: the stage-2 translation of a first-stage table page,
     * tagged (nested DID, GPA page) and holding {host page, stage-2 writable, DID}. Dropped by IOTLB
     * invalidations of the DID (any granularity: hardware may drop more than asked), never by
     * PASID-based ones, which concern the first stage only.
     */
    final TagCache<long[]> nestedWalkCache;
    long nestedWalkCacheHits;
    long walks;
    long tableReads;
    long iotlbHits;
    long iotlbMisses;
    /** Translations served by the last-requester register: each a context-cache hit (and a PASID-cache hit when scalable). */
    long lastRequesterHits;

    // ---- the last requester's resolved structures (valid until a context or PASID invalidation) ----
    private int memoSid = -1;
    private int memoPasid;
    private int memoEffectivePasid;
    private boolean memoFpd;
    private Ctx memoCtx;
    private PasidCtx memoPc;
    /** The IOTLB tag of the last requester's translations, or {@link #NO_TAG} (pass-through). */
    private long memoIotlbTag = NO_TAG;
    private static final long NO_TAG = -1L;

    // ---- result of the last translate ----
    /** Physical address of the request's first byte. */
    long pa;
    /** Bytes from {@code pa} to the end of the translated page. */
    long bytesLeftInPage;
    int perms;
    /** Whether the failing structure had fault processing disabled. */
    boolean fpd;
    /** The PASID to record with a fault, or -1. */
    int faultPasid;
    /** The context that translated (for device-TLB and page-request checks), or null. */
    Ctx ctx;

    VtdTranslation(PhysicalMemory memory, VtdConfig config) {
        this.memory = memory;
        this.config = config;
        this.walker = new PageTableWalker(memory);
        for (int levels = 3; levels <= 5; levels++) {
            ssFormats[levels] = new VtdSecondStage(levels);
        }
        this.mgawBits = config.cap().mgawBits();
        this.contextCache = new TagCache<>(config.contextCacheEntries());
        this.pasidCache = new TagCache<>(config.pasidCacheEntries());
        this.iotlb = new TagCache<>(config.iotlbEntries());
        this.nestedWalkCache = config.nestedWalkCacheEntries() > 0 ? new TagCache<>(config.nestedWalkCacheEntries()) : null;
    }

    /**
     * Translates one request; {@return 0, or the fault reason code}.
     *
     * @param rootTable the latched root table address
     * @param scalable  whether the root table is a scalable-mode one
     */
    int translate(long rootTable, boolean scalable, int sid, int pasid, long iova, int access) {
        // The hit path, kept small so that it inlines into the DMA loop: the last requester again,
        // a user request, and a 4 KiB IOTLB entry that allows it.
        if (sid == memoSid && pasid == memoPasid && memoIotlbTag != NO_TAG && (access & Access.PRIV) == 0) {
            IotlbEntry e = iotlb.find(memoIotlbTag, (iova >>> 12) << 2);
            if (e != null && usable(e, access)) {
                faultPasid = pasid;
                fpd = memoFpd;
                ctx = memoCtx;
                lastRequesterHits++;
                iotlbHits++;
                return hit(e, iova);
            }
        }
        return translateFully(rootTable, scalable, sid, pasid, iova, access);
    }

    /**
     * The IOTLB entry that serves a request on the DMA fast path, or null: the last requester
     * again, a user request, and a cached leaf (any size) that allows it. Reads only (no counter,
     * no result field, no cache change), so holders of the unit lock's shared side may call it
     * together; the caller counts the hit.
     */
    IotlbEntry sharedHit(int sid, int pasid, long iova, int access) {
        if (sid != memoSid || pasid != memoPasid || memoIotlbTag == NO_TAG || (access & Access.PRIV) != 0) {
            return null;
        }
        IotlbEntry e = lookup(memoIotlbTag, iova);
        return e != null && !e.negative && usable(e, access) ? e : null;
    }

    private int translateFully(long rootTable, boolean scalable, int sid, int pasid, long iova, int access) {
        faultPasid = pasid;
        Ctx c;
        PasidCtx pc;
        int p;
        if (sid == memoSid && pasid == memoPasid) {
            // The last requester's structures, as held in the unit's last-used register.
            c = memoCtx;
            pc = memoPc;
            p = memoEffectivePasid;
            fpd = memoFpd;
            ctx = c;
            lastRequesterHits++;
        } else {
            fpd = false;
            c = contextCache.get(sid, 0);
            if (c == null) {
                int r = scalable ? loadScalableContext(rootTable, sid) : loadLegacyContext(rootTable, sid);
                if (r != 0) {
                    ctx = null;
                    return r;
                }
                c = ctx;
            }
            ctx = c;
            fpd = c.fpd;
            pc = null;
            p = -1;
            if (!c.scalable) {
                if (pasid != Translator.NO_PASID) {
                    return FaultReason.TRANSLATION_TYPE_BLOCKED.code();
                }
            } else {
                p = pasid == Translator.NO_PASID ? c.ridPasid : pasid;
                if (pasid != Translator.NO_PASID && !c.paside) {
                    return FaultReason.SM_PASIDE_CLEAR.code();
                }
                if (Long.compareUnsigned(p, c.pasidLimit) >= 0) {
                    return FaultReason.SM_PASID_BEYOND_PDTS.code();
                }
                pc = pasidCache.get(sid, p);
                if (pc == null) {
                    int r = loadPasidEntry(c, sid, p);
                    if (r != 0) {
                        return r;
                    }
                    pc = loadedPasid;
                }
                fpd |= pc.fpd;
            }
            memoSid = sid;
            memoPasid = pasid;
            memoCtx = c;
            memoPc = pc;
            memoEffectivePasid = p;
            memoFpd = fpd;
            if (pc == null) {
                memoIotlbTag = c.tt == ContextEntry.TT_PASS_THROUGH ? NO_TAG : (long) c.did << 32;
            } else {
                memoIotlbTag = pc.pgtt == PasidEntry.PGTT_PASS_THROUGH ? NO_TAG : ((long) pc.did << 32) | (p + 1);
            }
        }
        if (pc == null) {
            if (c.tt == ContextEntry.TT_PASS_THROUGH) {
                return identity(iova);
            }
            IotlbEntry e = lookup((long) c.did << 32, iova);
            if (e != null && usable(e, access)) {
                iotlbHits++;
                return hit(e, iova);
            }
            if (e != null && e.negative) {
                iotlbHits++;
                return legacyReason(WalkStatus.NOT_PRESENT, access);
            }
            iotlbMisses++;
            WalkStatus st = walker.walk(c.ss, c.slptptr, iova, access, 0, walk);
            count(walk);
            if (st != WalkStatus.OK) {
                cacheNotPresent(st, c.did, -1, iova);
                return legacyReason(st, access);
            }
            return fill(c.did, -1, KIND_SS, iova, walk.outputAddress(), walk.leafShift(), walk.perms(), true);
        }
        if (pc.pgtt == PasidEntry.PGTT_PASS_THROUGH) {
            return identity(iova);
        }
        boolean priv = (access & Access.PRIV) != 0 && pasid != Translator.NO_PASID;
        if (priv && !pc.sre && pc.pgtt != PasidEntry.PGTT_SECOND_STAGE) {
            return FaultReason.SM_SUPERVISOR_BLOCKED.code();
        }
        if (!priv) {
            access &= ~Access.PRIV;
        }
        IotlbEntry e = lookup(((long) pc.did << 32) | (p + 1), iova);
        if (e != null && usable(e, access)) {
            iotlbHits++;
            return hit(e, iova);
        }
        if (e != null && e.negative) {
            iotlbHits++;
            return ssReason(WalkStatus.NOT_PRESENT);
        }
        iotlbMisses++;
        int ssFlags = pc.ssade ? PageTableWalker.UPDATE_ACCESSED | PageTableWalker.UPDATE_DIRTY : 0;
        switch (pc.pgtt) {
            case PasidEntry.PGTT_SECOND_STAGE -> {
                WalkStatus st = walker.walk(pc.ss, pc.ssptptr, iova, access, ssFlags, walk);
                count(walk);
                if (st != WalkStatus.OK) {
                    cacheNotPresent(st, pc.did, p, iova);
                    return ssReason(st);
                }
                boolean ready = !pc.ssade || pc.ss.dirty(walk.entry());
                return fill(pc.did, p, KIND_SS, iova, walk.outputAddress(), walk.leafShift(), walk.perms(), ready);
            }
            case PasidEntry.PGTT_FIRST_STAGE -> {
                WalkStatus st = walker.walk(pc.fs, pc.fsptptr, iova, access,
                        PageTableWalker.UPDATE_ACCESSED | PageTableWalker.UPDATE_DIRTY, walk);
                count(walk);
                if (st == WalkStatus.PERMISSION && priv && !pc.wpe && (access & Access.WRITE) != 0
                        && (Access.requiredPerms(access) & ~walk.perms()) == PageTableFormat.PERM_WRITE) {
                    return supervisorWriteWithoutWriteProtect(pc, iova, access);
                }
                if (st != WalkStatus.OK) {
                    return fsReason(st, walk.perms(), access);
                }
                return fill(pc.did, p, KIND_FS, iova, walk.outputAddress(), walk.leafShift(), walk.perms(), pc.fs.dirty(walk.entry()));
            }
            default -> {
                return nested(pc, p, iova, access, ssFlags);
            }
        }
    }

    /**
     * A supervisor write to a read-only first-stage page with WPE clear: allowed, as with CR0.WP = 0
     * on the CPU. The page is walked as a read, its D bit set, and the translation not cached, so
     * a user write never finds a writable entry for it.
     */
    private int supervisorWriteWithoutWriteProtect(PasidCtx pc, long iova, int access) {
        WalkStatus st = walker.walk(pc.fs, pc.fsptptr, iova, access & ~Access.WRITE,
                PageTableWalker.UPDATE_ACCESSED | PageTableWalker.UPDATE_DIRTY, walk);
        count(walk);
        if (st != WalkStatus.OK) {
            return fsReason(st, walk.perms(), access);
        }
        long leaf = walk.entry();
        memory.compareAndSet64(walk.entryAddress(), leaf, pc.fs.dirtyEntry(leaf));
        long offset = iova & ((1L << walk.leafShift()) - 1);
        pa = walk.outputAddress();
        bytesLeftInPage = (1L << walk.leafShift()) - offset;
        perms = walk.perms() | PageTableFormat.PERM_WRITE;
        return 0;
    }

    /** Forgets the last requester's structures: any context or PASID invalidation may have changed them. */
    void forgetLastRequester() {
        memoSid = -1;
        memoIotlbTag = NO_TAG;
        memoCtx = null;
        memoPc = null;
    }

    /** Drops every cached structure and translation (SRTP with CAP.ESRTPS). */
    void clearAll() {
        contextCache.clear();
        pasidCache.clear();
        iotlb.clear();
        if (nestedWalkCache != null) {
            nestedWalkCache.clear();
        }
        forgetLastRequester();
    }

    /** {@return the context of {@code sid} (cached or loaded), or null when it faults} */
    Ctx context(long rootTable, boolean scalable, int sid) {
        Ctx c = contextCache.get(sid, 0);
        if (c != null) {
            return c;
        }
        int r = scalable ? loadScalableContext(rootTable, sid) : loadLegacyContext(rootTable, sid);
        return r == 0 ? ctx : null;
    }

    /** {@return the IOTLB entry translating {@code iova} for {@code tag}: the 4 KiB, 2 MiB or 1 GiB leaf's} */
    private IotlbEntry lookup(long tag, long iova) {
        IotlbEntry e = iotlb.find(tag, (iova >>> 12) << 2);
        if (e == null) {
            e = iotlb.find(tag, (iova >>> 21) << 2 | 1);
            if (e == null) {
                e = iotlb.find(tag, (iova >>> 30) << 2 | 2);
            }
        }
        return e;
    }

    private static long pageTag(long iova, int shift) {
        return shift >= 30 ? (iova >>> 30) << 2 | 2 : shift >= 21 ? (iova >>> 21) << 2 | 1 : (iova >>> 12) << 2;
    }

    private static boolean usable(IotlbEntry e, int access) {
        int required = Access.requiredPerms(access);
        return (required & ~e.perms) == 0 && ((access & Access.WRITE) == 0 || e.writeReady);
    }

    private int hit(IotlbEntry e, long iova) {
        long offset = iova - e.iovaBase;
        pa = e.paBase + offset;
        bytesLeftInPage = (1L << e.shift) - offset;
        perms = e.perms;
        return 0;
    }

    private int identity(long iova) {
        if (mgawBits < 64 && (iova >>> mgawBits) != 0) {
            return FaultReason.ADDRESS_BEYOND_MGAW.code();
        }
        pa = iova;
        bytesLeftInPage = 4096 - (iova & 0xfff);
        perms = PageTableFormat.PERM_ALL;
        return 0;
    }

    private int fill(int did, int pasid, int kind, long iova, long outputAddress, int shift, int grantedPerms, boolean writeReady) {
        long base = iova & -(1L << shift);
        long paBase = outputAddress - (iova - base);
        IotlbEntry e = new IotlbEntry(did, pasid, kind, base, shift, paBase, grantedPerms, writeReady);
        long tag = ((long) did << 32) | (pasid + 1);
        // A fill follows a miss: whatever the three tags of this address hold is unusable (a read-only
        // or not-yet-dirty leaf), so it makes way, even when the new leaf has another size.
        iotlb.remove(tag, (iova >>> 12) << 2);
        iotlb.remove(tag, (iova >>> 21) << 2 | 1);
        iotlb.remove(tag, (iova >>> 30) << 2 | 2);
        iotlb.put(tag, pageTag(iova, shift), e);
        return hit(e, iova);
    }

    /**
     * Caching mode (CAP.CM) lets hardware cache not-present second-stage entries: the page then
     * faults until software invalidates it, which is why a driver must flush after every map under
     * CM. First-stage not-present entries are never cached (VT-d 4.1 §6.1).
     */
    private void cacheNotPresent(WalkStatus st, int did, int pasid, long iova) {
        if (st != WalkStatus.NOT_PRESENT || !config.cap().cachingMode()) {
            return;
        }
        long base = iova & ~0xfffL;
        long tag = ((long) did << 32) | (pasid + 1);
        iotlb.put(tag, (iova >>> 12) << 2, new IotlbEntry(did, pasid, KIND_SS, base, 12, 0, 0, false, true));
    }

    private void count(WalkResult r) {
        walks++;
        tableReads += r.tableReads();
    }

    // ---- structure loads ----

    private int loadLegacyContext(long root, int sid) {
        long rootLo;
        long rootHi;
        try {
            rootLo = memory.read64(root + (long) (sid >>> 8) * RootEntry.SIZE_BYTES);
            rootHi = memory.read64(root + (long) (sid >>> 8) * RootEntry.SIZE_BYTES + 8);
        } catch (BadPhysicalAddressException e) {
            return FaultReason.ROOT_TABLE_INVALID.code();
        }
        tableReads++;
        if (!RootEntry.present(rootLo)) {
            return FaultReason.ROOT_NOT_PRESENT.code();
        }
        if ((rootLo & RootEntry.LEGACY_LO_RESERVED) != 0 || rootHi != 0) {
            return FaultReason.ROOT_RESERVED.code();
        }
        ContextEntry ce;
        try {
            long at = RootEntry.pointer(rootLo) + (long) (sid & 0xff) * ContextEntry.SIZE_BYTES;
            ce = new ContextEntry(memory.read64(at), memory.read64(at + 8));
        } catch (BadPhysicalAddressException e) {
            return FaultReason.CONTEXT_TABLE_INVALID.code();
        }
        tableReads++;
        if (!ce.present()) {
            return FaultReason.CONTEXT_NOT_PRESENT.code();
        }
        fpd = ce.faultProcessingDisable();
        if (ce.reservedBitsSet()) {
            return FaultReason.CONTEXT_RESERVED.code();
        }
        int tt = ce.translationType();
        PageTableFormat ss = null;
        if (tt == ContextEntry.TT_PASS_THROUGH) {
            if (!config.ecap().has(EcapReg.PT)) {
                return FaultReason.CONTEXT_INVALID.code();
            }
        } else if (tt == ContextEntry.TT_DEVICE_TLB && !config.ecap().has(EcapReg.DT) || tt == 3) {
            return FaultReason.CONTEXT_INVALID.code();
        } else {
            ss = ssFormat(ce.aw());
            if (ss == null) {
                return FaultReason.CONTEXT_INVALID.code();
            }
        }
        if (ce.did() >= (1 << config.cap().domainIdBits())) {
            return FaultReason.CONTEXT_INVALID.code();
        }
        ctx = new Ctx(sid, false, ce.faultProcessingDisable(), ce.did(), tt, ss, ce.slptptr(), 0, 0, 0, false, false, false);
        contextCache.put(sid, 0, ctx);
        return 0;
    }

    private int loadScalableContext(long root, int sid) {
        int devfn = sid & 0xff;
        long half;
        try {
            half = memory.read64(root + (long) (sid >>> 8) * RootEntry.SIZE_BYTES + (devfn >= 128 ? 8 : 0));
        } catch (BadPhysicalAddressException e) {
            return FaultReason.ROOT_TABLE_INVALID.code();
        }
        tableReads++;
        if (!RootEntry.present(half)) {
            return FaultReason.ROOT_NOT_PRESENT.code();
        }
        if ((half & RootEntry.LEGACY_LO_RESERVED) != 0) {
            return FaultReason.ROOT_RESERVED.code();
        }
        ScalableContextEntry ce;
        try {
            long at = RootEntry.pointer(half) + (long) (devfn & 0x7f) * ScalableContextEntry.SIZE_BYTES;
            ce = new ScalableContextEntry(memory.read64(at), memory.read64(at + 8), memory.read64(at + 16), memory.read64(at + 24));
        } catch (BadPhysicalAddressException e) {
            return FaultReason.CONTEXT_TABLE_INVALID.code();
        }
        tableReads++;
        if (!ce.present()) {
            return FaultReason.CONTEXT_NOT_PRESENT.code();
        }
        fpd = ce.has(ScalableContextEntry.FPD);
        if (ce.reservedBitsSet()) {
            return FaultReason.CONTEXT_RESERVED.code();
        }
        if (ce.ridPasid() != 0 && !config.ecap().has(EcapReg.RPS)) {
            return FaultReason.SM_RID_PASID_INVALID.code();
        }
        ctx = new Ctx(sid, true, fpd, 0, 0, null, 0, ce.pasidDirectory(), ce.pasidLimit(), ce.ridPasid(), ce.has(ScalableContextEntry.PASIDE),
                ce.has(ScalableContextEntry.DTE), ce.has(ScalableContextEntry.PRE));
        contextCache.put(sid, 0, ctx);
        return 0;
    }

    private PasidCtx loadedPasid;

    private int loadPasidEntry(Ctx c, int sid, int pasid) {
        PasidDirEntry dir;
        try {
            dir = new PasidDirEntry(memory.read64(c.pasidDir + PasidDirEntry.offset(pasid)));
        } catch (BadPhysicalAddressException e) {
            return FaultReason.PASID_DIR_ACCESS.code();
        }
        tableReads++;
        if (!dir.present()) {
            return FaultReason.PASID_DIR_NOT_PRESENT.code();
        }
        fpd |= dir.faultProcessingDisable();
        PasidEntry pe;
        try {
            long at = dir.pasidTable() + PasidEntry.offset(pasid);
            pe = PasidEntry.of(memory.read64(at), memory.read64(at + 8), memory.read64(at + 16));
        } catch (BadPhysicalAddressException e) {
            return FaultReason.PASID_TABLE_ACCESS.code();
        }
        tableReads++;
        if (!pe.present()) {
            return FaultReason.PASID_ENTRY_NOT_PRESENT.code();
        }
        fpd |= pe.faultProcessingDisable();
        if (pe.reservedBitsSet()) {
            return FaultReason.PASID_ENTRY_RESERVED.code();
        }
        EcapReg ecap = config.ecap();
        int pgtt = pe.pgtt();
        boolean supported = switch (pgtt) {
            case PasidEntry.PGTT_FIRST_STAGE -> ecap.has(EcapReg.FSTS);
            case PasidEntry.PGTT_SECOND_STAGE -> ecap.has(EcapReg.SSTS);
            case PasidEntry.PGTT_NESTED -> ecap.has(EcapReg.NEST) && ecap.has(EcapReg.FSTS) && ecap.has(EcapReg.SSTS);
            case PasidEntry.PGTT_PASS_THROUGH -> ecap.has(EcapReg.PT);
            default -> false;
        };
        if (!supported) {
            return FaultReason.PASID_ENTRY_INVALID.code();
        }
        PageTableFormat ss = null;
        if (pgtt == PasidEntry.PGTT_SECOND_STAGE || pgtt == PasidEntry.PGTT_NESTED) {
            ss = ssFormat(pe.aw());
            if (ss == null) {
                return FaultReason.PASID_ENTRY_INVALID.code();
            }
        }
        if (pe.ssade() && !ecap.has(EcapReg.SSADS)) {
            return FaultReason.PASID_ENTRY_INVALID.code();
        }
        PageTableFormat fs = null;
        if (pgtt == PasidEntry.PGTT_FIRST_STAGE || pgtt == PasidEntry.PGTT_NESTED) {
            if (pe.flpm() == 0) {
                fs = fs4;
            } else if (pe.flpm() == 1 && config.cap().firstStage5Level()) {
                fs = fs5;
            } else {
                return FaultReason.PASID_ENTRY_INVALID.code();
            }
        }
        if (pe.did() >= (1 << config.cap().domainIdBits())) {
            return FaultReason.PASID_ENTRY_INVALID.code();
        }
        loadedPasid = new PasidCtx(sid, pasid, pe.did(), pgtt, fpd, ss, pe.ssptptr(), pe.ssade(), fs, pe.fsptptr(), pe.sre(), pe.wpe());
        pasidCache.put(sid, pasid, loadedPasid);
        return 0;
    }

    private PageTableFormat ssFormat(int aw) {
        int levels = aw + 2;
        if (aw < 1 || aw > 3 || (config.cap().sagaw() & (1 << aw)) == 0) {
            return null;
        }
        return ssFormats[levels];
    }

    // ---- nested walk (PGTT = 3): first-stage table addresses and output are GPAs ----

    private int nested(PasidCtx pc, int p, long iova, int access, int ssFlags) {
        PageTableFormat fs = pc.fs;
        PageTableFormat ss = pc.ss;
        boolean write = (access & Access.WRITE) != 0;
        restart:
        while (true) {
            walks++;
            if (!fs.inputValid(iova)) {
                return FaultReason.FS_NON_CANONICAL.code();
            }
            int required = Access.requiredPerms(access);
            int granted = PageTableFormat.PERM_ALL;
            int level = fs.topLevel();
            long tableGpa = pc.fsptptr;
            while (true) {
                long slotGpa = tableGpa + ((long) fs.index(iova, level) << 3);
                long slot;
                boolean s2Writable;
                long[] cached = nestedWalkCache == null ? null : nestedWalkCache.find(pc.did, slotGpa >>> 12);
                if (cached != null) {
                    nestedWalkCacheHits++;
                    slot = cached[0] + (slotGpa & 0xfff);
                    s2Writable = cached[1] != 0;
                } else {
                    WalkStatus st = walker.walk(ss, pc.ssptptr, slotGpa, Access.READ, ssFlags & PageTableWalker.UPDATE_ACCESSED, s2);
                    tableReads += s2.tableReads();
                    if (st != WalkStatus.OK) {
                        return switch (st) {
                            case ADDRESS_SIZE -> FaultReason.NESTED_FS_BEYOND_MGAW.code();
                            case NOT_PRESENT, PERMISSION -> FaultReason.NESTED_FS_READ_BLOCKED.code();
                            case RESERVED_BITS, SKIPPED_BITS_NONZERO -> FaultReason.SS_ENTRY_RESERVED.code();
                            default -> FaultReason.SS_ENTRY_ACCESS.code();
                        };
                    }
                    slot = s2.outputAddress();
                    s2Writable = (s2.perms() & PageTableFormat.PERM_WRITE) != 0;
                    if (nestedWalkCache != null) {
                        nestedWalkCache.put(pc.did, slotGpa >>> 12, new long[] {slot & ~0xfffL, s2Writable ? 1 : 0, pc.did});
                    }
                }
                long entry;
                try {
                    entry = memory.read64(slot);
                } catch (BadPhysicalAddressException e) {
                    return FaultReason.FS_ENTRY_ACCESS.code();
                }
                tableReads++;
                int kind = fs.kind(entry, level);
                if (kind == PageTableFormat.EMPTY) {
                    return FaultReason.FS_ENTRY_NOT_PRESENT.code();
                }
                if (fs.reservedBitsSet(entry, level)) {
                    return FaultReason.FS_ENTRY_RESERVED.code();
                }
                if (kind == PageTableFormat.TABLE) {
                    granted &= fs.tablePerms(entry, level);
                    long updated = fs.accessedEntry(entry, level);
                    if (updated != entry) {
                        if (!s2Writable) {
                            return FaultReason.NESTED_FS_AD_BLOCKED.code();
                        }
                        if (!memory.compareAndSet64(slot, entry, updated)) {
                            continue restart;
                        }
                    }
                    tableGpa = fs.tableAddress(entry);
                    level--;
                    continue;
                }
                granted &= fs.leafPerms(entry, level);
                int missing = required & ~granted;
                if (missing != 0) {
                    return fsPermissionReason(missing);
                }
                long updated = fs.accessedEntry(entry, level);
                if (write) {
                    updated = fs.dirtyEntry(updated);
                }
                if (updated != entry) {
                    if (!s2Writable) {
                        return FaultReason.NESTED_FS_AD_BLOCKED.code();
                    }
                    if (!memory.compareAndSet64(slot, entry, updated)) {
                        continue restart;
                    }
                }
                int fsShift = fs.leafShift(updated, level);
                long gpa = fs.leafAddress(updated, level) + (iova & ((1L << fsShift) - 1));
                WalkStatus st = walker.walk(ss, pc.ssptptr, gpa, access & ~Access.PRIV, ssFlags, s2);
                tableReads += s2.tableReads();
                if (st != WalkStatus.OK) {
                    return ssReason(st);
                }
                int shift = Math.min(fsShift, s2.leafShift());
                boolean ready = fs.dirty(updated) && (!pc.ssade || ss.dirty(s2.entry()));
                return fill(pc.did, p, KIND_NESTED, iova, s2.outputAddress(), shift, granted & s2.perms(), ready);
            }
        }
    }

    // ---- fault reasons ----

    private static int legacyReason(WalkStatus st, int access) {
        return switch (st) {
            case NOT_PRESENT, PERMISSION -> (access & Access.WRITE) != 0 ? FaultReason.WRITE.code() : FaultReason.READ.code();
            case RESERVED_BITS, SKIPPED_BITS_NONZERO -> FaultReason.PAGING_ENTRY_RESERVED.code();
            case ADDRESS_SIZE, NON_CANONICAL -> FaultReason.ADDRESS_BEYOND_MGAW.code();
            default -> FaultReason.PAGING_ENTRY_INVALID.code();
        };
    }

    private static int ssReason(WalkStatus st) {
        return switch (st) {
            case NOT_PRESENT, PERMISSION -> FaultReason.SS_PERMISSION.code();
            case RESERVED_BITS, SKIPPED_BITS_NONZERO -> FaultReason.SS_ENTRY_RESERVED.code();
            case ADDRESS_SIZE, NON_CANONICAL -> FaultReason.SS_ADDRESS_BEYOND_MAX.code();
            default -> FaultReason.SS_ENTRY_ACCESS.code();
        };
    }

    private static int fsReason(WalkStatus st, int granted, int access) {
        return switch (st) {
            case NOT_PRESENT -> FaultReason.FS_ENTRY_NOT_PRESENT.code();
            case PERMISSION -> fsPermissionReason(Access.requiredPerms(access) & ~granted);
            case RESERVED_BITS, SKIPPED_BITS_NONZERO -> FaultReason.FS_ENTRY_RESERVED.code();
            case NON_CANONICAL -> FaultReason.FS_NON_CANONICAL.code();
            case ADDRESS_SIZE -> FaultReason.INPUT_BEYOND_MAX.code();
            default -> FaultReason.FS_ENTRY_ACCESS.code();
        };
    }

    private static int fsPermissionReason(int missing) {
        if ((missing & PageTableFormat.PERM_USER) != 0) {
            return FaultReason.FS_USER_SUPERVISOR.code();
        }
        if ((missing & PageTableFormat.PERM_WRITE) != 0) {
            return FaultReason.FS_WRITE.code();
        }
        if ((missing & PageTableFormat.PERM_EXEC) != 0) {
            return FaultReason.FS_EXECUTE.code();
        }
        return FaultReason.FS_READ.code();
    }

    // ---- invalidations ----

    /** Context-cache invalidation (descriptor type 1 or CCMD); {@return the entries dropped} */
    int invalidateContext(int granularity, int did, int sid, int functionMask) {
        forgetLastRequester();
        return switch (granularity) {
            case InvDesc.G_GLOBAL -> {
                int n = contextCache.size();
                contextCache.clear();
                yield n;
            }
            // Scalable context entries carry no DID, so a domain-selective flush drops them all.
            case InvDesc.G_DOMAIN -> contextCache.removeIf(c -> c.scalable || c.did == did);
            default -> {
                int ignore = functionMask == 0 ? 0 : (1 << functionMask) - 1;
                yield contextCache.removeIf(c -> (c.sid & ~ignore) == (sid & ~ignore));
            }
        };
    }

    /**
     * IOTLB invalidation (type 2 or the IOTLB register): global, domain, or page-selective, which
     * drops second-stage entries of the DID overlapping the range and every first-stage and nested
     * entry of the DID (VT-d 4.1 §6.5.2.3).
     */
    int invalidateIotlb(int granularity, int did, long address, int am) {
        if (granularity == InvDesc.G_GLOBAL) {
            int n = iotlb.size() + (nestedWalkCache == null ? 0 : nestedWalkCache.size());
            iotlb.clear();
            if (nestedWalkCache != null) {
                nestedWalkCache.clear();
            }
            return n;
        }
        int walkEntries = nestedWalkCache == null ? 0 : nestedWalkCache.removeIf(w -> w[2] == did);
        if (granularity == InvDesc.G_DOMAIN) {
            return walkEntries + iotlb.removeIf(e -> e.did == did);
        }
        long first = address & -(1L << (am + 12));
        long last = first + (1L << (am + 12)) - 1;
        return walkEntries + iotlb.removeIf(e -> e.did == did && (e.kind != KIND_SS || e.overlaps(first, last)));
    }

    /** PASID-based IOTLB invalidation (type 6): first-stage and nested entries only. */
    int invalidatePasidIotlb(int granularity, int did, int pasid, long address, int am) {
        if (granularity == InvDesc.PG_PASID) {
            return iotlb.removeIf(e -> e.did == did && e.pasid == pasid && e.kind != KIND_SS);
        }
        long first = address & -(1L << (am + 12));
        long last = first + (1L << (am + 12)) - 1;
        return iotlb.removeIf(e -> e.did == did && e.pasid == pasid && e.kind != KIND_SS && e.overlaps(first, last));
    }

    /** PASID-cache invalidation (type 7). */
    int invalidatePasidCache(int granularity, int did, int pasid) {
        forgetLastRequester();
        return switch (granularity) {
            case InvDesc.PCG_DOMAIN -> pasidCache.removeIf(pc -> pc.did == did);
            case InvDesc.PCG_PASID -> pasidCache.removeIf(pc -> pc.did == did && pc.pasid == pasid);
            default -> {
                int n = pasidCache.size();
                pasidCache.clear();
                yield n;
            }
        };
    }
}
