package test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// historyScript drives the console's history with playwright-core, on a
// desktop and on a 390 px phone: a search by number pattern and date, an
// ended call's page (its BYE in the ladder, the BYE's text, the SIP pcap
// downloaded), and a live call's page turning into its history page when
// the call ends. It prints one JSON line; the Go test asserts. Environment
// as test/web/console.js, plus VS_NUMBER (a number pattern), VS_FROM and
// VS_TO (datetime-local values, the browser's zone) and VS_CALLID (the
// call the search must find).
const historyScript = `"use strict";
const { chromium } = require("playwright-core");
const path = require("path");
const fs = require("fs");
const env = process.env;
const out = { steps: [], views: {} };
const step = (s) => { out.steps.push(s); process.stderr.write("history.js: " + s + "\n"); };

(async () => {
  const ctx = await chromium.launchPersistentContext(env.VS_PROFILE, {
    executablePath: env.VS_CHROMIUM || "/usr/bin/chromium", headless: true, acceptDownloads: true,
    args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const page = ctx.pages()[0] || (await ctx.newPage());
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
      v.download = { name: dl.suggestedFilename(), bytes: fs.readFileSync(file).length, magic: fs.readFileSync(file).subarray(0, 4).toString("hex") };
      step(name + ": call page");
    }

    // A live call's page becomes its history page when the call ends.
    await page.setViewportSize({ width: 1400, height: 900 });
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
`

// TestHistoryBrowser runs historyScript against the two daemons of
// TestHistoryDaemon. Screenshots go to test/artifacts/web/history-*.png.
func TestHistoryBrowser(t *testing.T) {
	chromium, shots := browserReady(t)
	base, _, calls, _ := historyDaemons(t)
	answered, _ := answeredAndRefused(t, calls)
	script := filepath.Join(t.TempDir(), "history.js")
	if err := os.WriteFile(script, []byte(historyScript), 0o644); err != nil {
		t.Fatal(err)
	}
	modules, _ := filepath.Abs("node_modules")
	// The search: the call's number pattern, within the minute of its
	// start (datetime-local, in the browser's zone: the test's TZ).
	prefix := answered.Caller[:len(answered.Caller)-3] + "%"
	from := answered.Start.Local().Truncate(time.Minute)
	outb := runBrowser(t, script, base, chromium, shots, "NODE_PATH="+modules, "VS_NUMBER="+prefix, "VS_CALLID="+answered.CallID,
		"VS_FROM="+from.Format("2006-01-02T15:04:05"), "VS_TO="+from.Add(time.Minute).Format("2006-01-02T15:04:05"))
	type view struct {
		Rows       []string
		Count      string
		Width      int
		Title      string
		State      string
		Ladder     []string
		LadderNote string
		ByeText    string
		Files      []string
		Download   struct {
			Name  string
			Bytes int
			Magic string
		}
	}
	var got struct {
		Error       string
		PageErrors  []string
		Views       map[string]view
		LiveHash    string
		EndedHash   string
		EndedLadder []string
		EndedNote   string
	}
	if err := json.Unmarshal(bytes.TrimSpace(outb), &got); err != nil {
		t.Fatalf("history.js output %q: %v", outb, err)
	}
	if got.Error != "" || len(got.PageErrors) > 0 {
		t.Fatalf("browser run failed: %s %v", got.Error, got.PageErrors)
	}
	for _, name := range []string{"desktop", "phone"} {
		v := got.Views[name]
		if len(v.Rows) == 0 || !strings.Contains(strings.Join(v.Rows, " "), answered.CallID) || v.Count == "0" {
			t.Errorf("%s: search rows %v (count %s), want %s among them", name, v.Rows, v.Count, answered.CallID)
		}
		if name == "phone" && v.Width > 390 {
			t.Errorf("phone: the history page is %d px wide", v.Width)
		}
		if !strings.Contains(v.State, "ended: answered") || !strings.Contains(v.State, answered.CallID) {
			t.Errorf("%s: call summary %q", name, v.State)
		}
		if len(v.Ladder) < 5 || v.Ladder[0] != "INVITE" || !strings.Contains(strings.Join(v.Ladder, " "), "BYE") || !strings.Contains(v.LadderNote, "SIP pcap") {
			t.Errorf("%s: ladder %q (%s), want INVITE … BYE from the SIP pcap", name, v.Ladder, v.LadderNote)
		}
		if !strings.HasPrefix(v.ByeText, "BYE sip:") || !strings.Contains(v.ByeText, "Call-ID: "+answered.CallID) {
			t.Errorf("%s: BYE text %q", name, v.ByeText)
		}
		if v.Download.Bytes < 100 || (v.Download.Magic != "d4c3b2a1" && v.Download.Magic != "4d3cb2a1") || !strings.HasSuffix(v.Download.Name, ".pcap") {
			t.Errorf("%s: download %+v, files %v", name, v.Download, v.Files)
		}
	}
	if !strings.HasPrefix(got.LiveHash, "#/call/") || !strings.HasPrefix(got.EndedHash, "#/cdr/") ||
		!strings.Contains(strings.Join(got.EndedLadder, " "), "BYE") || !strings.Contains(got.EndedNote, "memory") {
		t.Errorf("live call: %s → %s, ladder %q (%s)", got.LiveHash, got.EndedHash, got.EndedLadder, got.EndedNote)
	}
}
