package io.tailguard.actors.runtime;

import io.tailguard.rollout.sparse.BudgetController;
import io.tailguard.rollout.sparse.Schedule;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What a lease carries and when leasing pauses, without an actor system (two prompts a lease, at most 3 buffered groups). */
class LeasingTest {
    static final RunSettings S = TuningBookTest.settings("tailguard.rollout.prompts-per-lease = 2\ntailguard.buffer.max-groups = 3\n"
            + "tailguard.rollout.shadow-fraction = 0\ntailguard.train.seed = 5");

    static PolicyPublished policy(long v) {
        return new PolicyPublished(v, v, "file:///tmp/store/v" + v + "/", "ab".repeat(32));
    }

    static Controller.RequestWork ask(String worker) {
        return new Controller.RequestWork(worker, null);
    }

    @Test
    void aLeaseSamplesWithTheSamplingSeedAndServesTheRunSeedsPrompts() {
        RunSettings replicate = TuningBookTest.settings("tailguard.rollout.prompts-per-lease = 2\ntailguard.buffer.max-groups = 3\n"
                + "tailguard.rollout.shadow-fraction = 0\ntailguard.train.seed = 5\ntailguard.train.sampling-seed = 5002");
        OptionBook options = new OptionBook(new BudgetController(replicate.controller(), Schedule.dense()),
                replicate.compression().guard(), (f, sched) -> 1.0, 0);
        Prompts prompts = new Prompts(S.train().task(), S.train().seed(), S.train().contextMin(), S.train().contextMax());
        Leasing leasing = Leasing.start(replicate, null, options, policy(1));
        RolloutWorker.Work w = leasing.request(ask("a"), 0);
        assertEquals(5002 * 1_000_003L + 1, w.seed(), "sampled from the sampling seed");
        assertEquals(prompts.of(0), w.prompts()[0], "the prompts of run seed 5, as without a sampling seed");
        assertEquals(prompts.of(1), w.prompts()[1]);
    }

    @Test
    void workersWaitForAPolicyAndAFullBufferAndAreServedWhenLeasingResumes() {
        LeaseBook<Controller.RequestWork> book = new LeaseBook<>(2, 1_000, 0, new long[0]);
        BudgetController budgets = new BudgetController(S.controller(), Schedule.dense());
        OptionBook options = new OptionBook(budgets, S.compression().guard(), (f, sched) -> 1.0, 0);
        Prompts prompts = new Prompts(S.train().task(), S.train().seed(), S.train().contextMin(), S.train().contextMax());
        Leasing leasing = new Leasing(book, prompts, options, S, null);

        Controller.RequestWork a = ask("a");
        assertNull(leasing.request(a, 0), "no policy yet: the worker waits");
        assertEquals(1, book.waiting());
        List<Leasing.Issued> issued = leasing.policy(policy(2), 0);
        assertEquals(1, issued.size());
        assertSame(a, issued.get(0).request());
        RolloutWorker.Work w = issued.get(0).work();
        assertEquals(1, w.lease());
        assertArrayEquals(new long[] {0, 1}, w.groups());
        assertEquals(prompts.of(1), w.prompts()[1]);
        assertEquals(2, w.policy().version());
        assertEquals(5 * 1_000_003L + 1, w.seed());
        assertNull(w.shadow(), "no shadow fraction: no shadow schedule");
        assertNull(w.compressed(), "compressed rollout off: the policy");

        assertTrue(leasing.policy(policy(1), 0).isEmpty());
        assertEquals(2, leasing.policy().version(), "an older policy is ignored");

        // backpressure: the groups waiting in the buffer and those of open leases (lease 1's two, still
        // being rolled out) count against max-groups 3
        assertTrue(leasing.bufferDepth(1, 0).isEmpty());
        assertNull(leasing.request(ask("b"), 0), "1 waiting + 2 in flight: the worker waits");
        assertNull(leasing.request(ask("c"), 0));
        // worker a delivers lease 1 and asks again at once, before the buffer's depth reaches the controller:
        // its lease is still open, so its groups still count and it waits (counting the buffer alone let it out)
        assertNull(leasing.request(ask("a"), 0), "a worker's next request overtakes the buffer's depth: it waits");
        // the buffer reports its depth, then acknowledges the lease (in that order): counted twice, never not at all
        assertTrue(leasing.bufferDepth(3, 0).isEmpty());
        assertTrue(book.done(1));
        assertTrue(leasing.leaseClosed(0).isEmpty(), "3 waiting, none in flight: still full");
        List<Leasing.Issued> resumed = leasing.bufferDepth(0, 0);   // the learner took them
        assertEquals(List.of("b", "c"), resumed.stream().map(i -> i.request().worker()).toList(),
                "b's lease puts 2 in flight (2 < 3): c is served too; then 4, and a waits");
        assertArrayEquals(new long[] {2, 3}, resumed.get(0).work().groups());
        assertArrayEquals(new long[] {4, 5}, resumed.get(1).work().groups());
        assertEquals(1, book.waiting());
        // lease 2 acknowledged (its groups reported first): 2 waiting + c's 2 in flight
        assertTrue(leasing.bufferDepth(2, 0).isEmpty());
        assertTrue(book.done(2));
        assertTrue(leasing.leaseClosed(0).isEmpty(), "2 waiting + 2 in flight: full");
        // lease 3 expires undelivered (the controller's tick closes it): its groups no longer in flight
        assertEquals(1, book.expire(5_000).size());
        List<Leasing.Issued> afterExpiry = leasing.leaseClosed(5_000);
        assertEquals(List.of("a"), afterExpiry.stream().map(i -> i.request().worker()).toList());
        assertArrayEquals(new long[] {4, 5}, afterExpiry.get(0).work().groups(), "the expired lease's groups are issued again first");

        // the learner holds leasing while it evaluates; a release serves the waiting worker
        assertTrue(leasing.bufferDepth(0, 0).isEmpty());   // 0 waiting + a's 2 in flight
        assertTrue(leasing.hold(true, 0).isEmpty());
        assertNull(leasing.request(ask("d"), 0), "held: the worker waits");
        assertTrue(book.done(4));
        assertTrue(leasing.leaseClosed(0).isEmpty(), "nothing in flight does not lift the learner's hold");
        List<Leasing.Issued> released = leasing.hold(false, 0);
        assertEquals(List.of("d"), released.stream().map(i -> i.request().worker()).toList());
        assertArrayEquals(new long[] {6, 7}, released.get(0).work().groups());
        assertNotNull(leasing.request(ask("e"), 0), "released, d's 2 in flight: a worker that asks is served at once");
        assertNull(leasing.request(ask("g"), 0), "d's and e's 4 in flight: g waits");
        assertTrue(book.done(5));
        assertEquals(List.of("g"), leasing.leaseClosed(0).stream().map(i -> i.request().worker()).toList());

        // a learner that started again after failing mid-evaluation announces its policy: the hold is lifted
        assertTrue(book.done(6));
        assertTrue(book.done(7));
        assertTrue(leasing.hold(true, 0).isEmpty());
        assertNull(leasing.request(ask("f"), 0));
        assertEquals(List.of("f"), leasing.policy(policy(2), 0).stream().map(i -> i.request().worker()).toList());
    }

