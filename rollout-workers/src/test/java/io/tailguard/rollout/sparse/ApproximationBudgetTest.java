package io.tailguard.rollout.sparse;

import io.tailguard.model.ModelConfig;
import org.junit.jupiter.api.Test;

import java.util.Comparator;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The approximation budget's choice rule, driven by hand-made tail reports (τ 0.86, margin 0.02,
 * hysteresis 0.01, min-tokens 100, 4 kept windows, 4 bins of 256, budget ladder 64, 128, 256, ...).
 * No model runs: the options are priced by the cost model of a small configuration, and every
 * expected choice is the cheapest, by those prices, of the options the test's tails make meet τ.
 */
class ApproximationBudgetTest {
    static final BudgetController.Settings CTL = BudgetControllerTest.settings(0.86);
    static final Schedule SCHED = Schedule.ofBins(256, new int[] {128, 128, 256, 256});
    /** hidden 64, intermediate 128, 4 layers (0 and 1 dense), 4 heads, 2 KV heads of 16: linears 36,864 weights a layer. */
    static final ModelConfig CFG = new ModelConfig(10, 64, 128, 4, 4, 2, 16, 1e-6, 1e6, 4096, true, -1);
    static final CostModel COST = new CostModel(CFG, new CostModel.Machine(1e9, 1e9), 1);
    /** Weight bytes (WeightFormatTest): plain 595,200; q8 162,560; q4 88,832; vnm 16:2:16 86,016. */
    static final WeightFormat Q8 = WeightFormat.of("rtn", 8);
    static final WeightFormat Q4 = WeightFormat.of("rtn", 4);
    static final WeightFormat VNM = WeightFormat.of("vnm_16_2_16", 32);
    /** A decode step at the middle of each bin, summed: the linears' bytes and the schedule's attention both count. */
    static final ApproximationBudget.Pricing PRICE = (f, s) -> {
        CostModel c = COST.withWeights(f).withKvBytes(f.cacheBytes());
        double sum = 0;
        for (int len : new int[] {128, 384, 640, 896}) {
            sum += c.decodeTokenCost(len, s);
        }
        return sum;
    };

    static ApproximationBudget budget(Schedule start, double share, int maxLag) {
        return new ApproximationBudget(new BudgetController(CTL, start), new ApproximationBudget.Settings(true, share, maxLag), PRICE);
    }

    /**
     * n tokens in one bin at α = a + i·1e-7 (so its p5 is a within 1e-4). Not all equal: t-digest
     * 3.3 trips its own assertion (tdunning/t-digest#219) when an end centroid weighs more than 1.
     */
    static TailStats flat(int bin, int n, double a) {
        TailStats t = new TailStats(256);
        for (int i = 0; i < n; i++) {
            t.add(bin * 256 + 7, a + i * 1e-7);
        }
        return t;
    }

    static ApproximationBudget.OptionState option(ApproximationBudget b, String label) {
        return b.options(0).stream().filter(o -> o.label().equals(label)).findFirst().orElseThrow();
    }

    /** A lease of option `label` (version v) under its current schedule: tails in one bin, no shadow. */
    static void lease(ApproximationBudget b, String label, long v, int bin, int n, double a) {
        b.report(label, v, option(b, label).schedule(), flat(bin, n, a), null, null, n, 1.0);
    }

    /** Of n leases, how many go to the option labelled `label`. */
    static int leasesOf(ApproximationBudget b, long policyVersion, int n, String label) {
        int c = 0;
        for (int i = 0; i < n; i++) {
            c += b.choose(policyVersion).format().label().equals(label) ? 1 : 0;
        }
        return c;
    }

    /** The cheapest of the options named, by PRICE at their current schedules: the hand side of each assertion. */
    static String cheapest(ApproximationBudget b, String... labels) {
        return List.of(labels).stream().map(l -> option(b, l)).min(Comparator.comparingDouble(o -> PRICE.cost(o.format(), o.schedule())))
                .orElseThrow().label();
    }

