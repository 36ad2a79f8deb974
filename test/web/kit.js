// The browser tests' common kit: environment, step log, polling and the
// three-way screenshots (desktop, 390 px phone, dark). Each script calls
// kit("name", defaultWaitMS) once. Environment: VS_URL, VS_ARTIFACTS
// (screenshots), VS_DEADLINE_MS (how long any one wait may take).
"use strict";
const path = require("path");

const DESKTOP = { width: 1400, height: 900 }, PHONE = { width: 390, height: 844 };

module.exports = function kit(name, defaultWaitMS) {
  const url = process.env.VS_URL;
  const shots = process.env.VS_ARTIFACTS;
  const waitMS = Number(process.env.VS_DEADLINE_MS || defaultWaitMS);
  const out = { steps: [], shots: [] };
  const step = (s) => { out.steps.push(s); process.stderr.write(name + ".js: " + s + "\n"); };

  // poll calls f every 200 ms until it returns a truthy value, or fails
  // after waitMS.
  async function poll(what, f) {
    const end = Date.now() + waitMS;
    for (;;) {
      const v = await f();
      if (v) return v;
      if (Date.now() > end) throw new Error("timed out after " + waitMS + " ms waiting for " + what);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  // shoot saves the view at desktop width, on a phone and in dark mode
  // (ready, if given, runs after each change of size or scheme), and
  // reports whether the page overflows the phone's width.
  async function shoot(page, view, ready) {
    for (const [mode, size, scheme] of [["desktop", DESKTOP, "light"], ["phone", PHONE, "light"], ["dark", DESKTOP, "dark"]]) {
      await page.setViewportSize(size);
      await page.emulateMedia({ colorScheme: scheme });
      if (ready) await ready();
      // Charts and the ladder follow their box's width: wait for a redraw.
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      await page.waitForFunction(() => [...document.querySelectorAll(".view.shown svg.chart")]
        .every((s) => Number(s.getAttribute("width")) === Math.max(240, Math.floor(s.parentElement.clientWidth || 520))), null, { timeout: waitMS });
      const file = path.join(shots, `${name}-${view}-${mode}.png`);
      await page.screenshot({ path: file, fullPage: true });
      const m = await page.evaluate(() => ({
        overflow: document.documentElement.scrollWidth - window.innerWidth,
        bg: getComputedStyle(document.body).backgroundColor,
        hash: location.hash,
      }));
      out.shots.push({ name: view, mode, file, overflow: m.overflow, bg: m.bg, hash: m.hash });
    }
    await page.setViewportSize(DESKTOP);
    await page.emulateMedia({ colorScheme: "light" });
  }

  return { url, shots, waitMS, out, step, poll, shoot, DESKTOP, PHONE };
};
