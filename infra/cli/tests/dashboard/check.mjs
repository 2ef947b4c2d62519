// Drives the dashboard in headless Chromium (Debian's package) with playwright-core and prints
// what a user would see as one JSON line: console errors, series per chart, whether the
// alarmed instance is listed, whether searching narrows the charts to it.
// Usage: node check.mjs URL SCREENSHOT INSTANCE
import { chromium } from "playwright-core";

const [url, shot, instance] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.SHARDLINE_TEST_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // playwright starts it with a fresh temporary --user-data-dir and --headless.
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const result = { errors: [], series: {}, alarmShown: false, searchNarrows: false };
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1200 } });
  page.on("console", (m) => { if (m.type() === "error") result.errors.push(m.text()); });
  page.on("pageerror", (e) => result.errors.push(String(e)));
  page.on("requestfailed", (r) => result.errors.push("request failed: " + r.url()));
  page.setDefaultTimeout(30000);
  await page.goto(url, { waitUntil: "load" });
  // Two refreshes: the page has loaded and polled live at least once.
  await page.waitForFunction(() => Number(document.body.dataset.loaded || 0) >= 2);
  await page.waitForFunction((inst) => document.querySelector("#alarms").textContent.includes(inst), instance);
  result.series = await page.evaluate(() => Object.fromEntries(
    [...document.querySelectorAll(".chart")].map((f) => [f.dataset.metric, f.querySelectorAll("path.series").length])));
  result.alarmShown = (await page.textContent("#alarms")).includes(instance);
  result.consumers = await page.textContent("#consumers");
  await page.screenshot({ path: shot, fullPage: true });
  await page.fill("#search", instance);
  await page.waitForFunction((inst) => {
    const p = document.querySelectorAll("#chart-cpu_utilization path.series");
    return p.length === 1 && p[0].dataset.instance === inst;
  }, instance);
  result.searchNarrows = true;
} catch (e) {
  result.errors.push("driver: " + String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