    @Test
    void theCheapestOptionMeetingTauIsChosen() {
        ApproximationBudget b = budget(SCHED, 0.25, 4);
        b.offer(Q8, 10);
        b.offer(Q4, 10);
        b.offer(VNM, 10);
        // every option on the plain schedule, so the weight bytes order them: vnm < q4 < q8 < plain
        double plain = PRICE.cost(WeightFormat.plain(), SCHED);
        assertTrue(PRICE.cost(VNM, SCHED) < PRICE.cost(Q4, SCHED) && PRICE.cost(Q4, SCHED) < PRICE.cost(Q8, SCHED)
                && PRICE.cost(Q8, SCHED) < plain);
        lease(b, "vnm_16_2_16", 10, 1, 150, 0.80); // the cheapest fails τ
        lease(b, "rtn4", 10, 1, 150, 0.95);
        lease(b, "rtn8", 10, 1, 150, 0.95);
        ApproximationBudget.Decision d = b.tick(10, false);
        // meeting τ: the plain policy (in use, no breach), q4 and q8; the cheapest of them by hand
        assertEquals(cheapest(b, "plain", "rtn4", "rtn8"), "rtn4");
        assertEquals("rtn4", d.inUse(), d.reason());
        assertTrue(d.changed());
        assertEquals(0.95, d.chosen().p5()[1], 1e-4);
        assertEquals(150, d.chosen().tokens()[1]);
        assertTrue(Double.isNaN(d.chosen().p5()[2]));
        assertTrue(option(b, "vnm_16_2_16").state().contains("bin 1 p5 α 0.800 < τ + hysteresis"), option(b, "vnm_16_2_16").state());
        assertEquals(150.0, d.chosen().tokensPerSecond(), 1e-9, "150 tokens in 1 s");
        assertEquals(PRICE.cost(Q4, SCHED), d.chosen().predictedCost(), 1e-6);
        // the bulk of the leases goes to it; its neighbours in price, vnm (cheaper) and q8 (costlier), share the probes
        assertEquals(30, leasesOf(b, 10, 40, "rtn4"));
        b.tick(10, false);
        assertEquals(5, leasesOf(b, 10, 40, "vnm_16_2_16"));
        assertEquals(5, leasesOf(b, 10, 40, "rtn8"));
    }

    @Test
    void aShadowOfTheNextCheaperRungOrAProbeOfTheNextCheaperFormatThatMeetsTauStepsDown() {
        // within an option: its own shadow one rung lower clears τ + hysteresis, so its budget drops
        ApproximationBudget b = budget(SCHED, 0.25, 4);
        b.offer(Q8, 10);
        lease(b, "rtn8", 10, 1, 150, 0.95);
        assertEquals("rtn8", b.tick(10, true).inUse());
        ApproximationBudget.Choice c = b.choose(10);
        assertEquals("rtn8", c.format().label());
        assertArrayEquals(new int[] {64, 64, 128, 128}, c.shadow().budgets(), "one rung lower where there is one");
        double before = PRICE.cost(Q8, c.schedule());
        b.report("rtn8", 10, c.schedule(), flat(1, 150, 0.95), c.shadow(), flat(1, 150, 0.95), 150, 1.0);
        ApproximationBudget.Decision d = b.tick(10, true);
        assertEquals("rtn8", d.inUse());
        assertEquals(64, d.chosen().schedule().budgets()[1], "bin 1 down a rung on its shadow");
        assertTrue(d.chosen().predictedCost() < before);
        assertEquals(128, option(b, "plain").schedule().budgets()[1], "the plain policy's schedule is its own");

        // across formats: the plain policy in use, the cheaper q4 probed and clearing τ + hysteresis
        ApproximationBudget p = budget(SCHED, 0.25, 4);
        p.offer(Q4, 10);
        lease(p, "plain", -1, 1, 150, 0.95);
        lease(p, "rtn4", 10, 1, 150, 0.865); // ≥ τ but < τ + hysteresis: no step
        assertEquals("plain", p.tick(10, false).inUse());
        lease(p, "rtn4", 10, 1, 4000, 0.95); // 150 of 4150 (3.6 %) low: the merged p5 is about 0.95
        assertTrue(PRICE.cost(Q4, SCHED) < PRICE.cost(WeightFormat.plain(), SCHED));
        ApproximationBudget.Decision s = p.tick(10, false);
        assertEquals("rtn4", s.inUse(), s.reason());
        assertTrue(s.reason().contains("every judged bin's p5 α ≥ τ + hysteresis"), s.reason());
    }

