import { expect, type Browser, type BrowserContext, type Page } from "@playwright/test";
import { execFileSync } from "node:child_process";
import jsQR from "jsqr";
import { PNG } from "pngjs";
import { BASE, DB_FILE, TENANT } from "../playwright.config";

/** The admin of the local tenant `acme`. */
export const ADMIN = "admin@acme-msp.example";
/** The admin of the seeded `demo` tenant. */
export const DEMO_ADMIN = "admin@demo-msp.example";

/** A phone: a small touch screen with its own storage (its key lives in IndexedDB). */
export async function newPhone(browser: Browser): Promise<Page> {
  const ctx = await browser.newContext({ viewport: { width: 390, height: 780 }, hasTouch: true, isMobile: true });
  return ctx.newPage();
}

/** A desktop browser on the tenant's login page. */
export async function newDesktop(
  browser: Browser,
  options: { javaScriptEnabled?: boolean } = {},
  tenant: string = TENANT,
): Promise<Page> {
  const ctx: BrowserContext = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  const page = await ctx.newPage();
  await page.goto(`${tenant}/`);
  await expect(page.locator("#login-qr svg")).toBeVisible();
  return page;
}

/** The newest verification code mailed to `email`, read off the dev outbox page. */
export async function codeFromOutbox(page: Page, email: string): Promise<string> {
  const res = await page.request.get(`${BASE}/_dev/outbox`);
  const html = await res.text();
  const item = html.split("<li class=mail").find((part) => part.includes(`data-to="${email}"`));
  const code = item?.match(/\b(\d{6})\b/)?.[1];
  if (!code) throw new Error(`no code for ${email} in the outbox`);
  return code;
}

/** Enrolls the phone (if needed) and verifies `email` on it, reading the code from the outbox. */
export async function verifyEmail(phone: Page, email: string): Promise<void> {
  await phone.goto(`${BASE}/app`);
  // A new phone offers to enroll first; an enrolled one goes straight to its emails.
  await expect(phone.locator("#enroll, #email").first()).toBeVisible();
  const enroll = phone.locator("#enroll");
  if (await enroll.isVisible()) await enroll.click();
  await phone.locator("#email").fill(email);
  await phone.locator("#send-code").click();
  await expect(phone.locator("#status")).toContainText("We sent a code");
  await phone.locator("#code").fill(await codeFromOutbox(phone, email));
  await phone.locator("#confirm-code").click();
  await expect(phone.locator("#verified-emails")).toContainText(email);
}

/** What Chromium says when the page it was reading navigated away under the read. */
const NAVIGATED = ["not attached", "Cannot find context with specified id", "Execution context was destroyed"];

/**
 * Reads something off the login page. The page replaces itself now and then (without
 * JavaScript it reloads every few seconds; after a refusal it moves to a fresh code), so a
 * read that meets a navigation is tried again.
 */
async function readLoginPage<T>(read: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (err) {
      if (attempt >= 3 || !NAVIGATED.some((words) => String(err).includes(words))) throw err;
    }
  }
}

/** Decodes the QR code from a screenshot of `#login-qr` (or `where`), as a phone camera would. */
export async function scanQr(desktop: Page, where: string = "#login-qr"): Promise<string> {
  const shot = await readLoginPage(() => desktop.locator(where).screenshot());
  const png = PNG.sync.read(shot);
  const code = jsQR(new Uint8ClampedArray(png.data), png.width, png.height);
  if (!code) throw new Error("the QR code could not be decoded from the screenshot");
  return code.data;
}

/** The match number the desktop shows. */
export async function matchNumber(desktop: Page): Promise<string> {
  return (await readLoginPage(() => desktop.locator("#match-number").innerText())).trim();
}

/** Opens the scanned link on the phone and taps `number`. */
export async function approveOnPhone(phone: Page, link: string, number: string): Promise<void> {
  await phone.goto(link);
  await phone.locator(`#numbers button[data-number="${Number(number)}"]`).click();
}

/** Runs SQL against the e2e database (only to move time forward: expire a challenge). */
export function sql(statement: string): void {
  execFileSync("sqlite3", [DB_FILE, statement]);
}

/** Signs `email` in on a new desktop with a new phone; returns both. */
export async function signIn(browser: Browser, email: string, tenant: string = TENANT): Promise<{ desktop: Page; phone: Page }> {
  const desktop = await newDesktop(browser, {}, tenant);
  const phone = await newPhone(browser);
  await verifyEmail(phone, email);
  await approveOnPhone(phone, await scanQr(desktop), await matchNumber(desktop));
  await expect(phone.locator("#outcome")).toHaveAttribute("data-outcome", "approved");
  await hydrated(desktop);
  return { desktop, phone };
}

/**
 * Waits until the signed-in page the desktop landed on has hydrated: the login page loads no
 * WebAssembly, so the first portal page downloads it, and a click before it has started
 * would be a plain form post.
 */
export async function hydrated(page: Page): Promise<void> {
  await page.waitForURL((url) => url.pathname !== "/", { timeout: 15_000 });
  await expect(page.locator("html[data-hydrated]")).toBeAttached({ timeout: 30_000 });
}

/** Invites a technician through the admin portal form. */
export async function invite(admin: Page, first: string, email: string): Promise<void> {
  await admin.locator('input[name="first_name"]').fill(first);
  await admin.locator('input[name="last_name"]').fill("Tester");
  await admin.locator('input[name="email"]').fill(email);
  await admin.getByRole("button", { name: "Invite user" }).click();
  await expect(admin.locator(`#users tr[data-email="${email}"]`)).toBeVisible();
}
