import { expect, test } from "./fixtures";
import { DEMO_ADMIN, hydrated, signIn } from "./helpers";
import { DEMO_TENANT as TENANT } from "../playwright.config";

/** Fabrikam's Entra tenant in the demo's emulator. */
const FABRIKAM = "b3a9d2c4-6e1f-4a8b-9c7d-5e3f2a1b0c60";

test("an admin connects Fabrikam on the Customers page and lets technicians request Helpdesk Administrator", async ({ browser }) => {
  const { desktop: admin } = await signIn(browser, DEMO_ADMIN, TENANT);
  await admin.waitForURL(`${TENANT}/adminportal/users`);
  await admin.goto(`${TENANT}/adminportal/customers`);
  await hydrated(admin);
  await expect(admin.locator("#no-customers")).toBeVisible();
  await expect(admin.locator("#customer-permissions")).toContainText("User.EnableDisableAccount.All");

  // Connect: the emulator's Microsoft-like pages, as Fabrikam's admin Adele Vance.
  await admin.locator("#connect").click();
  await admin.locator('input[name="account"][value$="fa01"]').check();
  await admin.getByRole("button", { name: "Next" }).click();
  await admin.getByRole("button", { name: "Accept" }).click();
  await expect(admin.locator("#permissions")).toContainText("RoleManagement.ReadWrite.Directory");
  await admin.locator('input[name="account"][value$="fa01"]').check();
  await admin.getByRole("button", { name: "Accept" }).click();
  await admin.waitForURL(`${TENANT}/adminportal/customers`);
  await hydrated(admin);
  await expect(admin.locator("#round-trip")).toContainText("Connected fabrikam.com");

  // Name it, choose the domain and the window, and map a role.
  const card = admin.locator(`section[data-tenant="${FABRIKAM}"]`);
  await expect(card.locator(".customer-health")).toContainText("Connected");
  await card.locator('.customer-settings input[name="name"]').fill("Fabrikam");
  await card.locator('.customer-settings select[name="domain"]').selectOption("fabrikam.com");
  await card.locator('.customer-settings input[name="window_minutes"]').fill("120");
  await card.locator(".customer-settings button").click();
  await expect(admin.locator(".flash.ok")).toContainText("accounts at Fabrikam are made in fabrikam.com and stay open 2 hours");
  await card.locator('.grant-form select[name="holders"]').selectOption("technician");
  await card.locator('.grant-form select[name="role"]').selectOption({ label: "Helpdesk Administrator" });
  await card.locator(".grant-form button").click();
  await expect(card.locator(".grants")).toContainText("Technicians → Helpdesk Administrator");
  await expect(card.locator(".customer-settings-summary")).toContainText("made in fabrikam.com, open 2 hours at a time");

  // A name of blanks is refused with the reason, and nothing changes.
  await card.locator('.customer-settings input[name="name"]').fill("   ");
  await card.locator(".customer-settings button").click();
  await expect(admin.locator(".flash.error")).toContainText("1 to 100 characters");
  await admin.reload();
  await hydrated(admin);
  await expect(card.locator(".customer-settings-summary")).toContainText("open 2 hours at a time");
  await expect(card.locator("h2")).toHaveText("Fabrikam");
});