    @Test
    void aBreachRaisesToTheCheapestOtherOptionMeetingTauElseThePlainPolicyAndRaisesItsOwnBin() {
        ApproximationBudget b = budget(SCHED, 0.25, 4);
        b.offer(Q8, 10);
        b.offer(Q4, 10);
        lease(b, "rtn4", 10, 1, 150, 0.95);
        lease(b, "rtn8", 10, 1, 150, 0.95);
        assertEquals("rtn4", b.tick(10, true).inUse());
        // q4 breaches in bin 1: 80 of 400 more tokens at α 0.5, so 80 of the kept windows' 550 (15 %): p5 0.5
        TailStats worse = new TailStats(256);
        for (int i = 0; i < 400; i++) {
            worse.add(256 + 3, (i < 80 ? 0.5 : 0.95) + i * 1e-7);
        }
        b.report("rtn4", 10, option(b, "rtn4").schedule(), worse, null, null, 400, 1.0);
        ApproximationBudget.Decision d = b.tick(10, true);
        // meeting τ + hysteresis now: q8 (measured); the plain policy has no judged bin
        assertEquals(cheapest(b, "rtn8"), d.inUse(), d.reason());
        assertTrue(PRICE.cost(Q8, option(b, "rtn8").schedule()) < PRICE.cost(WeightFormat.plain(), SCHED));
        assertTrue(d.changed());
        assertTrue(d.reason().contains("bin 1 p5 α 0.500 < τ − margin"), d.reason());
        assertEquals(256, option(b, "rtn4").schedule().budgets()[1], "q4's own bin 1 raised a rung (128 -> 256)");

        // nothing else measured: back to the plain policy
        ApproximationBudget q = budget(SCHED, 0.25, 4);
        q.offer(Q4, 10);
        lease(q, "rtn4", 10, 1, 200, 0.95);
        assertEquals("rtn4", q.tick(10, true).inUse());
        q.report("rtn4", 10, option(q, "rtn4").schedule(), worse, null, null, 400, 1.0);
        ApproximationBudget.Decision back = q.tick(12, true);
        assertEquals("plain", back.inUse());
        assertTrue(back.reason().contains("back to the plain policy"), back.reason());
        assertEquals(10, leasesOf(q, 12, 40, "rtn4"), "probed again: a quarter");
        // the plain policy breaching with nothing else meeting τ stays, the fallback, and raises its own bin
        ApproximationBudget f = budget(SCHED, 0.25, 4);
        f.offer(Q4, 10);
        f.report("plain", -1, SCHED, worse, null, null, 400, 1.0);
        ApproximationBudget.Decision fallback = f.tick(10, true);
        assertEquals("plain", fallback.inUse());
        assertTrue(fallback.reason().contains("the fallback: bin 1 p5 α 0.500 < τ − margin"), fallback.reason());
        assertEquals(256, option(f, "plain").schedule().budgets()[1]);
        // between τ − margin and τ + hysteresis an option in use stays (hysteresis)
        ApproximationBudget h = budget(SCHED, 0.25, 4);
        h.offer(Q4, 10);
        lease(h, "rtn4", 10, 1, 200, 0.95);
        assertTrue(h.tick(10, false).changed());
        lease(h, "rtn4", 10, 1, 2000, 0.845); // the merged p5 is about 0.845 ≥ 0.84
        ApproximationBudget.Decision k = h.tick(10, false);
        assertEquals("rtn4", k.inUse(), k.reason());
        assertFalse(k.changed());
    }

