// Browser test of the console's quality display, driven by
// TestWebConsoleQuality (test/web_console_test.go) over the scenario of
// test/console_scenario_test.go replayed in real time. playwright-core
// drives Debian's headless chromium. Environment: VS_URL, VS_CHROMIUM,
// VS_ARTIFACTS (screenshots), VS_PROFILE, VS_CALLID (call A, the call
// under test), VS_DEADLINE_MS (how long any one wait may take).
//
// Two pages: the watcher stays on the calls list and samples call A's row
// every 200 ms for its whole life (state, MOS, loss: what an operator saw);
// the main page checks the filters, the call page, and takes screenshots of
// every view at 1400 px, at 390 px (a phone) and in dark mode. It prints
// one JSON line; the Go test makes the assertions.
"use strict";
const { chromium } = require("playwright-core");
const path = require("path");

const { url, shots, waitMS, out, step, poll, shoot, DESKTOP, PHONE } = require("./kit")("quality", 60000);
const callID = process.env.VS_CALLID;

(async () => {
  const ctx = await chromium.launchPersistentContext(process.env.VS_PROFILE, {
    executablePath: process.env.VS_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: DESKTOP,
    args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run",
      "--autoplay-policy=no-user-gesture-required"],
  });
  const page = ctx.pages()[0] || (await ctx.newPage());
  const watcher = await ctx.newPage();
  for (const p of [page, watcher]) {
    p.on("console", (m) => process.stderr.write("page: " + m.text() + "\n"));
    p.on("pageerror", (e) => { out.pageErrors = (out.pageErrors || []).concat(String(e)); });
  }
  try {
    // Call A's reference, as soon as its INVITE is seen.
    await page.goto(url + "#/calls");
    out.ref = await poll("call A in /api/calls", () => page.evaluate(async (id) => {
      const r = await (await fetch("/api/calls")).json();
      const c = r.rows.find((c) => c.callid === id);
      return c && c.callreference;
    }, callID));
    step("call A is " + out.ref);

    // The watcher samples call A's row until it leaves the list.
    await watcher.goto(url + "#/calls");
    await watcher.evaluate((ref) => {
      window.vsSeen = [];
      window.vsGone = false;
      const txt = (tr, sel) => tr.querySelector(sel).textContent.trim();
      const val = (tr, sel) => { const q = tr.querySelector(sel + " .q"); return q && q.dataset.v != null ? Number(q.dataset.v) : null; };
      const timer = setInterval(() => {
        const tr = document.querySelector(`#calls-table tr[data-ref="${ref}"]`);
        if (!tr) {
          if (window.vsSeen.length) { window.vsGone = true; clearInterval(timer); }
          return;
        }
        const tds = tr.querySelectorAll("td");
        window.vsSeen.push({ t: Date.now(), state: txt(tr, "td:nth-child(3)"), mosA: txt(tr, ".mos-a"), mosB: txt(tr, ".mos-b"),
          mosAV: val(tr, ".mos-a"), mosBV: val(tr, ".mos-b"), lossA: tds[8].textContent.trim(), lossB: tds[9].textContent.trim() });
      }, 200);
    }, out.ref);
    step("watching call A");

    // Filters: with A and C ringing and B answered, each filter's badge
    // counts the rows it shows.
    await page.waitForSelector("#calls-table tbody tr[data-ref]", { timeout: waitMS });
    await poll("three calls listed", () => page.$$eval("#calls-table tbody tr", (rs) => rs.length >= 3));
    out.filters = {};
    for (const f of ["answered", "ringing", "bad", "all"]) {
      await page.selectOption("#calls-filter", f);
      out.filters[f] = await page.evaluate(() => ({
        badge: Number(document.querySelector("#calls-count").textContent),
        rows: document.querySelectorAll("#calls-table tbody tr").length,
        total: document.querySelector("#calls-total").textContent,
        states: [...document.querySelectorAll("#calls-table tbody tr")].map((tr) => tr.dataset.state),
      }));
    }
    out.callStates = await page.$$eval("#calls-table tbody td:nth-child(3)", (ts) => ts.map((t) => t.textContent.trim()));
    out.startedCells = await page.$$eval("#calls-table tbody td:nth-child(4)", (ts) => ts.map((t) => t.textContent.trim()));
    out.startedHeader = await page.$eval("#calls-table th:nth-child(4)", (t) => t.textContent.trim());
    step("filters checked");

    // Once call A's first 10 s interval closed it has a MOS: the calls list
    // on every screen.
    await poll("call A's MOS", () => page.$eval(`#calls-table tr[data-ref="${out.ref}"] .mos-b`, (t) => t.textContent.trim() !== "–").catch(() => false));
    await shoot(page, "calls");
    step("calls list shot");

    // The call page: streams with their direction and what they carry,
    // quality over time once two intervals closed.
    await page.goto(url + "#/call/" + out.ref);
    await poll("two closed intervals per voice stream", () => page.$$eval("#call-streams tbody tr[data-kind=voice] td:last-child",
      (ts) => ts.length === 2 && ts.every((t) => Number(t.textContent) >= 2)));
    await poll("call A's four streams", () => page.$$eval("#call-streams tbody tr", (rs) => rs.length >= 4));
    out.streams = await page.$$eval("#call-streams tbody tr", (rs) => rs.map((r) => ({
      side: r.dataset.side, kind: r.dataset.kind, src: r.children[2].textContent.trim(),
      direction: r.children[0].textContent.trim(), carries: r.children[1].textContent.trim(), mos: r.children[10].textContent.trim(),
    })));
    out.chartLines = await page.$$eval("#q-mos svg path.line, #q-loss svg path.line, #q-jitter svg path.line", (ps) => ps.length);
    await shoot(page, "call");
    step("call page shot");

    // Call A ends: the watcher saw its last figures.
    await poll("call A to leave the list", () => watcher.evaluate(() => window.vsGone));
    out.seen = await watcher.evaluate(() => window.vsSeen);
    step("call A ended after " + out.seen.length + " samples");

    await page.goto(url + "#/registrations");
    await poll("three registrations", () => page.$$eval("#regs-table tbody tr", (rs) => rs.length >= 3));
    out.regStates = await page.$$eval("#regs-table tbody tr td:nth-child(6)", (ts) => ts.map((t) => t.textContent.trim()));
    out.sinceCells = await page.$$eval("#regs-table tbody td:nth-child(9)", (ts) => ts.map((t) => t.textContent.trim()));
    await shoot(page, "registrations");
    step("registrations shot");

    // The dashboard once call A's CDR is in the quality history.
    await page.goto(url + "#/dashboard");
    await poll("an ended call in the history", () => page.evaluate(async () => (await (await fetch("/api/history")).json()).some((m) => m.ended > 0)));
    await page.evaluate(() => window.dispatchEvent(new HashChangeEvent("hashchange")));
    await poll("the MOS distribution", () => page.$$eval("#c-mos svg text.val", (ts) => ts.length > 0));
    out.dashCharts = await page.$$eval("#view-dashboard svg.chart", (s) => s.length);
    await shoot(page, "dashboard");
    step("dashboard shot");

    // The player: pick call B from the list (no reference typed) and hear it.
    await page.goto(url + "#/player");
    await page.waitForSelector("#player-calls tbody tr button.pick", { timeout: waitMS });
    out.playerRows = await page.$$eval("#player-calls tbody tr", (rs) => rs.length);
    await page.click("#player-calls tbody tr:first-child button.pick");
    await page.waitForFunction(() => window.vsCapture.M.length >= 8000, null, { timeout: waitMS });
    out.playerStatus = await page.$eval("#player-status", (e) => e.textContent);
    await shoot(page, "player");
    await page.click("#player-stop");
    step("player shot");
  } catch (e) {
    out.error = String((e && e.stack) || e);
    try { await page.screenshot({ path: path.join(shots, "quality-99-failure.png"), fullPage: true }); } catch (_) {}
    try { out.seen = out.seen || await watcher.evaluate(() => window.vsSeen); } catch (_) {}
  }
  await ctx.close();
  process.stdout.write(JSON.stringify(out) + "\n");
})();
