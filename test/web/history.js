// Browser test of the console's history, driven by
// test/history_browser_test.go with playwright-core on Debian's headless
// chromium: on a desktop and on a 390 px phone, a search by number
// pattern and date (each row saying which recordings the spool holds), an
// ended call's page (its BYE in the ladder, the BYE's text, the SIP pcap
// downloaded); on the desktop, a call whose files were cleaned, the ended
// call's recording (its WAV decoded, then played through the page's player
// and measured with its Web Audio analysers), and a live call's page
// turning into its history page when the call ends. It prints one JSON
// line; the Go test asserts. Environment as test/web/console.js, plus
// VS_NUMBER (a number pattern), VS_FROM and VS_TO (datetime-local values,
// the browser's zone), VS_CALLID (the call the search must find, answered
// and recorded with saveaudio) and VS_CLEANED (a call whose recordings the
// test removed from the spool).
"use strict";
const { chromium } = require("playwright-core");
const path = require("path");
const fs = require("fs");
const env = process.env;
const out = { steps: [], views: {} };
const step = (s) => { out.steps.push(s); process.stderr.write("history.js: " + s + "\n"); };

// rowFiles lists the recordings a history row shows (data-file of its
// Files cell: pcap, audio or none).
const rowFiles = (callid) => page.$$eval('#hist-table tbody tr[data-callid="' + callid + '"] td.files [data-file]', (es) => es.map((e) => e.dataset.file));
let page;