    @Test
    void anOptionNeverMeasuredIsProbedNotChosenAndOnlyTheNeighboursInPriceAreProbed() {
        ApproximationBudget b = budget(SCHED, 0.25, 4);
        assertEquals(0, 40 - leasesOf(b, 10, 40, "plain"), "nothing offered: plain only");
        b.offer(Q4, 10);
        ApproximationBudget.Decision d = b.tick(10, false);
        assertEquals("plain", d.inUse(), "q4 is cheaper but never measured");
        assertTrue(option(b, "rtn4").state().contains("probed: no bin has 100 tokens yet"), option(b, "rtn4").state());
        assertEquals(10, leasesOf(b, 10, 40, "rtn4"), "probing: a quarter of 40 leases");
        lease(b, "rtn4", 10, 0, 60, 0.99); // under min-tokens: not judged
        assertEquals("plain", b.tick(10, false).inUse());
        lease(b, "rtn4", 10, 0, 60, 0.99); // 120 over the kept windows
        assertEquals("rtn4", b.tick(10, false).inUse());

        // the plain policy in use, q8 and q4 offered: by price plain > q8 > q4, so only q8 is next to it
        ApproximationBudget n = budget(SCHED, 0.25, 4);
        n.offer(Q8, 10);
        n.offer(Q4, 10);
        assertEquals(0, leasesOf(n, 10, 40, "rtn4"));
        assertEquals(10, leasesOf(n, 10, 40, "rtn8"));
        assertTrue(option(n, "rtn4").state().startsWith("not probed"), option(n, "rtn4").state());
    }

    /** Tails at α 0.99 in every bin, 150 tokens each. */
    static TailStats everyBin() {
        TailStats t = new TailStats(256);
        for (int bin = 0; bin < 4; bin++) {
            t.merge(flat(bin, 150, 0.99));
        }
        return t;
    }

    @Test
    void theScheduleAndTheFormatArePricedTogether() {
        // both on the dense start: q8's fewer weight bytes make it the cheaper option
        ApproximationBudget b = budget(Schedule.dense(), 0.25, 4);
        b.offer(Q8, 10);
        List<String> inUse = new java.util.ArrayList<>();
        for (int w = 0; w < 5; w++) {
            // the plain policy's shadows clear τ + hysteresis everywhere, so its schedule steps down a
            // rung a window; q8's leases carry no shadow, so q8 stays dense
            ApproximationBudget.OptionState plain = option(b, "plain");
            Schedule shadow = b.plainBudgets().shadowSchedule();
            b.report("plain", -1, plain.schedule(), everyBin(), shadow, everyBin(), 600, 1.0);
            b.report("rtn8", 10, option(b, "rtn8").schedule(), everyBin(), null, null, 600, 1.0);
            inUse.add(b.tick(10, true).inUse());
        }
        assertEquals("rtn8", inUse.get(0), "at the same schedule q8 is cheaper");
        assertArrayEquals(new int[] {64, 64, 64, 64}, option(b, "plain").schedule().budgets());
        assertArrayEquals(new int[] {256, 512, 768, 1024}, option(b, "rtn8").schedule().budgets());
        // both meet τ + hysteresis: by hand, the sparse plain policy is now the cheaper combination,
        // though q8 at the plain policy's schedule would be cheaper still
        Schedule sparse = option(b, "plain").schedule();
        assertEquals("plain", cheapest(b, "plain", "rtn8"));
        assertTrue(PRICE.cost(Q8, sparse) < PRICE.cost(WeightFormat.plain(), sparse));
        assertEquals("plain", inUse.get(inUse.size() - 1), inUse.toString());
    }

    @Test
    void withoutACompressedVersionItIsThePlainBudgetControllerAlone() {
        BudgetController alone = new BudgetController(CTL, SCHED);
        BudgetController inside = new BudgetController(CTL, SCHED);
        ApproximationBudget b = new ApproximationBudget(inside, new ApproximationBudget.Settings(true, 0.25, 4), PRICE);
        for (int w = 0; w < 3; w++) {
            ApproximationBudget.Choice c = b.choose(1);
            assertTrue(c.plain());
            assertFalse(c.probe());
            assertEquals(alone.schedule(), c.schedule());
            assertEquals(alone.shadowSchedule(), c.shadow());
            TailStats tails = flat(1, 150, 0.95);
            TailStats shadow = flat(1, 150, 0.95);
            alone.report(c.schedule(), tails, c.shadow(), shadow);
            b.report(ApproximationBudget.PLAIN, -1, c.schedule(), tails, c.shadow(), shadow, 150, 1.0);
            BudgetController.Decision want = alone.tick();
            ApproximationBudget.Decision got = b.tick(1, true);
            assertEquals(want.schedule(), got.plain().schedule());
            assertEquals(want.changes(), got.plain().changes());
            assertEquals("plain", got.inUse());
            assertFalse(got.changed());
        }
        assertEquals("no compressed version yet", b.reason());
    }

