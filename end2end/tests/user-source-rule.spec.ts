import { expect, test } from "./fixtures";
import { ADMIN, approveOnPhone, hydrated, invite, matchNumber, newDesktop, newPhone, scanQr, signIn, verifyEmail } from "./helpers";
import { TENANT } from "../playwright.config";

test("the user source cannot change once more than one user is onboarded, and the page says why", async ({ browser }) => {
  const { desktop: admin } = await signIn(browser, ADMIN);
  await admin.waitForURL(`${TENANT}/adminportal/users`);
  await invite(admin, "Cy", "cy@acme-msp.example");
  const cyDesktop = await newDesktop(browser);
  const cyPhone = await newPhone(browser);
  await verifyEmail(cyPhone, "cy@acme-msp.example");
  await approveOnPhone(cyPhone, await scanQr(cyDesktop), await matchNumber(cyDesktop));
  await cyDesktop.waitForURL(`${TENANT}/home`);

  await admin.goto(`${TENANT}/adminportal/user-source`);
  await admin.locator("#user-source").selectOption("azuread");
  await admin.locator("#save-source").click();
  await expect(admin.locator(".flash.error")).toContainText("only while at most one user is onboarded");
  await admin.reload();
  await expect(admin.locator("#user-source")).toHaveValue("local");
});

test("a source chosen before the page has come alive is the one the page follows", async ({ browser }) => {
  const { desktop: admin } = await signIn(browser, ADMIN);
  await admin.waitForURL(`${TENANT}/adminportal/users`);
  // A slow line: the page's WebAssembly arrives two seconds late.
  await admin.route("**/*.wasm", async (route) => {
    await new Promise((done) => setTimeout(done, 2_000));
    await route.continue();
  });
  await admin.goto(`${TENANT}/adminportal/user-source`);
  await expect(admin.locator("html[data-hydrated]")).not.toBeAttached();
  await admin.locator("#user-source").selectOption("azuread");
  await hydrated(admin);
  await expect(admin.locator("#authorize")).toBeVisible();
  await expect(admin.locator("#user-source")).toHaveValue("azuread");
});
