import { expect, test } from "./fixtures";
import { ADMIN, approveOnPhone, hydrated, matchNumber, newDesktop, newPhone, scanQr, verifyEmail } from "./helpers";
import { TENANT } from "../playwright.config";

test("an admin signs in by QR, invites a technician, and the technician signs in on their own phone", async ({ browser }) => {
  // The admin's computer shows the QR code; the admin's phone verifies the admin email.
  const adminDesktop = await newDesktop(browser);
  // Whatever the admin does below, the browser console stays clean (no failed loads, no
  // hydration errors).
  const consoleErrors: string[] = [];
  adminDesktop.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(`${m.text()} (${m.location().url})`);
  });
  await adminDesktop.reload();
  await expect(adminDesktop.locator("h1")).toContainText("Sign in to Acme MSP");
  const adminPhone = await newPhone(browser);
  await verifyEmail(adminPhone, ADMIN);

  // Scan: the QR is decoded from a screenshot, the phone shows who asks, and the admin
  // taps the number on the screen.
  const link = await scanQr(adminDesktop);
  expect(link).toContain("/app/scan?tenant=acme&challenge=");
  await adminPhone.goto(link);
  await expect(adminPhone.locator("#tenant-name")).toHaveText("Acme MSP");
  await expect(adminPhone.locator("#requester-ip")).toHaveText("127.0.0.1");
  await expect(adminPhone.locator("#user-agent")).toContainText("Chrome");
  await expect(adminPhone.locator("#numbers button")).toHaveCount(3);
  await adminPhone.locator(`#numbers button[data-number="${Number(await matchNumber(adminDesktop))}"]`).click();
  await expect(adminPhone.locator("#outcome-message")).toContainText("Signed in to Acme MSP as msp-admin");

  // The computer is signed in without anyone reloading it.
  await adminDesktop.waitForURL(`${TENANT}/adminportal/users`);
  await hydrated(adminDesktop);
  await expect(adminDesktop.locator("h1")).toHaveText("User management");

  // The admin invites Alex; the form previews the JIT name.
  await adminDesktop.locator('input[name="first_name"]').fill("Alex");
  await adminDesktop.locator('input[name="last_name"]').fill("Doe");
  await adminDesktop.locator('input[name="email"]').fill("alex@acme-msp.example");
  await expect(adminDesktop.locator('input[name="username"]')).toHaveAttribute("placeholder", "msp-alex");
  await adminDesktop.getByRole("button", { name: "Invite user" }).click();
  await expect(adminDesktop.locator(".flash.ok")).toContainText("Invited Alex Doe as msp-alex");
  const row = adminDesktop.locator('#users tr[data-email="alex@acme-msp.example"]');
  await expect(row).toContainText("invited");

  // Alex signs in from another computer with another phone.
  const alexDesktop = await newDesktop(browser);
  const alexPhone = await newPhone(browser);
  await verifyEmail(alexPhone, "alex@acme-msp.example");
  await approveOnPhone(alexPhone, await scanQr(alexDesktop), await matchNumber(alexDesktop));
  await expect(alexPhone.locator("#outcome-message")).toContainText("as msp-alex");
  await alexDesktop.waitForURL(`${TENANT}/home`);
  await hydrated(alexDesktop);
  await expect(alexDesktop.locator("#account-name")).toHaveText("msp-alex");

  // The admin sees Alex active, with a last login, and the audit log tells the story.
  await adminDesktop.reload();
  await expect(row).toHaveAttribute("data-status", "active");
  await adminDesktop.getByRole("link", { name: "Audit log" }).click();
  await expect(adminDesktop.locator("#audit")).toContainText("user.invited");
  await expect(adminDesktop.locator("#audit")).toContainText("user.onboarded");

  expect(consoleErrors).toEqual([]);

  // Alex signs out.
  await alexDesktop.getByRole("button", { name: "Sign out" }).click();
  await expect(alexDesktop.locator("#login-qr svg")).toBeVisible();
});
