import { expect, test } from "./fixtures";
import { ADMIN, approveOnPhone, matchNumber, newDesktop, newPhone, scanQr, verifyEmail } from "./helpers";
import { TENANT } from "../playwright.config";

test("the login page works with JavaScript off: it refreshes itself and signs in after approval", async ({ browser }) => {
  const desktop = await newDesktop(browser, { javaScriptEnabled: false });
  await expect(desktop.locator("#match-number")).toHaveText(/^\d\d$/);
  const phone = await newPhone(browser);
  await verifyEmail(phone, ADMIN);
  await approveOnPhone(phone, await scanQr(desktop), await matchNumber(desktop));
  await expect(phone.locator("#outcome")).toHaveAttribute("data-outcome", "approved");
  // No script runs on the desktop: its own refresh brings it to the portal.
  await desktop.waitForURL(`${TENANT}/adminportal/users`, { timeout: 15_000 });
  await expect(desktop.locator("h1")).toHaveText("User management");
  await expect(desktop.locator("#users")).toContainText(ADMIN);
});
