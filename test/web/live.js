// Browser test of the console over a live call, driven by
// TestWebConsoleLiveSipp (test/web_live_sipp_test.go): the daemon captures
// on lo while sipp makes one call. playwright-core drives Debian's headless
// chromium. Environment: VS_URL, VS_CHROMIUM, VS_ARTIFACTS (screenshots),
// VS_PROFILE, VS_DEADLINE_MS (how long any one wait may take).
//
// The watcher page opens the calls list before the call exists and samples
// the call's row every 200 ms for its whole life (state, MOS, loss, the
// badge: what an operator saw). Once it watches it prints "live.js:
// watching" on stderr, and only then does the Go test start sipp. The main
// page checks the filters, then the call page (streams, directions, DTMF,
// the ladder), and takes screenshots of both at 1400 px, at 390 px (a
// phone) and in dark mode; then it prints "live.js: hang up CALLID" and the
// Go test ends the call. It prints one JSON line; the Go test asserts.
"use strict";
const { chromium } = require("playwright-core");
const path = require("path");

const { url, shots, waitMS, out, step, poll, shoot, DESKTOP, PHONE } = require("./kit")("live", 60000);

(async () => {
  const ctx = await chromium.launchPersistentContext(process.env.VS_PROFILE, {
    executablePath: process.env.VS_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: DESKTOP,
    args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const page = ctx.pages()[0] || (await ctx.newPage());
  const watcher = await ctx.newPage();
  for (const p of [page, watcher]) {
    p.on("console", (m) => process.stderr.write("page: " + m.text() + "\n"));
    p.on("pageerror", (e) => { out.pageErrors = (out.pageErrors || []).concat(String(e)); });
  }
  try {
    // The watcher: the calls list, polled by the console every second,
    // sampled here every 200 ms. The daemon's filter lets only this test's
    // call in, so the first row to appear is the call under test.
    await watcher.goto(url + "#/calls");
    await poll("the calls list to poll the sensor", () => watcher.evaluate(() => /^live/.test(document.querySelector("#live-text").textContent)));
    await watcher.evaluate(() => {
      window.vsSeen = [];
      window.vsRef = null;
      window.vsGone = false;
      const txt = (tr, sel) => tr.querySelector(sel).textContent.trim();
      const val = (tr, sel) => { const q = tr.querySelector(sel + " .q"); return q && q.dataset.v != null ? Number(q.dataset.v) : null; };
      const timer = setInterval(() => {
        const rows = document.querySelectorAll("#calls-table tbody tr[data-ref]");
        if (!window.vsRef && rows.length) window.vsRef = rows[0].dataset.ref;
        if (!window.vsRef) return;
        const tr = document.querySelector(`#calls-table tbody tr[data-ref="${window.vsRef}"]`);
        if (!tr) { window.vsGone = true; clearInterval(timer); return; }
        const tds = tr.querySelectorAll("td");
        window.vsSeen.push({ t: Date.now(), state: txt(tr, "td:nth-child(3)"), stateAttr: tr.dataset.state,
          mosA: txt(tr, ".mos-a"), mosB: txt(tr, ".mos-b"), mosAV: val(tr, ".mos-a"), mosBV: val(tr, ".mos-b"),
          lossA: tds[8].textContent.trim(), lossB: tds[9].textContent.trim(),
          badge: Number(document.querySelector("#calls-count").textContent), rows: rows.length });
      }, 200);
    });
    step("watching");

    // The call, from its INVITE on.
    await page.goto(url + "#/calls");
    const call = await poll("the call in /api/calls", () => page.evaluate(async () => {
      const r = await (await fetch("/api/calls", { cache: "no-store" })).json();
      return r.rows.length ? { ref: r.rows[0].callreference, callid: r.rows[0].callid } : null;
    }));
    out.ref = call.ref;
    out.callid = call.callid;
    step("the call is " + out.ref + " (" + out.callid + ")");

    // Once the first 10 s interval closed in both directions the list
    // shows the MOS: the filters, then the list on every screen.
    await poll("the call's MOS in both directions", () => page.$eval(`#calls-table tr[data-ref="${out.ref}"]`,
      (tr) => tr.querySelector(".mos-a").textContent.trim() !== "–" && tr.querySelector(".mos-b").textContent.trim() !== "–").catch(() => false));
    out.filters = {};
    for (const f of ["answered", "ringing", "bad", "all"]) {
      await page.selectOption("#calls-filter", f);
      out.filters[f] = await page.evaluate(() => ({
        badge: Number(document.querySelector("#calls-count").textContent),
        rows: document.querySelectorAll("#calls-table tbody tr").length,
        total: document.querySelector("#calls-total").textContent,
      }));
    }
    await shoot(page, "calls");
    step("calls list shot");

    // The call page: two closed intervals on both voice streams, and the
    // DTMF stream sipp played from the caller's media port.
    await page.goto(url + "#/call/" + out.ref);
    await poll("two closed intervals on both voice streams and a DTMF stream", () => page.evaluate(() => {
      const voice = [...document.querySelectorAll("#call-streams tbody tr[data-kind=voice] td:last-child")];
      return voice.length === 2 && voice.every((t) => Number(t.textContent) >= 2) &&
        document.querySelector("#call-streams tbody tr[data-kind=dtmf]") != null;
    }));
    await page.waitForSelector("#ladder svg .msg", { timeout: waitMS });
    out.streams = await page.$$eval("#call-streams tbody tr", (rs) => rs.map((r) => ({
      side: r.dataset.side, kind: r.dataset.kind, src: r.children[2].textContent.trim(), dst: r.children[3].textContent.trim(),
      direction: r.children[0].textContent.trim(), carries: r.children[1].textContent.trim(), mos: r.children[10].textContent.trim(),
      intervals: r.children[12].textContent.trim(),
    })));
    out.ladder = await page.$$eval("#ladder svg .msg text:nth-of-type(1)", (ts) => ts.map((t) => t.textContent));
    out.summaryState = await page.evaluate(() => {
      const dt = [...document.querySelectorAll("#call-summary dt")].find((d) => d.textContent === "State");
      return dt ? dt.nextElementSibling.textContent : "";
    });
    // When each stream's first packet was captured: no MOS may show
    // before 10 s of RTP in its direction.
    out.quality = await page.evaluate(async (ref) => {
      const q = await (await fetch("/api/quality?ref=" + encodeURIComponent(ref), { cache: "no-store" })).json();
      return q.streams.map((s) => ({ side: s.side, kind: s.kind, src: s.src, first: Date.parse(s.first) }));
    }, out.ref);
    await shoot(page, "call");
    step("call page shot");

    // Done with the live call: the Go test sends the caller the INFO it
    // waits for, and it hangs up. The watcher saw the call's last figures.
    step("hang up " + out.callid);
    await poll("the call to leave the list", () => watcher.evaluate(() => window.vsGone));
    out.seen = await watcher.evaluate(() => window.vsSeen);
    step("the call ended after " + out.seen.length + " samples");
  } catch (e) {
    out.error = String((e && e.stack) || e);
    try { await page.screenshot({ path: path.join(shots, "live-99-failure.png"), fullPage: true }); } catch (_) {}
    try { out.seen = out.seen || await watcher.evaluate(() => window.vsSeen); } catch (_) {}
  }
  await ctx.close();
  process.stdout.write(JSON.stringify(out) + "\n");
})();
