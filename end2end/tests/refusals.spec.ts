import { expect, test } from "./fixtures";
import { ADMIN, approveOnPhone, invite, matchNumber, newDesktop, newPhone, scanQr, signIn, sql, verifyEmail } from "./helpers";
import { BASE, TENANT } from "../playwright.config";

test("a wrong number refuses the sign-in on the phone and on the screen", async ({ browser }) => {
  const desktop = await newDesktop(browser);
  const phone = await newPhone(browser);
  await verifyEmail(phone, ADMIN);
  const link = await scanQr(desktop);
  const right = Number(await matchNumber(desktop));
  await phone.goto(link);
  const wrong = phone.locator(`#numbers button:not([data-number="${right}"])`).first();
  await wrong.click();
  await expect(phone.locator("#outcome-message")).toContainText("not the number shown on the screen");
  await expect(desktop.locator(".flash.error")).toContainText("Sign-in refused: the wrong number was picked");
  // The screen moves on to a fresh code; the old one is dead.
  await expect.poll(async () => scanQr(desktop), { timeout: 15_000 }).not.toBe(link);
  await phone.goto(link);
  await expect(phone.locator("#outcome-message")).toContainText("already denied");
  await expect(desktop).toHaveURL(`${TENANT}/`);
});

test("an expired code cannot be approved, and the screen gets a new one", async ({ browser }) => {
  const desktop = await newDesktop(browser);
  const phone = await newPhone(browser);
  await verifyEmail(phone, ADMIN);
  const link = await scanQr(desktop);
  // Two minutes pass for this code.
  const challenge = new URL(link).searchParams.get("challenge");
  sql(`UPDATE login_challenges SET expires_at = strftime('%s','now') - 1 WHERE id = '${challenge}'`);
  await phone.goto(link);
  await expect(phone.locator("#outcome-message")).toContainText("expired");
  // The time passed for the database only: the server trusts its memory of the page for a
  // few seconds more (a real expiry ends that memory too). After one reload the page's event
  // stream hears "expired" and the page reloads itself until it shows a new code; a fast
  // (release) build does that quicker than a screenshot, so the code is read once it settles.
  await desktop.reload();
  await expect
    .poll(() => desktop.locator("#login-qr").getAttribute("data-challenge").catch(() => challenge), {
      timeout: 30_000,
      intervals: [1_000],
    })
    .not.toBe(challenge);
  await desktop.waitForLoadState("load");
  await expect.poll(() => scanQr(desktop).catch(() => link), { timeout: 10_000 }).not.toBe(link);
});

test("an approval is used once, by the browser that showed the code", async ({ browser }) => {
  const other = await newDesktop(browser);
  const otherLink = await scanQr(other);
  const { desktop, phone } = await signIn(browser, ADMIN);
  const link = phone.url();
  await desktop.waitForURL(`${TENANT}/adminportal/users`);

  // Replay: the same link again.
  await phone.goto(link);
  await expect(phone.locator("#outcome-message")).toContainText("already");

  // The second browser was never approved: it still shows its own code, and a reload
  // does not sign it in.
  await other.reload();
  await expect(other).toHaveURL(`${TENANT}/`);
  expect(await scanQr(other)).toBe(otherLink);
  await other.goto(`${TENANT}/adminportal/users`);
  await expect(other).toHaveURL(`${TENANT}/`);
});

test("a disabled technician cannot sign in and is told why", async ({ browser }) => {
  const { desktop: admin } = await signIn(browser, ADMIN);
  await admin.waitForURL(`${TENANT}/adminportal/users`);
  await invite(admin, "Bo", "bo@acme-msp.example");
  admin.on("dialog", (d) => d.accept());
  const row = admin.locator('#users tr[data-email="bo@acme-msp.example"]');
  await row.locator('button[data-action="disable"]').click();
  await expect(admin.locator(".flash.ok")).toContainText("msp-bo is disabled");
  await expect(row).toHaveAttribute("data-status", "disabled");

  const desktop = await newDesktop(browser);
  const phone = await newPhone(browser);
  await verifyEmail(phone, "bo@acme-msp.example");
  await phone.goto(await scanQr(desktop));
  await phone.locator(`#numbers button[data-number="${Number(await matchNumber(desktop))}"]`).click();
  await expect(phone.locator("#outcome-message")).toContainText("msp-bo at Acme MSP is disabled");
  // The screen is told only that the phone refused: whoever shows a QR code learns nothing
  // about the person who scanned it.
  await expect(desktop.locator(".flash.error")).toContainText("Sign-in refused: the sign-in was refused on the phone");
  await expect(desktop.locator("body")).not.toContainText("msp-bo");
  await expect(desktop).toHaveURL(`${TENANT}/`);
});

test("a technician disabled between the phone's approval and the computer's return is told why", async ({ browser }) => {
  const { desktop: admin } = await signIn(browser, ADMIN);
  await admin.waitForURL(`${TENANT}/adminportal/users`);
  await invite(admin, "Dee", "dee@acme-msp.example");
  const desktop = await newDesktop(browser);
  const phone = await newPhone(browser);
  await verifyEmail(phone, "dee@acme-msp.example");

  // The computer's return after the approval is held until the admin has disabled Dee.
  let release!: () => void;
  const disabled = new Promise<void>((resolve) => (release = resolve));
  await desktop.route(`${TENANT}/`, async (route) => {
    await disabled;
    await route.continue();
  });
  await approveOnPhone(phone, await scanQr(desktop), await matchNumber(desktop));
  await expect(phone.locator("#outcome")).toHaveAttribute("data-outcome", "approved");
  admin.on("dialog", (d) => d.accept());
  const row = admin.locator('#users tr[data-email="dee@acme-msp.example"]');
  await row.locator('button[data-action="disable"]').click();
  await expect(row).toHaveAttribute("data-status", "disabled");
  release();

  await expect(desktop.locator(".flash.error")).toContainText("Sign-in refused: account disabled");
  await expect(desktop).toHaveURL(`${TENANT}/`);
  await expect(desktop.locator("#login-qr svg")).toBeVisible();
});

test("a page elsewhere cannot frame the phone's approve page or the login page", async ({ browser }) => {
  // A page of another site (here: an inline document) tries to show Gatehouse in frames,
  // to overlay it and trick a tap. The browser must leave the frames empty.
  const attacker = await (await browser.newContext()).newPage();
  const refused: string[] = [];
  attacker.on("console", (msg) => {
    if (/frame-ancestors|Refused to (display|frame)/.test(msg.text())) refused.push(msg.text());
  });
  await attacker.setContent(
    `<iframe id="phone" src="${BASE}/app/scan?tenant=acme&challenge=x"></iframe>` +
      `<iframe id="login" src="${TENANT}/"></iframe>`,
  );
  for (const id of ["phone", "login"]) {
    const frame = attacker.frameLocator(`#${id}`);
    await expect(frame.locator("#app, #login-qr")).toHaveCount(0);
  }
  await expect.poll(() => refused.length).toBeGreaterThanOrEqual(2);
});
