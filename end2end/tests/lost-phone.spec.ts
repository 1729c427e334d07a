import { expect, test } from "./fixtures";
import { ADMIN, approveOnPhone, hydrated, invite, matchNumber, newDesktop, newPhone, scanQr, signIn, verifyEmail } from "./helpers";
import { BASE, TENANT } from "../playwright.config";

test("an admin revokes a technician's lost phone; it is refused, and a new phone signs them in", async ({ browser }) => {
  const { desktop: admin } = await signIn(browser, ADMIN);
  await admin.waitForURL(`${TENANT}/adminportal/users`);
  await invite(admin, "Lou", "lou@acme-msp.example");
  const { desktop: lou, phone } = await signIn(browser, "lou@acme-msp.example");
  await lou.waitForURL(`${TENANT}/home`);
  await hydrated(lou);

  // The admin opens Lou's phones and revokes the one Lou signed in with.
  admin.on("dialog", (d) => d.accept());
  const row = admin.locator('#users tr[data-email="lou@acme-msp.example"]');
  await row.locator('button[data-action="phones"]').click();
  const phones = admin.locator(".phones-row");
  await expect(phones).toContainText("lou@acme-msp.example");
  await expect(phones).toContainText("has signed in here");
  await phones.locator('button[data-action="revoke-phone"]').click();
  await expect(phones.locator(".flash.ok")).toContainText("is revoked");
  await expect(phones.locator('li[data-revoked="true"]')).toHaveCount(1);
  // The session that phone approved has ended: Lou's open page is told and leaves.
  await expect(lou).toHaveURL(`${TENANT}/`, { timeout: 10_000 });

  // The lost phone's next approval is refused, on the phone and on the screen.
  const desktop = await newDesktop(browser);
  await approveOnPhone(phone, await scanQr(desktop), await matchNumber(desktop));
  await expect(phone.locator("#outcome")).toHaveAttribute("data-outcome", "refused");
  await expect(phone.locator("#outcome")).toHaveAttribute("data-code", "device_revoked");
  await expect(phone.locator("#outcome-message")).toContainText("revoked");
  await expect(desktop.locator(".flash.error")).toContainText("Sign-in refused");
  await expect(desktop).toHaveURL(`${TENANT}/`);

  // Lou sets the phone up again (a new key) and signs in.
  await phone.locator("#re-enroll").click();
  await expect(phone.locator("#enroll")).toBeVisible();
  await verifyEmail(phone, "lou@acme-msp.example");
  const again = await newDesktop(browser);
  await approveOnPhone(phone, await scanQr(again), await matchNumber(again));
  await expect(phone.locator("#outcome")).toHaveAttribute("data-outcome", "approved");
  await again.waitForURL(`${TENANT}/home`);
  await hydrated(again);
  await expect(again.locator("body")).toContainText("msp-lou");
});

test("a technician forgets their phone in the app, and it signs nobody in after", async ({ browser }) => {
  const desktopBefore = await newDesktop(browser);
  const phone = await newPhone(browser);
  await verifyEmail(phone, ADMIN);
  await approveOnPhone(phone, await scanQr(desktopBefore), await matchNumber(desktopBefore));
  await desktopBefore.waitForURL(`${TENANT}/adminportal/users`);
  await hydrated(desktopBefore);

  await phone.goto(`${BASE}/app`);
  phone.on("dialog", (d) => d.accept());
  await phone.locator("#forget").click();
  await expect(phone.locator("#enroll")).toBeVisible();
  // The sign-in that phone approved has ended, and its open page leaves by itself.
  await expect(desktopBefore).toHaveURL(`${TENANT}/`, { timeout: 10_000 });
});
