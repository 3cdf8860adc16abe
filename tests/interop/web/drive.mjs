// Drives the page at GET / in Debian's headless Chromium (playwright-core, no browser download):
// logs in, waits for a VM called BEFORE in the VM table, says READY, then waits for the same row
// to read AFTER (the test renames the VM through the API meanwhile), and says SEEN.
// Usage: node drive.mjs URL PASSWORD BEFORE AFTER
import { chromium } from "playwright-core";

const [url, password, before, after] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(url);
  await page.fill("#password", "wrong password");
  await page.click("button[type=submit]");
  await page.locator("#error", { hasText: "SESSION_AUTHENTICATION_FAILED" }).waitFor({ timeout: 30000 });
  await page.fill("#password", password);
  await page.click("button[type=submit]");
  const row = page.locator("#vm tbody tr", { hasText: before });
  await row.waitFor({ timeout: 30000 });
  const ref = await row.getAttribute("data-ref");
  await page.locator("#host tbody tr").first().waitFor({ timeout: 30000 });
  await page.locator("#sr tbody tr", { hasText: "Local storage" }).waitFor({ timeout: 30000 });
  console.log("READY " + ref);
  await page.locator(`#vm tbody tr[data-ref="${ref}"]`, { hasText: after }).waitFor({ timeout: 30000 });
  console.log("SEEN");
  if (errors.length) throw new Error("page errors: " + errors.join("; "));
} finally {
  await browser.close();
}