    @Test
    void aVersionMoreThanMaxLagBehindThePolicyIsNeitherChosenNorProbed() {
        ApproximationBudget b = budget(SCHED, 0.25, 4);
        b.offer(Q4, 10);
        lease(b, "rtn4", 10, 0, 200, 0.99);
        assertEquals("rtn4", b.tick(14, false).inUse()); // 4 behind: allowed
        assertEquals(0, leasesOf(b, 15, 20, "rtn4"), "5 behind: plain only, no probing either");
        ApproximationBudget.Decision d = b.tick(15, false);
        assertEquals("plain", d.inUse());
        assertTrue(d.reason().contains("5 versions behind"), d.reason());
        // a newer version replaces it and is probed (the stale one had lost its use)
        assertTrue(b.offer(Q4, 15));
        assertFalse(b.offer(Q4, 12));
        assertEquals(15, b.newestVersion());
        assertEquals(5, leasesOf(b, 15, 20, "rtn4"));
    }

    @Test
    void aNewerVersionKeepsTheOptionsTailsScheduleAndUseAndLateReportsOfTheOldOneCount() {
        ApproximationBudget b = budget(SCHED, 0.25, 4);
        b.offer(Q4, 10);
        lease(b, "rtn4", 10, 0, 200, 0.95);
        assertEquals("rtn4", b.tick(11, false).inUse());
        assertTrue(b.offer(Q4, 12));
        assertEquals("rtn4", b.inUse(), "a version compressed from a newer policy stays in use");
        assertTrue(b.reason().contains("replaces v10"), b.reason());
        lease(b, "rtn4", 10, 0, 100, 0.95); // a late lease of v10
        lease(b, "rtn4", 12, 0, 100, 0.95);
        b.report("rtn4", 13, SCHED, flat(0, 100, 0.10), null, null, 100, 1.0); // a version never offered: ignored
        b.report("rtn2", 12, SCHED, flat(0, 100, 0.10), null, null, 100, 1.0); // a format never offered: ignored
        ApproximationBudget.Decision d = b.tick(12, false);
        assertEquals("rtn4", d.inUse());
        assertEquals(400, d.chosen().tokens()[0], "200 kept from the first window, 100 + 100 in this one");
    }

    @Test
    void aNewFormatStartsOnTheScheduleOfTheOptionInUseAndIsJudgedAtItsOwnBudgets() {
        ApproximationBudget b = budget(SCHED, 0.25, 4);
        b.offer(Q4, 3);
        assertEquals(SCHED.budgets().length, option(b, "rtn4").schedule().budgets().length);
        assertArrayEquals(SCHED.budgets(), option(b, "rtn4").schedule().budgets());
        b.report("rtn4", 3, Schedule.ofBins(256, new int[] {64, 64, 256, 256}), flat(1, 300, 0.99), null, null, 300, 1.0);
        ApproximationBudget.Decision d = b.tick(3, false);
        assertEquals("plain", d.inUse(), "no evidence at its budget 128 in bin 1: " + d.reason());
        assertEquals(0, option(b, "rtn4").tokens()[1]);
        assertThrows(IllegalArgumentException.class, () -> b.offer(WeightFormat.plain(), 4));
    }

    @Test
    void offSendsEveryLeaseToThePlainPolicyAndSettingsAreChecked() {
        ApproximationBudget b = new ApproximationBudget(new BudgetController(CTL, SCHED), new ApproximationBudget.Settings(false, 0.25, 4), PRICE);
        b.offer(Q4, 2);
        lease(b, "rtn4", 2, 0, 500, 0.99);
        assertEquals("plain", b.tick(2, false).inUse());
        assertEquals(0, leasesOf(b, 2, 20, "rtn4"));
        assertEquals("off", option(b, "rtn4").state());
        b.retune(CTL, new ApproximationBudget.Settings(true, 0.5, 4));
        assertEquals(10, leasesOf(b, 2, 20, "rtn4"));
        assertThrows(IllegalArgumentException.class, () -> new ApproximationBudget.Settings(true, 0, 4));
        assertThrows(IllegalArgumentException.class, () -> new ApproximationBudget.Settings(true, 0.6, 4));
        assertThrows(IllegalArgumentException.class, () -> new ApproximationBudget.Settings(true, 0.2, -1));
    }