    /** The first lease of a fresh Leasing over settings `extra` (shadow share 0.25) starting from `start`. */
    static RolloutWorker.Work firstLease(String extra, Schedule start) {
        RunSettings s = TuningBookTest.settings("tailguard.rollout.shadow-fraction = 0.25\n" + extra);
        BudgetController budgets = new BudgetController(s.controller(), start);
        Leasing leasing = new Leasing(new LeaseBook<>(2, 1_000, 0, new long[0]), new Prompts(s.train().task(), s.train().seed(),
                s.train().contextMin(), s.train().contextMax()), new OptionBook(budgets, s.compression().guard(), (f, sched) -> 1.0, 0), s, null);
        assertTrue(leasing.policy(policy(1), 0).isEmpty());
        return leasing.request(ask("a"), 0);
    }

    @Test
    void withTheControllerOffALeaseHoldsTheStartScheduleWithoutShadowAndADenseStartIsDenseEverywhere() {
        // the defaults: bins of 64 up to context-max 256 + 64, ladder from 48
        Schedule fixed = Schedule.parseString("tailguard.schedule { version = 1, kind = fixed, budget = 64 }", "test");
        RolloutWorker.Work on = firstLease("", fixed);
        assertArrayEquals(new int[] {64, 64, 64, 64, 64}, on.schedule().toSchedule().budgets());
        assertArrayEquals(new int[] {48, 48, 48, 48, 48}, on.shadow().toSchedule().budgets(), "the controller on: a shadow one rung lower");

        RolloutWorker.Work off = firstLease("tailguard.controller.adapt = off", fixed);
        assertArrayEquals(new int[] {64, 64, 64, 64, 64}, off.schedule().toSchedule().budgets());
        assertNull(off.shadow(), "the controller off: nothing reads shadow tails");

        // a dense start, off: the dense schedule itself, not the bins' top rungs (which end at 320)
        RolloutWorker.Work dense = firstLease("tailguard.controller.adapt = off", Schedule.dense());
        assertTrue(dense.schedule().toSchedule().isDense());
        assertTrue(dense.schedule().toSchedule().isDenseAt(4096));
        assertNull(dense.shadow());
        // on, a dense start is the top rungs, which the controller lowers from
        assertArrayEquals(new int[] {64, 128, 192, 256, 320}, firstLease("", Schedule.dense()).schedule().toSchedule().budgets());
    }
}
