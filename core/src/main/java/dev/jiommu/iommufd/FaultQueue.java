package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A FAULT object and its file (iommufd-uapi.md §5.1): I/O page faults of the HWPTs that name it,
 * queued as page-request groups, read as 40-byte {@code iommu_hwpt_pgfault} records, answered with
 * 8-byte {@code iommu_hwpt_page_response} records by cookie.
 *
 * <p>Queue state is guarded by this object's monitor (taken after the context lock, never before);
 * the file is read and written without the context lock, so a reader may block.
 */
final class FaultQueue extends IommufdObject {
    static final int FAULT_BYTES = 40;
    static final int RESPONSE_BYTES = 8;
    static final int FLAG_PASID_VALID = 1;
    static final int FLAG_LAST_PAGE = 1 << 1;
    static final int RESPONSE_SUCCESS = 0;
    static final int RESPONSE_INVALID = 1;

    /** One fault of a group, as the device raised it. */
    record Fault(int flags, int devId, int pasid, int grpid, int perm, long addr) {
    }

    /** A page-request group: its faults, the attachment it came through, and its cookie once read. */
    static final class Group {
        final List<Fault> faults;
        final IommufdDevice device;
        final int pasid;
        int cookie;

        Group(List<Fault> faults, IommufdDevice device, int pasid) {
            this.faults = faults;
            this.device = device;
            this.pasid = pasid;
        }
    }

    private final ArrayDeque<Group> pending = new ArrayDeque<>();
    private final Map<Integer, Group> awaiting = new LinkedHashMap<>();
    /** How groups got answered (cookie, code), for tests and the device side. */
    private final List<int[]> answered = new ArrayList<>();
    private int nextCookie = 1;

    FaultQueue() {
        super(ObjectType.FAULT);
    }

    /** Queues a group (a device's page request) and wakes readers. */
    synchronized void report(Group group) {
        pending.add(group);
        notifyAll();
    }

    /** Answers INVALID every outstanding group of (device, pasid): its attachment is going away. */
    synchronized void flush(IommufdDevice device, int pasid) {
        pending.removeIf(g -> {
            boolean match = g.device == device && g.pasid == pasid;
            if (match) {
                answered.add(new int[] {0, RESPONSE_INVALID});
                respond(g, RESPONSE_INVALID);
            }
            return match;
        });
        for (Iterator<Group> it = awaiting.values().iterator(); it.hasNext(); ) {
            Group g = it.next();
            if (g.device == device && g.pasid == pasid) {
                answered.add(new int[] {g.cookie, RESPONSE_INVALID});
                respond(g, RESPONSE_INVALID);
                it.remove();
            }
        }
    }

    /** Passes the answer to the device's driver (ops->page_response), which forwards it to the device. */
    private static void respond(Group g, int code) {
        if (!g.faults.isEmpty()) {
            g.device.device.driver().pageResponse(g.device.device, g.pasid, g.faults.getLast().grpid(), code);
        }
    }

    synchronized List<int[]> answered() {
        return List.copyOf(answered);
    }

    synchronized int outstanding() {
        return pending.size() + awaiting.size();
    }

    @Override
    void destroy() {
        synchronized (this) {
            for (Group g : pending) {
                answered.add(new int[] {0, RESPONSE_INVALID});
                respond(g, RESPONSE_INVALID);
            }
            for (Group g : awaiting.values()) {
                answered.add(new int[] {g.cookie, RESPONSE_INVALID});
                respond(g, RESPONSE_INVALID);
            }
            pending.clear();
            awaiting.clear();
        }
    }

    /** {@return the file for this queue; it holds a reference until closed} */
    IommufdFile openFile(IommufdContext context) {
        return new File(context).open();
    }

    private final class File extends QueueFile {
        File(IommufdContext context) {
            super(context, FaultQueue.this, FaultQueue.this);
        }

        @Override
        boolean readableLocked() {
            return !pending.isEmpty();
        }

        @Override
        int otherPollBits() {
            return POLLOUT;
        }

        @Override
        int readLocked(byte[] buffer) {
            if (buffer.length % FAULT_BYTES != 0) {
                throw IommufdException.of(Errno.ESPIPE, "fault read of %d bytes: not a multiple of %d", buffer.length, FAULT_BYTES);
            }
            ByteBuffer out = ByteBuffer.wrap(buffer).order(ByteOrder.LITTLE_ENDIAN);
            while (!pending.isEmpty() && pending.peek().faults.size() * FAULT_BYTES <= out.remaining()) {
                Group g = pending.poll();
                g.cookie = nextCookie++;
                if (nextCookie == 0) {
                    nextCookie = 1;
                }
                awaiting.put(g.cookie, g);
                for (Fault f : g.faults) {
                    out.putInt(f.flags()).putInt(f.devId()).putInt(f.pasid()).putInt(f.grpid()).putInt(f.perm()).putInt(0)
                            .putLong(f.addr()).putInt(0).putInt(g.cookie);
                }
            }
            return out.position();
        }

        @Override
        int writeLocked(byte[] buffer) {
            if (buffer.length % RESPONSE_BYTES != 0) {
                throw IommufdException.of(Errno.ESPIPE, "fault write of %d bytes: not a multiple of %d", buffer.length, RESPONSE_BYTES);
            }
            ByteBuffer in = ByteBuffer.wrap(buffer).order(ByteOrder.LITTLE_ENDIAN);
            int done = 0;
            while (in.remaining() >= RESPONSE_BYTES) {
                int cookie = in.getInt();
                int code = in.getInt();
                IommufdException error = null;
                if (code != RESPONSE_SUCCESS && code != RESPONSE_INVALID) {
                    error = IommufdException.of(Errno.EINVAL, "page response code %d", code);
                } else if (!awaiting.containsKey(cookie)) {
                    error = IommufdException.of(Errno.EINVAL, "page response for unknown cookie %d", cookie);
                }
                if (error != null) {
                    if (done == 0) {
                        throw error;
                    }
                    return done;
                }
                Group answeredGroup = awaiting.remove(cookie);
                answered.add(new int[] {cookie, code});
                respond(answeredGroup, code);
                done += RESPONSE_BYTES;
            }
            return done;
        }
    }
}
