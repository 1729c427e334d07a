import base from "./playwright.config";
import { defineConfig } from "@playwright/test";

// Measurements, not tests: bytes on the wire and time to interactive of first visits
// (BENCHMARKS.md). Same server set-up as the stories; pick the build with GATEHOUSE_BIN and
// GATEHOUSE_SITE_ROOT. Run: npx playwright test --config measure.config.ts
export default defineConfig({ ...base, testDir: "./measure", timeout: 120_000 });
