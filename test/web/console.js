// Browser test of the web console, driven by test/web_console_test.go.
// playwright-core drives Debian's headless chromium (never a downloaded
// browser). Environment: VS_URL (console base URL), VS_CHROMIUM (browser
// binary), VS_ARTIFACTS (screenshot directory), VS_PROFILE (fresh profile
// directory). Prints one JSON line with what the page measured; the Go test
// makes the assertions.
"use strict";
const { chromium } = require("playwright-core");
const path = require("path");

const url = process.env.VS_URL;
const shots = process.env.VS_ARTIFACTS;
const out = { steps: [] };
const step = (s) => { out.steps.push(s); process.stderr.write("console.js: " + s + "\n"); };

(async () => {
  const ctx = await chromium.launchPersistentContext(process.env.VS_PROFILE, {
    executablePath: process.env.VS_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run",
      "--autoplay-policy=no-user-gesture-required"],
  });
  const page = ctx.pages()[0] || (await ctx.newPage());
  page.on("console", (m) => process.stderr.write("page: " + m.text() + "\n"));
  page.on("pageerror", (e) => { out.pageErrors = (out.pageErrors || []).concat(String(e)); });
  try {
    await page.goto(url + "#/calls");
    await page.waitForSelector("#calls-table tbody tr", { timeout: 15000 });
    await page.waitForTimeout(1500); // let durations and quality fill in
    out.calls = await page.$$eval("#calls-table tbody tr", (rs) => rs.map((r) => r.innerText.replace(/\s+/g, " ").trim()));
    out.badQualityCells = await page.$$eval("#calls-table .q.bad", (x) => x.length);
    await page.screenshot({ path: path.join(shots, "01-calls.png"), fullPage: true });
    step("calls listed");

    // Search narrows the list to the matching call.
    const caller = await page.$eval("#calls-table tbody tr td strong", (e) => e.textContent);
    await page.fill("#calls-search", caller);
    await page.waitForTimeout(300);
    out.searchRows = await page.$$eval("#calls-table tbody tr", (rs) => rs.length);
    await page.fill("#calls-search", "no-such-number-xyz");
    await page.waitForTimeout(300);
    out.searchNone = await page.$$eval("#calls-table tbody tr", (rs) => rs.length);
    await page.fill("#calls-search", "");
    step("search works");

    // Open the first call: summary, streams, SIP ladder.
    await page.click("#calls-table tbody tr");
    await page.waitForSelector("#ladder svg .msg", { timeout: 10000 });
    await page.waitForSelector("#call-streams tbody tr", { timeout: 10000 });
    out.ref = await page.evaluate(() => location.hash.split("/")[2]);
    out.ladder = await page.$$eval("#ladder svg .msg text:nth-of-type(1)", (ts) => ts.map((t) => t.textContent));
    out.streams = await page.$$eval("#call-streams tbody tr", (rs) => rs.length);
    step("call details open");

    // Listen: stereo PCM over a chunked stream into Web Audio.
    await page.click("#listen-btn");
    await page.waitForFunction(() => window.vsCapture.L.length >= 12000, null, { timeout: 15000 });
    await page.waitForTimeout(2500); // latency samples, analyser settles
    await page.$eval("#balance", (e) => { e.value = "-0.5"; e.dispatchEvent(new Event("input")); });
    await page.screenshot({ path: path.join(shots, "02-call-listening.png"), fullPage: true });
    Object.assign(out, await page.evaluate(() => ({
      goertzelL: window.vsGoertzelHz("L"), goertzelR: window.vsGoertzelHz("R"),
      analyserL: window.vsPeakHz("L"), analyserR: window.vsPeakHz("R"),
      latency: { n: window.vsLatency.n, avg: window.vsLatency.sum / Math.max(1, window.vsLatency.n), max: window.vsLatency.max,
        p50: (() => { const s = [...window.vsLatency.samples].sort((a, b) => a - b); return s[Math.floor(s.length * 0.5)] || 0; })(),
        p95: (() => { const s = [...window.vsLatency.samples].sort((a, b) => a - b); return s[Math.floor(s.length * 0.95)] || 0; })() },
      audioState: document.querySelector("#listen-status").textContent,
    })));
    await page.click("#stop-btn");
    out.stopped = await page.$eval("#listen-status", (e) => e.textContent);
    step("listened");

    // Registrations.
    await page.click("nav a[data-view=registrations]");
    await page.waitForSelector("#regs-table tbody tr", { timeout: 10000 });
    out.registrations = await page.$$eval("#regs-table tbody tr", (rs) => rs.length);
    await page.screenshot({ path: path.join(shots, "03-registrations.png"), fullPage: true });
    step("registrations listed");

    // The player: a reference typed by hand (ChunkPlayer-style, under
    // "manual") that names no call, then the call picked from the list.
    await page.click("nav a[data-view=player]");
    await page.click("details.manual summary");
    await page.fill("#player-ref", "0xdeadbeef");
    await page.click("#player-play");
    await page.waitForFunction(() => !["", "connecting…", "stopped"].includes(document.querySelector("#player-status").textContent), null, { timeout: 5000 });
    out.playerUnknown = await page.$eval("#player-status", (e) => e.textContent);
    await page.click(`#player-calls tr[data-ref="${out.ref}"] button.pick`);
    await page.waitForFunction(() => window.vsCapture.M.length >= 8000, null, { timeout: 15000 });
    out.goertzelM = await page.evaluate(() => window.vsGoertzelHz("M"));
    await page.screenshot({ path: path.join(shots, "04-player.png"), fullPage: true });
    await page.click("#player-stop");
    step("player played");
  } catch (e) {
    out.error = String(e && e.stack || e);
    try { await page.screenshot({ path: path.join(shots, "99-failure.png"), fullPage: true }); } catch (_) {}
  }
  await ctx.close();
  process.stdout.write(JSON.stringify(out) + "\n");
})();