    @Test
    void measuredLeasesCorrectAFormatsPriceSoTheOptionFasterInTheRunIsChosen() {
        ApproximationBudget b = budget(SCHED, 0.25, 4);
        b.offer(Q4, 10);
        lease(b, "rtn4", 10, 1, 150, 0.95);
        lease(b, "plain", -1, 1, 150, 0.95);
        assertEquals("rtn4", b.tick(10, false).inUse(), "by the cost model, q4 is cheaper");
        double q4 = PRICE.cost(Q4, SCHED);
        double plain = PRICE.cost(WeightFormat.plain(), SCHED);
        // measured: q4's decode steps take 0.8 of dense's where the model said 0.4; plain's 0.5 where it said 0.5
        for (int i = 0; i < ApproximationBudget.MIN_MEASUREMENTS - 1; i++) {
            b.measured("rtn4", 0.8, 1.0, 0.4, 1.0);
            b.measured("plain", 0.5, 1.0, 0.5, 1.0);
        }
        b.measured("rtn4", 0.0, 1.0, 0.4, 1.0); // not a measurement: ignored
        assertEquals(1.0, b.calibration("rtn4"), 0.0, "fewer than MIN_MEASUREMENTS: the model's price stands");
        lease(b, "rtn4", 10, 1, 150, 0.95);
        lease(b, "plain", -1, 1, 150, 0.95);
        assertEquals("rtn4", b.tick(10, false).inUse());
        b.measured("rtn4", 1.6, 2.0, 0.8, 2.0);
        b.measured("plain", 1.0, 2.0, 1.0, 2.0);
        // (Σ live / Σ dense) / (Σ predicted live / Σ predicted dense): q4 (3.2 / 4) / (1.6 / 4) = 2, plain 1
        assertEquals(2.0, b.calibration("rtn4"), 1e-12);
        assertEquals(1.0, b.calibration("plain"), 1e-12);
        lease(b, "rtn4", 10, 1, 150, 0.95);
        lease(b, "plain", -1, 1, 150, 0.95);
        ApproximationBudget.Decision d = b.tick(10, false);
        // by hand: q4 at 2 × its predicted cost against plain at its own
        assertTrue(2 * q4 > plain, 2 * q4 + " vs " + plain);
        assertEquals("plain", d.inUse(), d.reason());
        assertEquals(2 * q4, option(b, "rtn4").predictedCost(), 1e-9 * q4);
    }

    @Test
    void aFormatOfferedAfterARestartStartsOnItsOwnScheduleFromBefore() {
        ApproximationBudget b = budget(SCHED, 0.25, 3);
        Schedule earned = Schedule.ofBins(256, new int[] {64, 64, 128, 128}).withVersion(17);
        b.resume(java.util.Map.of(Q4.label(), earned, ApproximationBudget.PLAIN, Schedule.fixed(64)));
        assertTrue(b.offer(Q4, 3));
        ApproximationBudget.OptionState q4 = option(b, Q4.label());
        assertEquals(earned.toHocon(), q4.schedule().toHocon(), "its own budgets and version, not the plain policy's");
        assertFalse(q4.inUse(), "its evidence is gone: it is probed again before it is chosen");
        assertTrue(b.reason().contains("before a restart (v17)"), b.reason());
        assertEquals(SCHED.toHocon(), option(b, ApproximationBudget.PLAIN).schedule().toHocon(), "the plain policy's is its own");
        // a format without a saved schedule starts on the option in use, as before
        assertTrue(b.offer(Q8, 3));
        assertEquals(SCHED.budgets().length, option(b, Q8.label()).schedule().budgets().length);
        assertEquals(java.util.Arrays.toString(SCHED.budgets()), java.util.Arrays.toString(option(b, Q8.label()).schedule().budgets()));
        // what is saved is what it resumes
        assertEquals(earned.toHocon(), b.compressedSchedules().get(Q4.label()).toHocon());
        assertEquals(java.util.Set.of(Q4.label(), Q8.label()), b.compressedSchedules().keySet());
    }

    static ApproximationBudget halfCaches(boolean compressedOn) {
        return new ApproximationBudget(new BudgetController(CTL, SCHED), new ApproximationBudget.Settings(compressedOn, 0.25, 4),
                PRICE, true);
    }

