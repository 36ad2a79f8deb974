// Browser tour of the console over 'voipsensor demo', driven by
// TestWebConsoleDemo (test/web_demo_test.go). playwright-core drives
// Debian's headless chromium. Environment: VS_URL, VS_CHROMIUM,
// VS_ARTIFACTS (screenshots), VS_PROFILE, VS_DEADLINE_MS (how long any one
// wait may take).
//
// Every view as a newcomer would open it in the demo's first half minute:
// calls (its filters and search), a call's page with its ladder, history
// and an ended call's page, the dashboard, the player's list and
// registrations, each shot at 1400 px, at 390 px (a phone) and in dark
// mode. It prints one JSON line; the Go test asserts.
"use strict";
const { chromium } = require("playwright-core");
const path = require("path");

const { url, shots, waitMS, out, step, poll, shoot, DESKTOP, PHONE } = require("./kit")("demo", 30000);

// filterCounts applies each filter in turn, then a search, and reads what
// the calls list shows: the badge, the rows, the total beside a filtered
// badge, and each row's state. One evaluate, so that no poll of the list
// changes the calls between two readings.
const filterCounts = (page, search) => page.evaluate((search) => {
  const read = () => ({
    badge: Number(document.querySelector("#calls-count").textContent),
    rows: document.querySelectorAll("#calls-table tbody tr").length,
    total: document.querySelector("#calls-total").textContent,
    states: [...document.querySelectorAll("#calls-table tbody tr")].map((tr) => tr.querySelector("td:nth-child(3)").textContent.trim()),
  });
  const sel = document.querySelector("#calls-filter"), box = document.querySelector("#calls-search");
  const out = { filters: {} };
  for (const f of ["answered", "ringing", "bad", "all"]) {
    sel.value = f;
    sel.dispatchEvent(new Event("change"));
    out.filters[f] = read();
  }
  box.value = search;
  box.dispatchEvent(new Event("input"));
  out.search = { query: search, ...read() };
  box.value = "";
  box.dispatchEvent(new Event("input"));
  return out;
}, search);

(async () => {
  const ctx = await chromium.launchPersistentContext(process.env.VS_PROFILE, {
    executablePath: process.env.VS_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: DESKTOP,
    args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const page = ctx.pages()[0] || (await ctx.newPage());
  page.on("console", (m) => process.stderr.write("page: " + m.text() + "\n"));
  page.on("pageerror", (e) => { out.pageErrors = (out.pageErrors || []).concat(String(e)); });
  try {
    // Calls: two in progress, one of them answered (the demo's first
    // calls start at 0 s and 5 s).
    await page.goto(url + "#/calls");
    await poll("two calls listed, one answered", () => page.evaluate(() =>
      document.querySelectorAll("#calls-table tbody tr").length >= 2 &&
      document.querySelector('#calls-table tbody tr[data-state="answered"]') != null));
    out.stateAttrs = await page.$$eval("#calls-table tbody tr", (rs) => rs.map((r) => r.dataset.state));
    // Each filter, and a search for the first row's caller.
    const caller = await page.$eval("#calls-table tbody tr td strong", (e) => e.textContent);
    Object.assign(out, await filterCounts(page, caller));
    await shoot(page, "calls");
    step("calls list shot");

    // The newest answered call's page: streams and the ladder.
    const ref = await page.$eval('#calls-table tbody tr[data-state="answered"]', (tr) => tr.dataset.ref);
    await page.goto(url + "#/call/" + ref);
    await page.waitForSelector("#ladder svg .msg", { timeout: waitMS });
    await page.waitForSelector("#call-streams tbody tr", { timeout: waitMS });
    out.call = await page.evaluate(() => ({
      title: document.querySelector("#call-title").textContent,
      state: (() => { const dt = [...document.querySelectorAll("#call-summary dt")].find((d) => d.textContent === "State"); return dt ? dt.nextElementSibling.textContent : ""; })(),
      ladder: [...document.querySelectorAll("#ladder svg .msg text:nth-of-type(1)")].map((t) => t.textContent),
      streams: [...document.querySelectorAll("#call-streams tbody tr")].map((r) => ({ side: r.dataset.side, kind: r.dataset.kind,
        direction: r.children[0].textContent.trim(), carries: r.children[1].textContent.trim() })),
    }));
    await shoot(page, "call");
    step("call page shot");

    // History: the call rejected at 3 s is stored by now; its page with
    // the ladder.
    await page.goto(url + "#/history");
    await poll("an ended call in the history", () => page.evaluate(async () => (await (await fetch("/api/cdr", { cache: "no-store" })).json()).calls.length > 0));
    // The view searched when it opened: once more, now that a CDR is in.
    await page.evaluate(() => window.dispatchEvent(new HashChangeEvent("hashchange")));
    await poll("the ended call listed", () => page.$$eval("#hist-table tbody tr", (rs) => rs.length >= 1));
    out.histStates = await page.$$eval("#hist-table tbody tr td:nth-child(4) .badge.state", (ts) => ts.map((t) => t.textContent.trim()));
    out.histCount = await page.$eval("#hist-count", (e) => e.textContent);
    out.histRows = await page.$$eval("#hist-table tbody tr", (rs) => rs.length);
    await shoot(page, "history");
    await page.click("#hist-table tbody tr:first-child td:nth-child(2)");
    await page.waitForSelector("#cdr-ladder svg .msg", { timeout: waitMS });
    out.cdr = await page.evaluate(() => ({
      title: document.querySelector("#cdr-title").textContent,
      state: document.querySelector("#cdr-state").textContent,
      ladder: [...document.querySelectorAll("#cdr-ladder svg .msg text:nth-of-type(1)")].map((t) => t.textContent),
    }));
    await shoot(page, "cdr");
    step("history shot");

    // The dashboard's charts.
    await page.goto(url + "#/dashboard");
    await poll("the dashboard's tiles", () => page.$$eval("#dash-tiles .tile", (ts) => ts.length > 0));
    out.dashCharts = await page.$$eval("#view-dashboard svg.chart", (s) => s.length);
    await shoot(page, "dashboard");
    step("dashboard shot");

    // The player lists the calls in progress to pick from.
    await page.goto(url + "#/player");
    await poll("calls to play", () => page.$$eval("#player-calls tbody tr button.pick", (bs) => bs.length >= 1));
    out.playerRows = await page.$$eval("#player-calls tbody tr", (rs) => rs.length);
    out.playerStates = await page.$$eval("#player-calls tbody td:nth-child(3)", (ts) => ts.map((t) => t.textContent.trim()));
    await shoot(page, "player");
    step("player shot");

    // Registrations, last: by 27 s the demo has refused one (403), bound
    // one and unregistered one.
    await page.goto(url + "#/registrations");
    await poll("three registrations", () => page.$$eval("#regs-table tbody tr", (rs) => rs.length >= 3));
    out.regStates = await page.$$eval("#regs-table tbody tr td:nth-child(6)", (ts) => ts.map((t) => t.textContent.trim()));
    out.regCount = await page.$eval("#regs-count", (e) => Number(e.textContent));
    await shoot(page, "registrations");
    step("registrations shot");
  } catch (e) {
    out.error = String((e && e.stack) || e);
    try { await page.screenshot({ path: path.join(shots, "demo-99-failure.png"), fullPage: true }); } catch (_) {}
  }
  await ctx.close();
  process.stdout.write(JSON.stringify(out) + "\n");
})();
