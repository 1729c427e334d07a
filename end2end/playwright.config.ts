import { defineConfig } from "@playwright/test";
import { randomUUID } from "node:crypto";
import * as os from "node:os";
import * as path from "node:path";

// A Gatehouse of its own for the browser tests: demo mode (the seeded `demo` tenant and
// the dev outbox) on a fresh SQLite file, on a port apart from a running demo.
export const PORT = 3300;
export const BASE = `http://localhost:${PORT}`;
/** The local-directory tenant most stories use (created by the CLI before the server starts). */
export const TENANT = `http://acme.localhost:${PORT}`;
/** The seeded demo tenant, which the Entra story connects to Contoso. */
export const DEMO_TENANT = `http://demo.localhost:${PORT}`;
/** The demo's in-process Entra emulator listens 100 ports above Gatehouse. */
export const EMULATOR = `http://localhost:${PORT + 100}`;
/** The demo emulator's control token is random unless set; the stories draw their own, once
 * (the config is read again in each worker, which inherits the runner's environment). */
export const EMULATOR_TOKEN = (process.env.GATEHOUSE_E2E_EMULATOR_TOKEN ??= `e2e-${randomUUID()}`);
export const DB_FILE = path.join(__dirname, ".tmp", "e2e.db");

const targetDir = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), ".cache", "gatehouse", "target");
const bin = process.env.GATEHOUSE_BIN || path.join(targetDir, "debug", "gatehouse");
/** The site the binary serves: the debug build's by default; the release build's
 * (`dist/site`, from scripts/build-release.sh) when GATEHOUSE_SITE_ROOT says so. */
const siteRoot = process.env.GATEHOUSE_SITE_ROOT || path.join(__dirname, "..", "target", "site");

export default defineConfig({
  testDir: "./tests",
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  use: {
    launchOptions: {
      executablePath: "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
      ],
    },
    trace: "retain-on-failure",
  },
  webServer: {
    command: `rm -rf .tmp && mkdir -p .tmp && "${bin}" tenant create --slug acme --name "Acme MSP" --admin-email admin@acme-msp.example && exec "${bin}" serve`,
    url: `${BASE}/readyz`,
    reuseExistingServer: false,
    timeout: 60_000,
    env: {
      DATABASE_URL: `sqlite://${DB_FILE}`,
      GATEHOUSE_LISTEN: `127.0.0.1:${PORT}`,
      GATEHOUSE_BASE_DOMAIN: `localhost:${PORT}`,
      GATEHOUSE_DEMO: "true",
      EMULATOR_CONTROL_TOKEN: EMULATOR_TOKEN,
      LEPTOS_SITE_ROOT: siteRoot,
      // E2E_RUST_LOG=gatehouse=info shows the server's runs and deliveries beside a failing story.
      RUST_LOG: process.env.E2E_RUST_LOG ?? "warn",
      // The stories verify the admin's address in almost every spec and enrol a new phone in
      // most, all from one IP; the hourly budgets have API tests of their own.
      GATEHOUSE_CODE_MAILS_PER_ADDRESS: "1000",
      GATEHOUSE_CODE_MAILS_PER_IP: "1000",
      GATEHOUSE_DEVICE_REGISTRATIONS_PER_IP: "1000",
    },
  },
});
