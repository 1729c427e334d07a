import { expect, test } from "../tests/fixtures";
import { ADMIN, signIn } from "../tests/helpers";
import { BASE, TENANT } from "../playwright.config";
import * as http from "node:http";
import type { Browser, Cookie } from "@playwright/test";

/** The bytes a body takes on the wire for `encoding` (what the server sends, undecoded). */
function wireBytes(url: string, encoding: string, cookies: Cookie[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const cookie = cookies
      .filter((c) => u.hostname === c.domain.replace(/^\./, "") || u.hostname.endsWith(c.domain))
      .map((c) => `${c.name}=${c.value}`)
      .join("; ");
    const req = http.get(
      { host: "127.0.0.1", port: u.port, path: u.pathname + u.search, headers: { host: u.host, "accept-encoding": encoding, cookie } },
      (res) => {
        let n = 0;
        res.on("data", (chunk: Buffer) => (n += chunk.length));
        res.on("end", () => resolve(n));
      },
    );
    req.on("error", reject);
  });
}

/** Everything a fresh browser loads for `path`, each URL once, with its bytes per encoding. */
async function firstVisit(browser: Browser, url: string, cookies: Cookie[] = []) {
  const ctx = await browser.newContext();
  await ctx.addCookies(cookies);
  const page = await ctx.newPage();
  const urls = new Set<string>();
  page.on("request", (req) => {
    // Event streams stay open; they are not part of what a visit downloads.
    if (!/\/events$/.test(new URL(req.url()).pathname)) urls.add(req.url());
  });
  const started = Date.now();
  const opened = page.waitForRequest((req) => /\/events$/.test(new URL(req.url()).pathname), { timeout: 60_000 }).catch(() => null);
  await page.goto(url, { waitUntil: "load" });
  const streamAt = (await opened) ? Date.now() - started : NaN;
  const rows = [];
  for (const u of urls) {
    rows.push({
      url: new URL(u).pathname,
      identity: await wireBytes(u, "identity", cookies),
      gzip: await wireBytes(u, "gzip", cookies),
      br: await wireBytes(u, "br", cookies),
    });
  }
  await ctx.close();
  return { rows, streamAt };
}

function report(name: string, visit: { rows: { url: string; identity: number; gzip: number; br: number }[]; streamAt: number }) {
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;
  const sum = (k: "identity" | "gzip" | "br") => visit.rows.reduce((s, r) => s + r[k], 0);
  console.log(`\n${name}: ${visit.rows.length} requests; uncompressed ${kb(sum("identity"))}, gzip ${kb(sum("gzip"))}, Brotli ${kb(sum("br"))}` +
    (Number.isNaN(visit.streamAt) ? "" : `; event stream opened (hydrated) after ${visit.streamAt} ms`));
  for (const r of visit.rows) console.log(`  ${r.url}: ${kb(r.identity)} / gzip ${kb(r.gzip)} / br ${kb(r.br)}`);
}

test("first visits: bytes on the wire and time to interactive", async ({ browser }) => {
  // Time to interactive, five fresh browsers: the page is hydrated when its event stream opens.
  const times: number[] = [];
  for (let i = 0; i < 5; i++) times.push((await firstVisit(browser, `${TENANT}/`)).streamAt);
  const login = await firstVisit(browser, `${TENANT}/`);
  report("login page", login);
  console.log(`  time to interactive over ${times.length} fresh browsers: ${times.sort((a, b) => a - b).join(", ")} ms`);

  const { desktop } = await signIn(browser, ADMIN);
  await desktop.waitForURL(`${TENANT}/adminportal/users`);
  const cookies = await desktop.context().cookies();
  report("admin portal (User management, signed in)", await firstVisit(browser, `${TENANT}/adminportal/users`, cookies));
  report("phone app", await firstVisit(browser, `${BASE}/app`));
  expect(login.rows.length).toBeGreaterThan(0);
});