    /** 80 of 400 tokens in bin 1 at α 0.5: a breach of any option whose kept windows hold fewer than 1200 tokens there. */
    static TailStats breach() {
        TailStats worse = new TailStats(256);
        for (int i = 0; i < 400; i++) {
            worse.add(256 + 3, (i < 80 ? 0.5 : 0.95) + i * 1e-7);
        }
        return worse;
    }

    @Test
    void theKvCacheIsAnAxisOfTheBudgetEveryOptionTwiceAndTheCheapestCombinationMeetingTauIsChosen() {
        ApproximationBudget b = halfCaches(true);
        // from the start: the policy on a float32 and on a float16 cache; the float16 one is priced lower (half the cache bytes)
        assertEquals(List.of("plain", "plain+kv16"), b.options(0).stream().map(ApproximationBudget.OptionState::label).toList());
        assertTrue(PRICE.cost(WeightFormat.plain().withHalfCache(), SCHED) < PRICE.cost(WeightFormat.plain(), SCHED));
        // it is probed (the policy's own weights: version −1, a float16 cache) and its own shadow rides along
        ApproximationBudget.Choice probe = null;
        for (int i = 0; i < 4 && probe == null; i++) {
            ApproximationBudget.Choice c = b.choose(10);
            probe = c.probe() ? c : null;
        }
        assertEquals("plain+kv16", probe.format().label());
        assertTrue(probe.plain(), "the policy's own weights");
        assertEquals(16, probe.format().cacheBits());
        assertArrayEquals(new int[] {64, 64, 128, 128}, probe.shadow().budgets());
        // a report of plain+kv16 (version −1) is its own, not the plain policy's
        lease(b, "plain+kv16", -1, 1, 150, 0.95);
        assertTrue(Double.isNaN(option(b, "plain").p5()[1]) || option(b, "plain").tokens()[1] == 0);
        ApproximationBudget.Decision d = b.tick(10, false);
        assertEquals("plain+kv16", d.inUse(), d.reason());
        assertEquals(0, option(b, "plain").tokens()[1], "the plain policy's tails are untouched");

        // a compressed format comes with its float16 twin, both on the schedule of the option in use
        b.offer(Q4, 10);
        assertEquals(List.of("plain", "plain+kv16", "rtn4", "rtn4+kv16"),
                b.options(10).stream().map(ApproximationBudget.OptionState::label).toList());
        assertEquals(Q4.withHalfCache(), option(b, "rtn4+kv16").format());
        lease(b, "rtn4", 10, 1, 150, 0.95);
        lease(b, "rtn4+kv16", 10, 1, 150, 0.95);
        ApproximationBudget.Decision both = b.tick(10, false);
        // every option meets τ: the cheapest, by hand, is the combination of 4-bit weights and a float16 cache
        assertEquals("rtn4+kv16", cheapest(b, "plain", "plain+kv16", "rtn4", "rtn4+kv16"));
        assertEquals("rtn4+kv16", both.inUse(), both.reason());
        // and it beats each single approximation's price
        assertTrue(both.chosen().predictedCost() < option(b, "rtn4").predictedCost()
                && both.chosen().predictedCost() < option(b, "plain+kv16").predictedCost());
        ApproximationBudget.Choice leased = b.choose(10);
        assertEquals("rtn4+kv16", leased.format().label());
        assertEquals(10, leased.version());
        assertEquals(Q4, leased.format().weights(), "a worker loads the format's weights by their own label");

        // a newer version replaces both twins'
        assertTrue(b.offer(Q4, 11));
        assertEquals(11, option(b, "rtn4").version());
        assertEquals(11, option(b, "rtn4+kv16").version());
        assertFalse(b.offer(Q4, 11));
        assertThrows(IllegalArgumentException.class, () -> b.offer(Q4.withHalfCache(), 12));

        // a breach of the combination raises it in its own bin and hands the run to the cheapest other option meeting τ + hysteresis
        b.report("rtn4+kv16", 11, option(b, "rtn4+kv16").schedule(), breach(), null, null, 400, 1.0);
        ApproximationBudget.Decision raised = b.tick(11, true);
        assertEquals(cheapest(b, "plain+kv16", "rtn4"), raised.inUse(), raised.reason());
        assertTrue(raised.reason().contains("rtn4+kv16 v11: bin 1 p5 α 0.500 < τ − margin"), raised.reason());
        assertEquals(256, option(b, "rtn4+kv16").schedule().budgets()[1], "its own bin 1 raised a rung");
        assertEquals(128, option(b, "rtn4").schedule().budgets()[1], "its twin's schedule is its own");
    }

