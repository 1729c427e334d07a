import { test as base, expect, type BrowserContext, type ConsoleMessage, type Page } from "@playwright/test";
import { PORT } from "../playwright.config";

export { expect };

/**
 * Every story runs with Gatehouse's Content-Security-Policy on, and every page of every
 * browser context it opens is watched: a script the policy refused, an uncaught error, or
 * any other console error fails the story. A refusal Gatehouse answers on purpose (a 4xx
 * from a server function or the mobile API) is the only console error that is expected.
 */
function expected(msg: ConsoleMessage): boolean {
  const url = msg.location().url ?? "";
  // A story that frames Gatehouse on purpose expects the browser to refuse it.
  if (/frame-ancestors/.test(msg.text()) && msg.page()?.url().startsWith("about:")) return true;
  return (
    /Failed to load resource: the server responded with a status of 4\d\d/.test(msg.text()) &&
    /\/api\//.test(url)
  );
}

function watch(page: Page, problems: string[]) {
  page.on("console", (msg) => {
    if (msg.type() === "error" && !expected(msg)) {
      problems.push(`${page.url()}: console error: ${msg.text()}`);
    }
  });
  page.on("pageerror", (err) => problems.push(`${page.url()}: uncaught: ${err.message}`));
  // Gatehouse's own documents (not the emulator's Microsoft pages) carry the policy.
  page.on("response", async (res) => {
    const url = new URL(res.url());
    if (res.request().resourceType() !== "document" || url.port !== String(PORT)) return;
    const csp = (await res.allHeaders())["content-security-policy"] ?? "";
    if (!csp.includes("frame-ancestors 'none'") || csp.includes("unsafe-inline")) {
      problems.push(`${res.url()}: answered without the Content-Security-Policy (${csp || "none"})`);
    }
  });
}

export const test = base.extend<{ consoleProblems: string[] }>({
  consoleProblems: [
    async ({ browser }, use) => {
      const problems: string[] = [];
      const watched = new WeakSet<BrowserContext>();
      const original = browser.newContext.bind(browser);
      browser.newContext = async (options) => {
        const ctx = await original(options);
        if (!watched.has(ctx)) {
          watched.add(ctx);
          ctx.on("page", (page) => watch(page, problems));
        }
        return ctx;
      };
      await use(problems);
      browser.newContext = original;
      expect(problems, "console errors or refused scripts on the pages of this story").toEqual([]);
    },
    { auto: true },
  ],
});
