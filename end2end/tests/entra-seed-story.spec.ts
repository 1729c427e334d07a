import { type Browser, type Page } from "@playwright/test";
import { expect, test } from "./fixtures";
import { approveOnPhone, DEMO_ADMIN, hydrated, matchNumber, newDesktop, newPhone, scanQr, signIn, verifyEmail } from "./helpers";
import { DEMO_TENANT as TENANT, EMULATOR, EMULATOR_TOKEN } from "../playwright.config";

/** Fabrikam's Entra tenant in the demo's emulator (the Customers story connects it). */
const FABRIKAM = "b3a9d2c4-6e1f-4a8b-9c7d-5e3f2a1b0c60";

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
  await admin.waitForURL(`${TENANT}/adminportal/user-source`);
  await hydrated(admin);
  await expect(admin.locator(".flash.ok")).toContainText("Authorized in contoso.com");
}

/** Someone verifies `email` on a new phone and scans the QR code of a new desktop. */
async function firstScan(browser: Browser, email: string): Promise<{ desktop: Page; phone: Page }> {
  const desktop = await newDesktop(browser, {}, TENANT);
  const phone = await newPhone(browser);
  await verifyEmail(phone, email);
  await approveOnPhone(phone, await scanQr(desktop), await matchNumber(desktop));
  return { desktop, phone };
}

