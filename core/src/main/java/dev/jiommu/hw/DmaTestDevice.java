package dev.jiommu.hw;

import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.pt.Access;
import dev.jiommu.pt.PageTableFormat;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A DMA-capable PCI test device: reads, writes, fills, copies and compares memory by IOVA
 * (optionally with a PASID), many pages per command, through the IOMMU above it. Optionally it
 * has a device-TLB (ATS), and page requests (PRI, which needs ATS): a translation that fails
 * becomes a page request, the device waits for the page group response, and retries.
 *
 * <p>Commands run on the caller's thread; one command at a time per device (synchronize outside
 * to share a device between threads).
 */
public final class DmaTestDevice implements DeviceEndpoint {
    /** {@link #compare} found a difference. */
    public static final int MISMATCH = -1;
    /** A page request was refused, or answered with an error. */
    public static final int PAGE_REQUEST_FAILED = -2;

    /** Device options: a device-TLB of {@code atcEntries} entries (0: no ATS), PRI, how long to wait for a page response. */
    public record Options(int atcEntries, boolean pri, long pageResponseTimeoutMillis, int maxRetries) {
        public static final Options PLAIN = new Options(0, false, 0, 0);

        public static Options ats(int atcEntries) {
            return new Options(atcEntries, false, 0, 0);
        }

        public static Options atsAndPri(int atcEntries, long timeoutMillis) {
            return new Options(atcEntries, true, timeoutMillis, 4);
        }
    }

    private final String name;
    private final PciRequesterId rid;
    private final PhysicalMemory memory;
    private final Translator translator;
    private final PciIommuPort port;
    private final Options options;
    /** The device-TLB: (PASID + 1, IOVA page) → physical page | perms in the low bits. Guarded by the IOMMU's lock. */
    private final TagCache<long[]> atc;
    private final MemorySegment buffer;
    private final ReadOp readOp = new ReadOp();
    private final WriteOp writeOp = new WriteOp();
    private final FillOp fillOp = new FillOp();
    private final CompareOp compareOp = new CompareOp();
    // Page response handshake. Guarded by this.
    private int nextPrg;
    private int awaitedPrg = -1;
    private int responseCode = -1;
    // Counters: plain fields, written by the command thread (ATC ones under the IOMMU's lock), so
    // DMA pays no fence for them; read them from that thread or after it stopped.
    private long commands;
    private long bytes;
    private long faults;
    private long pageRequests;
    private long retries;
    private long atcInvalidations;
    private long atcFills;

    /**
     * @param translator the IOMMU this device is behind (a {@link PciIommuPort} for ATS or PRI)
     * @param bufferBytes the device's own memory, the source and destination of its DMA
     */
    public DmaTestDevice(String name, PciRequesterId rid, PhysicalMemory memory, Translator translator, Options options, long bufferBytes) {
        if ((options.atcEntries() > 0 || options.pri()) && !(translator instanceof PciIommuPort)) {
            throw new IllegalArgumentException(name + ": ATS and PRI need an IOMMU that offers them");
        }
        if (options.pri() && options.atcEntries() == 0) {
            throw new IllegalArgumentException(name + ": PRI needs ATS");
        }
        this.name = name;
        this.rid = rid;
        this.memory = memory;
        this.translator = translator;
        this.port = translator instanceof PciIommuPort p ? p : null;
        this.options = options;
        this.atc = options.atcEntries() > 0 ? new TagCache<>(options.atcEntries()) : null;
        this.buffer = Arena.ofAuto().allocate(bufferBytes, 4096);
        if (port != null) {
            port.attachEndpoint(rid.rid(), this);
        }
    }

    public String name() {
        return name;
    }

    public PciRequesterId requesterId() {
        return rid;
    }

    /** {@return the device's own memory (DMA source and destination)} */
    public MemorySegment buffer() {
        return buffer;
    }

    // ---- commands -------------------------------------------------------------------------------

    /** DMA write: device buffer [bufferOffset, +lengthBytes) to memory at {@code iova}. {@return 0 or a fault code} */
    public int write(int pasid, long iova, long bufferOffset, long lengthBytes) {
        writeOp.base = bufferOffset;
        return run(pasid, iova, lengthBytes, Access.WRITE, writeOp);
    }