(async () => {
  const ctx = await chromium.launchPersistentContext(env.VS_PROFILE, {
    executablePath: env.VS_CHROMIUM || "/usr/bin/chromium", headless: true, acceptDownloads: true,
    args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run",
      "--autoplay-policy=no-user-gesture-required"],
  });
  page = ctx.pages()[0] || (await ctx.newPage());
  page.on("pageerror", (e) => { out.pageErrors = (out.pageErrors || []).concat(String(e)); });
  try {
    for (const [name, vp] of [["desktop", { width: 1400, height: 900 }], ["phone", { width: 390, height: 844 }]]) {
      const v = (out.views[name] = {});
      await page.setViewportSize(vp);
      await page.goto(env.VS_URL + "#/history");
      await page.waitForSelector("#hist-table tbody tr", { timeout: 15000 });
      await page.fill('#hist-form input[name="number"]', env.VS_NUMBER);
      await page.fill('#hist-form input[name="from"]', env.VS_FROM);
      await page.fill('#hist-form input[name="to"]', env.VS_TO);
      await page.click("#hist-search");
      await page.waitForFunction(() => location.hash.includes("number="));
      await page.waitForFunction((id) => document.querySelector('#hist-table tbody tr[data-callid="' + id + '"]'), env.VS_CALLID, { timeout: 10000 });
      v.rows = await page.$$eval("#hist-table tbody tr", (rs) => rs.map((r) => r.dataset.callid));
      v.rowFiles = await rowFiles(env.VS_CALLID);
      v.count = await page.textContent("#hist-count");
      v.width = await page.evaluate(() => document.documentElement.scrollWidth);
      await page.screenshot({ path: path.join(env.VS_ARTIFACTS, "history-" + name + "-1-search.png"), fullPage: true });
      step(name + ": search");

      await page.click('#hist-table tbody tr[data-callid="' + env.VS_CALLID + '"] td:nth-child(2)');
      await page.waitForSelector("#cdr-ladder svg .msg", { timeout: 10000 });
      v.title = await page.textContent("#cdr-title");
      v.state = await page.textContent("#cdr-summary");
      v.ladder = await page.$$eval("#cdr-ladder svg .msg text:nth-of-type(1)", (ts) => ts.map((t) => t.textContent));
      v.ladderNote = await page.textContent("#cdr-ladder-note");
      const bye = v.ladder.indexOf("BYE");
      if (bye >= 0) {
        await page.click("#cdr-ladder svg .msg:nth-of-type(" + (bye + 1) + ") text");
        v.byeText = await page.textContent("#cdr-ladder-raw");
      }
      v.files = await page.$$eval("#cdr-files a", (as) => as.map((a) => a.dataset.type));
      await page.screenshot({ path: path.join(env.VS_ARTIFACTS, "history-" + name + "-2-call.png"), fullPage: true });
      const [dl] = await Promise.all([page.waitForEvent("download"), page.click('#cdr-files a[data-type="SIP"]')]);
      const file = path.join(env.VS_PROFILE, name + ".pcap");
      await dl.saveAs(file);
      v.download = { name: dl.suggestedFilename(), path: file, bytes: fs.readFileSync(file).length, magic: fs.readFileSync(file).subarray(0, 4).toString("hex") };
      step(name + ": call page");
    }

    // A call whose recordings the cleaner removed: its row says so.
    await page.setViewportSize({ width: 1400, height: 900 });
    await page.goto(env.VS_URL + "#/history?callid=" + encodeURIComponent(env.VS_CLEANED));
    await page.waitForSelector('#hist-table tbody tr[data-callid="' + env.VS_CLEANED + '"]', { timeout: 10000 });
    out.cleaned = { rows: await page.$$eval("#hist-table tbody tr", (rs) => rs.length), files: await rowFiles(env.VS_CLEANED),
      text: await page.textContent('#hist-table tbody tr[data-callid="' + env.VS_CLEANED + '"] td.files') };
    await page.screenshot({ path: path.join(env.VS_ARTIFACTS, "history-desktop-3-cleaned.png"), fullPage: true });
    step("cleaned call");

    // The ended call's recording: the WAV the player loads, decoded; then
    // played through the page's player (Web Audio, as live listening),
    // its analysers sampled while it plays.
    await page.goto(env.VS_URL + "#/history?callid=" + encodeURIComponent(env.VS_CALLID));
    await page.click('#hist-table tbody tr[data-callid="' + env.VS_CALLID + '"] td:nth-child(2)');
    await page.waitForSelector("#cdr-audio-card:not([hidden]) #cdr-audio[src]", { timeout: 10000 });
    out.wav = await page.evaluate(async () => {
      const src = document.querySelector("#cdr-audio").src;
      const data = await (await fetch(src)).arrayBuffer();
      const bytes = data.byteLength; // decodeAudioData detaches data
      const buf = await new OfflineAudioContext(2, 1, 8000).decodeAudioData(data);
      const power = (x, f) => {
        const w = 2 * Math.cos(2 * Math.PI * f / buf.sampleRate);
        let s1 = 0, s2 = 0;
        for (const v of x) { const s0 = v + w * s1 - s2; s2 = s1; s1 = s0; }
        return s1 * s1 + s2 * s2 - w * s1 * s2;
      };
      const channel = (i) => {
        const x = buf.getChannelData(i);
        let best = 0, bestP = -1;
        for (let f = 100; f < 3900; f += 10) {
          const p = power(x, f);
          if (p > bestP) { bestP = p; best = f; }
        }
        return { peakHz: best, p400: power(x, 400), p1000: power(x, 1000) };
      };
      return { src, bytes, channels: buf.numberOfChannels, rate: buf.sampleRate, seconds: buf.duration,
        L: channel(0), R: channel(1) };
    });
    step("recording decoded");
    await page.evaluate(() => {
      const a = document.querySelector("#cdr-audio");
      const level = (an) => {
        const x = new Float32Array(an.fftSize);
        an.getFloatTimeDomainData(x);
        let s = 0;
        for (const v of x) s += v * v;
        return Math.sqrt(s / x.length);
      };
      const rec = (window.vsHistPlay = { samples: [], ended: false });
      a.addEventListener("ended", () => { rec.ended = true; });
      rec.timer = setInterval(() => {
        const an = window.vsAnalysers;
        if (!an || a.paused) return;
        rec.samples.push({ t: a.currentTime, L: window.vsPeakHz("L"), R: window.vsPeakHz("R"), levelL: level(an.L), levelR: level(an.R) });
      }, 50);
      return a.play();
    });
    // Both directions sound at once for most of the call: the screenshot
    // shows the player with both meters up.
    await page.waitForFunction(() => window.vsHistPlay.samples.filter((s) => s.levelL > 0.05 && s.levelR > 0.05).length >= 5, null, { timeout: 15000 });
    await page.screenshot({ path: path.join(env.VS_ARTIFACTS, "history-desktop-4-recording.png"), fullPage: true });
    await page.waitForFunction(() => window.vsHistPlay.ended, null, { timeout: 30000 });
    out.played = await page.evaluate(() => {
      clearInterval(window.vsHistPlay.timer);
      return { samples: window.vsHistPlay.samples, duration: document.querySelector("#cdr-audio").duration };
    });
    step("recording played");

    // A live call's page becomes its history page when the call ends.
    await page.goto(env.VS_URL + "#/calls");
    await page.waitForSelector("#calls-table tbody tr", { timeout: 15000 });
    await page.click("#calls-table tbody tr");
    await page.waitForSelector("#ladder svg .msg", { timeout: 10000 });
    out.liveHash = await page.evaluate(() => location.hash);
    await page.waitForFunction(() => location.hash.startsWith("#/cdr/"), null, { timeout: 30000 });
    out.endedHash = await page.evaluate(() => location.hash);
    await page.waitForFunction(() => /answered/.test(document.querySelector("#cdr-summary").textContent), null, { timeout: 30000 });
    out.endedLadder = await page.$$eval("#cdr-ladder svg .msg text:nth-of-type(1)", (ts) => ts.map((t) => t.textContent));
    out.endedNote = await page.textContent("#cdr-ladder-note");
    await page.screenshot({ path: path.join(env.VS_ARTIFACTS, "history-3-ended-live-call.png"), fullPage: true });
    step("live call ended");
  } catch (e) {
    out.error = String(e);
    await page.screenshot({ path: path.join(env.VS_ARTIFACTS, "history-error.png"), fullPage: true }).catch(() => {});
  }
  await ctx.close();
  process.stdout.write(JSON.stringify(out) + "\n");
})();