test("the seed story: connect Contoso for members of MSP Technicians, onboard Alex by QR, refuse Lidia, end access by deletion and by leaving the group", async ({ browser }) => {
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
  await hydrated(admin);
  await expect(admin.locator("#connection")).toContainText("9f4c2a1e-5b7d-4e3a-8c6f-2d1b0a9e8f70");

  // Only members of "MSP Technicians" may onboard: find the group by name (its users counted
  // through the nested "Tier 2"), choose it, save.
  await admin.locator("#group-search-text").fill("MSP");
  await admin.locator("#find-groups").click();
  await expect(admin.locator("#found-groups")).toContainText("MSP Technicians (Security, 3 users)");
  await expect(admin.locator("#found-groups")).toContainText("MSP Admins (Security, 1 user)");
  await admin.locator("#scope-group").selectOption({ label: "MSP Technicians (Security, 3 users)" });
  await admin.locator("#save-groups").click();
  await expect(admin.locator(".flash.ok")).toContainText('only members of "MSP Technicians" (3 users) may onboard');
  await expect(admin.locator("#groups-summary")).toContainText('Only members of "MSP Technicians" may onboard.');

  // At Fabrikam (connected in the Customers story), the members of "MSP Technicians" may
  // request Helpdesk Administrator, in place of every technician: the admin finds the group
  // on the Customers page, maps it, and withdraws the role's line.
  await admin.goto(`${TENANT}/adminportal/customers`);
  await hydrated(admin);
  const fabrikamCard = admin.locator(`section[data-tenant="${FABRIKAM}"]`);
  await admin.locator("#msp-group-search-text").fill("MSP");
  await admin.locator("#msp-find-groups").click();
  await expect(admin.locator("#msp-found-groups")).toContainText("MSP Technicians (Security, 3 users)");
  await fabrikamCard.locator('.grant-form select[name="holders"]').selectOption({ label: 'Members of "MSP Technicians"' });
  await fabrikamCard.locator('.grant-form select[name="role"]').selectOption({ label: "Helpdesk Administrator" });
  await fabrikamCard.locator(".grant-form button").click();
  await expect(admin.locator(".flash.ok")).toContainText('Members of "MSP Technicians" may now request Helpdesk Administrator at Fabrikam.');
  await fabrikamCard.locator(".grants li").filter({ hasText: /^Technicians → Helpdesk Administrator/ }).getByRole("button", { name: "Withdraw" }).click();
  await expect(admin.locator(".flash.ok")).toContainText("Technicians may no longer request Helpdesk Administrator at Fabrikam.");
  await expect(fabrikamCard.locator(".grants li")).toHaveCount(1);
  await expect(fabrikamCard.locator(".grants li")).toContainText('Members of "MSP Technicians" → Helpdesk Administrator');

  // Alex, who is in the group but not in Gatehouse, onboards by scanning the QR code.
  const alex = await firstScan(browser, "alex@contoso.com");
  await expect(alex.phone.locator("#outcome-message")).toContainText("as msp-alex");
  const alexDesktop = alex.desktop;
  await alexDesktop.waitForURL(`${TENANT}/home`);
  await hydrated(alexDesktop);
  await expect(alexDesktop.locator("#account-name")).toHaveText("msp-alex");

  // Alex requests access at Fabrikam (Microsoft confirms he is in "MSP Technicians"). His
  // phone names the customer, the account and the role; he picks the number the screen
  // shows, and the screen shows his pass, once.
  const offer = alexDesktop.locator('.offer[data-customer="Fabrikam"]');
  await expect(offer).toContainText("Helpdesk Administrator");
  await offer.locator(".request-access").click();
  await expect(alexDesktop.locator("#access-qr svg")).toBeVisible();
  await alex.phone.goto(await scanQr(alexDesktop, "#access-qr"));
  await expect(alex.phone.locator("#access-customer")).toHaveText("Fabrikam");
  await expect(alex.phone.locator("#access-account")).toHaveText("msp-alex@fabrikam.com");
  await expect(alex.phone.locator("#access-roles")).toHaveText("Helpdesk Administrator");
  await expect(alex.phone.locator("#access-window")).toHaveText("2 hours");
  const accessNumber = (await alexDesktop.locator("#access-match-number").innerText()).trim();
  await alex.phone.locator(`#numbers button[data-number="${Number(accessNumber)}"]`).click();
  await expect(alex.phone.locator("#outcome")).toHaveAttribute("data-outcome", "approved");
  await expect(alexDesktop.locator("#jit-account")).toHaveText("msp-alex@fabrikam.com");
  await expect(alexDesktop.locator("#jit-credential")).toHaveAttribute("data-kind", "pass");
  const pass = (await alexDesktop.locator("#jit-credential").innerText()).trim();
  await expect(offer.locator(".open-account")).toContainText("msp-alex@fabrikam.com is open until");

  // With it, Alex signs in to Fabrikam (the emulator's sign-in page stands in for Microsoft's)
  // and holds the role.
  const signInAt = await alexDesktop.locator("#jit-sign-in").getAttribute("href");
  const fabrikam = await (await browser.newContext()).newPage();
  const signInToFabrikam = async () => {
    await fabrikam.goto(signInAt!);
    await fabrikam.locator("#username").fill("msp-alex@fabrikam.com");
    await fabrikam.locator("#password").fill(pass);
    await fabrikam.locator("#sign-in").click();
  };
  await signInToFabrikam();
  await expect(fabrikam.locator("#signed-in")).toContainText("Signed in to Fabrikam as msp-alex@fabrikam.com");
  await expect(fabrikam.locator("#roles")).toHaveText("Helpdesk Administrator");
  await admin.goto(`${TENANT}/adminportal/customers`);
  await hydrated(admin);
  await expect(admin.locator(`section[data-tenant="${FABRIKAM}"] .accounts`)).toContainText("msp-alex@fabrikam.com");

  // Lidia is in contoso.com but not in the group: her phone says why, the screen learns nothing.
  const lidia = await firstScan(browser, "lidia@contoso.com");
  await expect(lidia.phone.locator("#outcome-message")).toContainText('not a member of the Entra ID group "MSP Technicians"');
  await expect(lidia.desktop.locator(".flash.error")).toContainText("Sign-in refused");

  // Isaiah, also a member, onboards; someone deletes him on the emulator's control page.
  const isaiahDesktop = (await firstScan(browser, "isaiah@contoso.com")).desktop;
  await isaiahDesktop.waitForURL(`${TENANT}/home`);
  await hydrated(isaiahDesktop);
  const control = await (await browser.newContext()).newPage();
  await control.goto(`${EMULATOR}/_emulator/ui?token=${EMULATOR_TOKEN}`);
  // The users table (the groups table below it names Isaiah too).
  const row = control.locator("table.users tr", { hasText: "isaiah@contoso.com" });
  await row.getByRole("button", { name: "Delete", exact: true }).click();
  await expect(control.locator("table.users tr", { hasText: "isaiah@contoso.com" })).toContainText("deleted");

  // Nobody clicks Sync now: Graph's change notification makes the reconciler run, and Isaiah's
  // open page falls back to the sign-in page by itself, without a reload.
  await isaiahDesktop.waitForURL(`${TENANT}/`, { timeout: 20_000 });
  await expect(isaiahDesktop.locator("#login-qr svg")).toBeVisible();
  await admin.goto(`${TENANT}/adminportal/reconciliation`);
  await hydrated(admin);
  await expect(admin.locator("#runs tbody tr").first()).toContainText("notification");
  // Isaiah's timeline: first seen when the notification arrived, decided and access ended
  // within seconds of it; the tenant's p50/p95 count it.
  const timeline = admin.locator("#offboardings tbody tr", { hasText: "isaiah@contoso.com" });
  await expect(timeline).toContainText("msp-isaiah");
  await expect(timeline.locator("td").nth(3)).toHaveText(/^\+\d+ s$/);
  await expect(timeline.locator("td").nth(4)).toHaveText(/^\+\d+ s$/);
  await expect(admin.locator("#time-to-revoke")).toContainText(/p50 \d+ s, p95 \d+ s \(1 offboarding/);

  // Alex is taken out of "MSP Technicians" on the control page. Microsoft notifies no user
  // change for that; Sync now finds it, offboards Alex and his open page leaves by itself.
  await control.reload();
  const technicians = control.locator('table.groups tr[data-group="MSP Technicians"]');
  await technicians.locator("form.member", { hasText: "alex@contoso.com" }).getByRole("button", { name: "Remove from group" }).click();
  await expect(control.locator('table.groups tr[data-group="MSP Technicians"]')).not.toContainText("alex@contoso.com");
  await admin.locator("#sync-now").click();
  await expect(admin.locator(".flash.ok")).toContainText("1 offboarded");
  await alexDesktop.waitForURL(`${TENANT}/`, { timeout: 20_000 });
  // That run asked Graph twice: the users' changes and the groups' changes (a copy of the
  // groups' members is kept through /groups/delta, so a run never reads a group whole).
  await admin.reload();
  await hydrated(admin);
  const sync = admin.locator("#runs tbody tr", { hasText: "manual" }).first();
  await expect(sync.locator("td").nth(3)).toHaveText("2");
  await admin.goto(`${TENANT}/adminportal/users`);
  const alexRow = admin.locator('#users tr[data-email="alex@contoso.com"]');
  await expect(alexRow).toHaveAttribute("data-status", "offboarded");
  await expect(alexRow).toContainText('left group "MSP Technicians"');
  await expect(admin.locator('#users tr[data-email="isaiah@contoso.com"]')).toHaveAttribute("data-status", "offboarded");

  // His account at Fabrikam ended with him: gone from the Customers page within seconds, in
  // his offboarding's timeline, and the pass signs in no more.
  await admin.goto(`${TENANT}/adminportal/customers`);
  await hydrated(admin);
  await expect(async () => {
    await admin.reload();
    await expect(admin.locator(`section[data-tenant="${FABRIKAM}"] .accounts`)).not.toContainText("msp-alex@fabrikam.com", { timeout: 1_000 });
  }).toPass({ timeout: 30_000 });
  await admin.goto(`${TENANT}/adminportal/reconciliation`);
  await hydrated(admin);
  const alexTimeline = admin.locator("#offboardings tbody tr", { hasText: "alex@contoso.com" });
  await expect(alexTimeline.locator(".customer-ends")).toHaveText(/^fabrikam\.com \+\d+ s$/);
  await signInToFabrikam();
  await expect(fabrikam.locator("#error")).toBeVisible();
});