    /** DMA read: memory at {@code iova} into the device buffer at {@code bufferOffset}. {@return 0 or a fault code} */
    public int read(int pasid, long iova, long bufferOffset, long lengthBytes) {
        readOp.base = bufferOffset;
        return run(pasid, iova, lengthBytes, Access.READ, readOp);
    }

    /** Fills [iova, +lengthBytes) with {@code value}. */
    public int fill(int pasid, long iova, long lengthBytes, byte value) {
        fillOp.value = value;
        return run(pasid, iova, lengthBytes, Access.WRITE, fillOp);
    }

    /** Copies memory to memory through the device buffer, in chunks of the buffer's size. */
    public int copy(int pasid, long srcIova, long dstIova, long lengthBytes) {
        long done = 0;
        while (done < lengthBytes) {
            long n = Math.min(buffer.byteSize(), lengthBytes - done);
            int r = read(pasid, srcIova + done, 0, n);
            if (r != 0) {
                return r;
            }
            r = write(pasid, dstIova + done, 0, n);
            if (r != 0) {
                return r;
            }
            done += n;
        }
        return 0;
    }

    /** Compares memory at {@code iova} with {@code expected}; {@return 0, {@link #MISMATCH}, or a fault code} */
    public int compare(int pasid, long iova, byte[] expected) {
        compareOp.expected = MemorySegment.ofArray(expected);
        compareOp.equal = true;
        int r = run(pasid, iova, expected.length, Access.READ, compareOp);
        compareOp.expected = null;
        return r != 0 ? r : compareOp.equal ? 0 : MISMATCH;
    }

    /**
     * Batched DMA write of one page-sized piece of the buffer to each of {@code iovas}, in one
     * command; {@return 0 or the first fault code}.
     */
    public int writePages(int pasid, long[] iovas, long pageBytes) {
        for (int i = 0; i < iovas.length; i++) {
            writeOp.base = i * pageBytes % buffer.byteSize();
            int r = run(pasid, iovas[i], pageBytes, Access.WRITE, writeOp);
            if (r != 0) {
                return r;
            }
        }
        return 0;
    }

    private int run(int pasid, long iova, long lengthBytes, int access, DmaOp op) {
        commands++;
        int r = atc == null ? translator.dma(rid.rid(), pasid, iova, lengthBytes, access, op)
                : port.atsDma(rid.rid(), pasid, iova, lengthBytes, access, this, op);
        if (r != 0 && options.pri()) {
            r = retryAfterPageRequests(pasid, iova, lengthBytes, access, op);
        }
        if (r == 0) {
            bytes += lengthBytes;
        } else {
            faults++;
        }
        return r;
    }

    /** PRI: asks for the page the device-TLB lacks, waits for the response, retries; up to maxRetries times. */
    private int retryAfterPageRequests(int pasid, long iova, long lengthBytes, int access, DmaOp op) {
        int r = -1;
        for (int attempt = 0; attempt < options.maxRetries(); attempt++) {
            if (requestPage(pasid, failedIova(pasid, iova, lengthBytes, access), access) != 0) {
                return PAGE_REQUEST_FAILED;
            }
            retries++;
            r = port.atsDma(rid.rid(), pasid, iova, lengthBytes, access, this, op);
            if (r == 0) {
                return 0;
            }
        }
        return r;
    }

    /** {@return the first page of the range the device-TLB cannot serve (what the page request asks for)} */
    private long failedIova(int pasid, long iova, long lengthBytes, int access) {
        // Every page before the failing one is now in the device-TLB, so the first miss is the one.
        for (long at = iova & ~0xfffL; Long.compareUnsigned(at, iova + lengthBytes) < 0; at += 4096) {
            if (atcLookupUnlocked(pasid, at, access) < 0) {
                return at;
            }
        }
        return iova & ~0xfffL;
    }

    private synchronized long atcLookupUnlocked(int pasid, long iova, int access) {
        return atcLookup(pasid, iova, access);
    }

