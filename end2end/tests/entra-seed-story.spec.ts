import { type Page } from "@playwright/test";
import { expect, test } from "./fixtures";
import { approveOnPhone, DEMO_ADMIN, hydrated, matchNumber, newDesktop, newPhone, scanQr, signIn, verifyEmail } from "./helpers";
import { DEMO_TENANT as TENANT, EMULATOR, EMULATOR_TOKEN } from "../playwright.config";

/** Authorize on the User source page: sign in at the emulator as Megan, consent for Contoso. */
async function connectContoso(admin: Page): Promise<void> {
  await admin.goto(`${TENANT}/adminportal/user-source`);
  await admin.locator("#user-source").selectOption("azuread");
  await admin.locator("#authorize").click();
  // The emulator's Microsoft-like pages: pick an account, accept the app's permissions,
  // then grant admin consent for the organisation.
  await admin.locator('input[name="account"][value$="4e01"]').check();
  await admin.getByRole("button", { name: "Next" }).click();
  await admin.getByRole("button", { name: "Accept" }).click();
  await admin.locator('input[name="account"][value$="4e01"]').check();
  await admin.getByRole("button", { name: "Accept" }).click();
  await admin.waitForURL(`${TENANT}/adminportal/user-source?**`);
  await hydrated(admin);
  await expect(admin.locator(".flash.ok")).toContainText("Authorized in contoso.com");
}

test("the seed story: connect Contoso, onboard Alex by QR, delete Alex in Entra, and Alex is signed out by itself", async ({ browser }) => {
  const { desktop: admin } = await signIn(browser, DEMO_ADMIN, TENANT);
  await admin.waitForURL(`${TENANT}/adminportal/users`);
  await connectContoso(admin);

  // Choose the domain and the prefix; the preview shows the JIT name.
  await admin.locator("#user-source").selectOption("azuread");
  await admin.locator("#domain").selectOption("contoso.com");
  await admin.locator("#prefix").fill("msp-");
  await expect(admin.locator("#prefix-preview")).toHaveText("alex@contoso.com → msp-alex");
  await admin.locator("#save-source").click();
  await expect(admin.locator(".flash.ok")).toContainText("Saved: users of contoso.com in contoso.com");
  await admin.reload();
  await expect(admin.locator("#connection")).toContainText("9f4c2a1e-5b7d-4e3a-8c6f-2d1b0a9e8f70");

  // Alex, who is in Contoso but not in Gatehouse, onboards by scanning the QR code.
  const alexDesktop = await newDesktop(browser, {}, TENANT);
  const alexPhone = await newPhone(browser);
  await verifyEmail(alexPhone, "alex@contoso.com");
  await approveOnPhone(alexPhone, await scanQr(alexDesktop), await matchNumber(alexDesktop));
  await expect(alexPhone.locator("#outcome-message")).toContainText("as msp-alex");
  await alexDesktop.waitForURL(`${TENANT}/home`);
  await hydrated(alexDesktop);
  await expect(alexDesktop.locator("#account-name")).toHaveText("msp-alex");

  // Someone deletes Alex on the emulator's control page.
  const control = await (await browser.newContext()).newPage();
  await control.goto(`${EMULATOR}/_emulator/ui?token=${EMULATOR_TOKEN}`);
  // The users table (the groups table below it names Alex too).
  const row = control.locator("table.users tr", { hasText: "alex@contoso.com" });
  await row.getByRole("button", { name: "Delete", exact: true }).click();
  await expect(control.locator("table.users tr", { hasText: "alex@contoso.com" })).toContainText("deleted");

  // Nobody clicks Sync now: Graph's change notification makes the reconciler run, and Alex's
  // open page falls back to the sign-in page by itself, without a reload.
  await alexDesktop.waitForURL(`${TENANT}/`, { timeout: 20_000 });
  await expect(alexDesktop.locator("#login-qr svg")).toBeVisible();
  await admin.goto(`${TENANT}/adminportal/reconciliation`);
  await expect(admin.locator("#runs tbody tr").first()).toContainText("notification");
  // Alex's timeline: first seen when the notification arrived, decided and access ended
  // within seconds of it; the tenant's p50/p95 count it.
  const timeline = admin.locator("#offboardings tbody tr", { hasText: "alex@contoso.com" });
  await expect(timeline).toContainText("msp-alex");
  await expect(timeline.locator("td").nth(3)).toHaveText(/^\+\d+ s$/);
  await expect(timeline.locator("td").nth(4)).toHaveText(/^\+\d+ s$/);
  await expect(admin.locator("#time-to-revoke")).toContainText(/p50 \d+ s, p95 \d+ s \(1 offboarding/);
  await admin.goto(`${TENANT}/adminportal/users`);
  await expect(admin.locator('#users tr[data-email="alex@contoso.com"]')).toHaveAttribute("data-status", "offboarded");
});
