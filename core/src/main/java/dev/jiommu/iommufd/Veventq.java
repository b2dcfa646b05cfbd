package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayDeque;

/**
 * A vEVENTQ object and its file (iommufd-uapi.md §5.2): events a vIOMMU reports for its guest,
 * each read as an 8-byte {@code iommufd_vevent_header} {flags, sequence} and the type's payload.
 *
 * <p>Every queued record takes the next sequence number (wrapping at INT_MAX). At most
 * {@code depth} events wait; an event that does not fit is dropped and a single LOST_EVENTS header
 * without payload stands at the tail (taking a number of its own), so a reader sees the gap. Queue
 * state is guarded by this object's monitor, taken after the context lock.
 */
final class Veventq extends IommufdObject {
    static final int HEADER_BYTES = 8;
    static final int FLAG_LOST_EVENTS = 1;

    private record Record(int flags, int sequence, byte[] payload) {
        int bytes() {
            return HEADER_BYTES + payload.length;
        }
    }

    final Viommu viommu;
    final int type;
    private final int depth;
    private final ArrayDeque<Record> records = new ArrayDeque<>();
    private int events;
    private int sequence;

    Veventq(Viommu viommu, int type, int depth) {
        super(ObjectType.VEVENTQ);
        this.viommu = viommu;
        this.type = type;
        this.depth = depth;
    }

    /** Queues one event (or, when full, the lost-events marker) and wakes readers. */
    synchronized void report(byte[] payload) {
        Record tail = records.peekLast();
        boolean markerAtTail = tail != null && tail.flags() == FLAG_LOST_EVENTS;
        if (events >= depth) {
            // Every dropped event uses up a number; the one marker at the tail carries the latest.
            if (markerAtTail) {
                records.pollLast();
            }
            records.add(new Record(FLAG_LOST_EVENTS, nextSequence(), new byte[0]));
            notifyAll();
            return;
        }
        if (markerAtTail) {
            records.pollLast(); // its number stays used: the reader still sees the gap
        }
        records.add(new Record(0, nextSequence(), payload.clone()));
        events++;
        notifyAll();
    }

    private int nextSequence() {
        int s = sequence;
        sequence = (sequence + 1) & Integer.MAX_VALUE;
        return s;
    }

    @Override
    void destroy() {
        synchronized (this) {
            records.clear();
            events = 0;
        }
        viommu.eventQueues.remove(type);
        viommu.put();
    }

    IommufdFile openFile(IommufdContext context) {
        return new File(context).open();
    }

    private final class File extends QueueFile {
        File(IommufdContext context) {
            super(context, Veventq.this, Veventq.this);
        }

        @Override
        boolean readableLocked() {
            return !records.isEmpty();
        }

        @Override
        int readLocked(byte[] buffer) {
            if (buffer.length < HEADER_BYTES) {
                throw IommufdException.of(Errno.EINVAL, "vEVENTQ read of %d bytes: below the %d-byte header", buffer.length, HEADER_BYTES);
            }
            if (!records.isEmpty() && records.peek().bytes() > buffer.length) {
                throw IommufdException.of(Errno.EINVAL, "vEVENTQ read of %d bytes: the next record takes %d", buffer.length, records.peek().bytes());
            }
            ByteBuffer out = ByteBuffer.wrap(buffer).order(ByteOrder.LITTLE_ENDIAN);
            while (!records.isEmpty() && records.peek().bytes() <= out.remaining()) {
                Record r = records.poll();
                out.putInt(r.flags()).putInt(r.sequence()).put(r.payload());
                if (r.flags() != FLAG_LOST_EVENTS) {
                    events--;
                }
            }
            return out.position();
        }
    }
}
