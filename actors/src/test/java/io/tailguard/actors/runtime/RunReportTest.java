package io.tailguard.actors.runtime;

import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

class RunReportTest {

    @Test
    void everySummaryValuePrintsAsAValueNotAsItsTypeAndHash() {
        assertEquals("[48, 48, 64]", RunReport.display(new int[] {48, 48, 64}));
        assertEquals("[0.5, NaN]", RunReport.display(new double[] {0.5, Double.NaN}));
        assertEquals("[10, 30]", RunReport.display(new long[] {10, 30}));
        assertEquals("[a, [1, 2]]", RunReport.display(new Object[] {"a", new int[] {1, 2}}));
        Map<String, Object> nested = new LinkedHashMap<>();
        nested.put("versions", List.of(10L, 30L));
        nested.put("last_alpha_p5", new double[] {0.91});
        nested.put("token_share", 0.25);
        assertEquals("{versions=[10, 30], last_alpha_p5=[0.91], token_share=0.25}", RunReport.display(nested));
        assertEquals("all steps done", RunReport.display("all steps done"));
        assertEquals("null", RunReport.display(null));
    }

    @Test
    void leasesRolloutTimesArePlottedWhenThereAreAny(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) throws Exception {
        org.junit.jupiter.api.Assertions.assertFalse(RunReport.rolloutPlots(tmp, List.of(), 0));
        System.setProperty("java.awt.headless", "true");
        List<RunObserver.Rollout> leases = List.of(
                new RunObserver.Rollout(1000, "w", 1, 1, 8, 10, 0.5, 1.0, false, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN,
                        RunObserver.Rollout.PLAIN, 1.5, 0.5, 0),
                new RunObserver.Rollout(2000, "w", 2, 1, 8, 10, 0.5, 1.0, true, 0.8, 1.6, 0.5, 0.1, 0.25, RunObserver.Rollout.PLAIN,
                        3.6, 0.5, 0.2));
        org.junit.jupiter.api.Assertions.assertTrue(RunReport.rolloutPlots(tmp, leases, 0));
        for (String f : new String[] {"rollout.png", "speedup.png"}) {
            org.junit.jupiter.api.Assertions.assertTrue(java.nio.file.Files.size(tmp.resolve(f)) > 0, f);
        }
    }
}