    @Test
    void thePolicysFloat16CacheNeedsNoCompressedRolloutAndStepsDownOnItsOwnShadow() {
        ApproximationBudget b = halfCaches(false);
        b.offer(Q4, 10);
        lease(b, "plain+kv16", -1, 1, 150, 0.95);
        lease(b, "rtn4+kv16", 10, 1, 150, 0.99);
        ApproximationBudget.Decision d = b.tick(10, false);
        assertEquals("plain+kv16", d.inUse(), "compressed rollout off: the policy's float16 cache only: " + d.reason());
        assertEquals("off", option(b, "rtn4+kv16").state());
        // its shadow clears τ + hysteresis: its own schedule steps down, the plain policy's stays
        ApproximationBudget.Choice c = b.choose(10);
        assertEquals("plain+kv16", c.format().label());
        b.report("plain+kv16", -1, c.schedule(), flat(1, 150, 0.95), c.shadow(), flat(1, 150, 0.95), 150, 1.0);
        ApproximationBudget.Decision down = b.tick(10, true);
        assertEquals("plain+kv16", down.inUse());
        assertEquals(64, down.chosen().schedule().budgets()[1]);
        assertEquals(128, option(b, "plain").schedule().budgets()[1]);
        // switching compressed rollout off keeps it in use; its schedule is saved and resumed after a restart
        b.retune(CTL, new ApproximationBudget.Settings(false, 0.25, 4));
        assertEquals("plain+kv16", b.inUse());
        Schedule saved = b.compressedSchedules().get("plain+kv16");
        assertEquals(64, saved.budgets()[1]);
        ApproximationBudget again = halfCaches(false);
        again.resume(b.compressedSchedules());
        assertEquals(saved, option(again, "plain+kv16").schedule());
        // without the axis there is no float16 option
        assertEquals(List.of("plain"), budget(SCHED, 0.25, 4).options(0).stream().map(ApproximationBudget.OptionState::label).toList());
    }

    @Test
    void withTheSequenceGuardAnOptionMustAlsoHoldItsSequenceAlpha() {
        // q4 is cheaper than the plain policy on the same schedule, and its every p5 α holds (0.999 or
        // 0.9995); what decides is its sequence α: 100 tokens a trajectory at 0.999 are 0.1 disagreements,
        // e^−0.1 ≈ 0.905 < sequence-τ + hysteresis 0.91; at 0.9995, e^−0.05 ≈ 0.951 above it
        assertTrue(PRICE.cost(Q4, SCHED) < PRICE.cost(WeightFormat.plain(), SCHED));
        for (double a : new double[] {0.999, 0.9995}) {
            ApproximationBudget b = new ApproximationBudget(new BudgetController(BudgetControllerTest.sequenceSettings(0.9), SCHED),
                    new ApproximationBudget.Settings(true, 0.25, 4), PRICE);
            b.offer(Q4, 10);
            b.report(ApproximationBudget.PLAIN, -1, option(b, "plain").schedule(),
                    BudgetControllerTest.trajectories(10, new int[] {1}, new int[] {100}, new double[] {1.0}), null, null, 1000, 1.0);
            b.report(Q4.label(), 10, option(b, Q4.label()).schedule(),
                    BudgetControllerTest.trajectories(10, new int[] {1}, new int[] {100}, new double[] {a}), null, null, 1000, 1.0);
            ApproximationBudget.Decision d = b.tick(10, true);
            ApproximationBudget.OptionState q4 = option(b, Q4.label());
            assertEquals(Math.exp(-100 * (1 - a)), q4.sequenceAlpha(), 1e-4);
            if (a == 0.999) {
                assertEquals("plain", d.inUse());
                assertTrue(q4.state().contains("sequence α"), q4.state());
            } else {
                assertEquals(Q4.label(), d.inUse());
            }
        }
    }
}
