package io.tailguard.actors.runtime;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The controller's leases, without an actor system: two groups a lease, a timeout of 100 ns. */
class LeaseBookTest {
    @Test
    void aTimedOutLeaseIsIssuedAgainFirstAndItsLateDoneChangesNothing() {
        LeaseBook<String> book = new LeaseBook<>(2, 100, 0, new long[0]);
        LeaseBook.Lease a = book.issue("a", 0);
        LeaseBook.Lease b = book.issue("b", 10);
        assertEquals(1, a.id());
        assertArrayEquals(new long[] {0, 1}, a.groups());
        assertEquals(100, a.deadlineNanos());
        assertEquals(2, b.id());
        assertArrayEquals(new long[] {2, 3}, b.groups());
        assertEquals(4, book.nextGroup());

        assertTrue(book.expire(100).isEmpty(), "at its deadline a lease is not late yet");
        List<LeaseBook.Lease> expired = book.expire(101);
        assertEquals(List.of(a), expired);
        assertEquals(1, book.openLeases());
        assertEquals(2, book.toReissue());

        // the next lease takes the timed-out groups first, before the cursor moves on
        LeaseBook.Lease c = book.issue("c", 200);
        assertArrayEquals(new long[] {0, 1}, c.groups());
        assertEquals(3, c.id());
        assertEquals(4, book.nextGroup());
        assertArrayEquals(new long[] {4, 5}, book.issue("d", 200).groups());

        assertFalse(book.done(a.id()), "a late duplicate is no done");
        assertTrue(book.done(b.id()));
        assertFalse(book.done(b.id()), "done once");
        assertEquals(2, book.openLeases());
        assertArrayEquals(new long[] {0, 1, 4, 5}, book.undelivered());
    }

    @Test
    void leasesThatTimeOutTogetherGoBackInTheirOrderAheadOfTheQueue() {
        LeaseBook<String> book = new LeaseBook<>(2, 100, 10, new long[] {3});
        LeaseBook.Lease a = book.issue("a", 0); // 3 from the queue, then 10
        LeaseBook.Lease b = book.issue("b", 0); // 11, 12
        assertArrayEquals(new long[] {3, 10}, a.groups());
        assertArrayEquals(new long[] {11, 12}, b.groups());
        book.issue("c", 500); // 13, 14: not due
        assertEquals(2, book.expire(150).size());
        assertArrayEquals(new long[] {3, 10, 11, 12, 13, 14}, book.undelivered());
        assertArrayEquals(new long[] {3, 10}, book.issue("d", 200).groups());
        assertArrayEquals(new long[] {11, 12}, book.issue("d", 200).groups());
        assertArrayEquals(new long[] {15, 16}, book.issue("d", 200).groups());
    }

    @Test
    void aRestartedControllerIssuesTheOpenGroupsFirstThenResumesTheCursor() {
        LeaseBook<String> first = new LeaseBook<>(2, 100, 0, new long[0]);
        first.issue("a", 0);
        first.done(first.issue("b", 0).id());
        first.issue("c", 0);
        long[] open = first.undelivered();
        assertArrayEquals(new long[] {0, 1, 4, 5}, open);
        LeaseBook<String> next = new LeaseBook<>(2, 100, first.nextGroup(), open);
        assertEquals(4, next.toReissue());
        assertArrayEquals(new long[] {0, 1}, next.issue("x", 0).groups());
        assertArrayEquals(new long[] {4, 5}, next.issue("x", 0).groups());
        assertArrayEquals(new long[] {6, 7}, next.issue("x", 0).groups());
    }

    @Test
    void waitingWorkersAreServedInOrderEachOnceWhileLeasingAllows() {
        LeaseBook<String> book = new LeaseBook<>(1, 100, 0, new long[0]);
        book.park("w1", "w1 first ask");
        book.park("w2", "w2 ask");
        book.park("w1", "w1 second ask"); // asks again: waits once, at the back
        assertEquals(2, book.waiting());
        List<String> served = new ArrayList<>();
        book.drain(r -> served.size() < 1 && served.add(r));
        assertEquals(List.of("w2 ask"), served);
        assertEquals(1, book.waiting());
        book.drain(served::add);
        assertEquals(List.of("w2 ask", "w1 second ask"), served);
        assertEquals(0, book.waiting());
    }
}