    /** Sends one page request and waits for its group's response; {@return 0 on success} */
    private int requestPage(int pasid, long address, int access) {
        int prg;
        synchronized (this) {
            prg = nextPrg;
            nextPrg = (nextPrg + 1) & 0x1ff;
            awaitedPrg = prg;
            responseCode = -1;
        }
        pageRequests++;
        PageRequestStatus status = port.pageRequest(rid.rid(), pasid, address, (access & Access.READ) != 0 || (access & Access.WRITE) == 0,
                (access & Access.WRITE) != 0, true, prg);
        if (status == PageRequestStatus.REFUSED) {
            return PAGE_REQUEST_FAILED;
        }
        synchronized (this) {
            long deadline = System.nanoTime() + options.pageResponseTimeoutMillis() * 1_000_000;
            while (responseCode < 0) {
                long waitMillis = (deadline - System.nanoTime()) / 1_000_000;
                if (waitMillis <= 0) {
                    return PAGE_REQUEST_FAILED;
                }
                try {
                    wait(waitMillis);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return PAGE_REQUEST_FAILED;
                }
            }
            awaitedPrg = -1;
            return responseCode == 0 ? 0 : PAGE_REQUEST_FAILED;
        }
    }

    // ---- what the IOMMU sends -------------------------------------------------------------------

    @Override
    public synchronized void pageResponse(int pasid, int prgIndex, int code) {
        if (prgIndex == awaitedPrg) {
            responseCode = code;
            notifyAll();
        }
    }

    @Override
    public synchronized void atcInvalidate(int pasid, long first, long last) {
        if (atc == null) {
            return;
        }
        atcInvalidations++;
        atc.removeIf(e -> (pasid == ALL_PASIDS || e[0] == pasid + 1)
                && Long.compareUnsigned(e[1], last) <= 0 && Long.compareUnsigned(e[1] + 4095, first) >= 0);
    }

    @Override
    public synchronized long atcLookup(int pasid, long iova, int access) {
        if (atc == null) {
            return -1;
        }
        long[] e = atc.get(pasid + 1, iova >>> 12);
        if (e == null || (Access.requiredPerms(access) & ~PageTableFormat.PERM_USER & ~(int) e[3]) != 0) {
            return -1;
        }
        return e[2] + (iova & 0xfff);
    }

    @Override
    public synchronized void atcFill(int pasid, long iovaPage, long paPage, int perms) {
        atcFills++;
        atc.put(pasid + 1, iovaPage >>> 12, new long[] {pasid + 1, iovaPage, paPage & ~0xfffL, perms});
    }

    // ---- counters -------------------------------------------------------------------------------

    public long commands() {
        return commands;
    }

    public long bytes() {
        return bytes;
    }

    public long faults() {
        return faults;
    }

    public long pageRequests() {
        return pageRequests;
    }

    public long retries() {
        return retries;
    }

    public long atcInvalidations() {
        return atcInvalidations;
    }

    public long atcFills() {
        return atcFills;
    }

    public synchronized int atcSize() {
        return atc == null ? 0 : atc.size();
    }

    @Override
    public String toString() {
        return name + "@" + rid;
    }

    // ---- the reusable accesses ------------------------------------------------------------------

    private final class ReadOp implements DmaOp {
        long base;

        @Override
        public void access(long pa, long offsetBytes, long lengthBytes) {
            memory.read(pa, buffer, base + offsetBytes, lengthBytes);
        }
    }

    private final class WriteOp implements DmaOp {
        long base;

        @Override
        public void access(long pa, long offsetBytes, long lengthBytes) {
            memory.write(pa, buffer, base + offsetBytes, lengthBytes);
        }
    }

    private final class FillOp implements DmaOp {
        byte value;

        @Override
        public void access(long pa, long offsetBytes, long lengthBytes) {
            memory.fill(pa, lengthBytes, value);
        }
    }

    private final class CompareOp implements DmaOp {
        MemorySegment expected;
        boolean equal;

        @Override
        public void access(long pa, long offsetBytes, long lengthBytes) {
            byte[] got = memory.readBytes(pa, Math.toIntExact(lengthBytes));
            if (MemorySegment.mismatch(MemorySegment.ofArray(got), 0, got.length, expected, offsetBytes, offsetBytes + lengthBytes) != -1) {
                equal = false;
            }
        }
    }

}
