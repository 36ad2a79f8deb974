// voipsensor web console. No framework, no external assets: everything is
// served by the sensor, charts are SVG drawn here. Data comes from the
// sensor's commands through the small JSON API in transport/web: listcalls
// (with calls_in_progress's state), active_call_info, call_quality,
// sip_ladder, listregisters, quality_history, listen/readaudio, and for
// ended calls cdr_search, cdr_detail and the spool's files (getfile).
"use strict";

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
};
const SVGNS = "http://www.w3.org/2000/svg";
const svg = (tag, attrs = {}, text) => {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  return e;
};
const DASH = "–";

// ---------------------------------------------------------------- formats

// Payload types by number (RFC 3551); dynamic ones come named from the SDP.
const CODECS = { 0: "PCMU", 3: "GSM", 4: "G723", 8: "PCMA", 9: "G722", 13: "CN", 18: "G729", 101: "telephone-event" };
const codecName = (pt) => (pt == null || pt < 0 ? DASH : CODECS[pt] || "PT " + pt);
const fmtDur = (s) => {
  if (s == null || s < 0 || !isFinite(s)) return DASH;
  s = Math.floor(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), x = s % 60;
  return (h ? h + ":" + String(m).padStart(2, "0") : m) + ":" + String(x).padStart(2, "0");
};
const pad2 = (n) => String(n).padStart(2, "0");
// One date format everywhere: the browser's local time as
// YYYY-MM-DD HH:MM:SS, with the zone (tzLabel) shown beside it.
const toDate = (t) => (t == null || t === "" || t === 0 ? null : t instanceof Date ? t : new Date(t));
function fmtDateTime(t) {
  const d = toDate(t);
  if (!d || isNaN(d) || d.getFullYear() < 1971) return DASH;
  return d.getFullYear() + "-" + pad2(d.getMonth() + 1) + "-" + pad2(d.getDate()) + " " + fmtClock(d);
}
function fmtClock(t, seconds = true) {
  const d = toDate(t);
  if (!d || isNaN(d)) return DASH;
  return pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + (seconds ? ":" + pad2(d.getSeconds()) : "");
}
// tzLabel is the browser's zone as an offset from UTC: "UTC", "UTC+01:00".
function tzLabel(d = new Date()) {
  const off = -d.getTimezoneOffset();
  if (off === 0) return "UTC";
  const a = Math.abs(off);
  return "UTC" + (off > 0 ? "+" : "−") + pad2(Math.floor(a / 60)) + ":" + pad2(a % 60);
}
const fmtDateTimeTZ = (t) => (fmtDateTime(t) === DASH ? DASH : fmtDateTime(t) + " " + tzLabel(toDate(t)));
// Headers of date columns carry the zone.
function labelZones() {
  document.querySelectorAll("th[data-tz]").forEach((th) => {
    if (!th.dataset.text) th.dataset.text = th.textContent;
    th.replaceChildren(th.dataset.text + " ", el("span", { class: "tz" }, "(" + tzLabel() + ")"));
  });
}

// Quality classes. MOS (1–5): ≥ 4.0 good (ITU-T G.107: users satisfied),
// 3.6–4.0 fair, below poor; loss (%): ≤ 1 good, ≤ 3 fair; jitter (ms): ≤ 20
// good, ≤ 50 fair. The legend under the calls says the same.
const qual = {
  mos: (v) => (v == null ? "none" : v >= 4 ? "good" : v >= 3.6 ? "warn" : "bad"),
  loss: (v) => (v == null ? "none" : v <= 1 ? "good" : v <= 3 ? "warn" : "bad"),
  jitter: (v) => (v == null ? "none" : v <= 20 ? "good" : v <= 50 ? "warn" : "bad"),
};
const FMT = { mos: (v) => v.toFixed(1), loss: (v) => v.toFixed(1) + " %", jitter: (v) => v.toFixed(1) + " ms" };
// qspan shows a figure in its quality colour, or "–" with why in the title.
function qspan(kind, v, why, title) {
  if (v == null) return el("span", { class: "q none", title: why || "" }, DASH);
  return el("span", { class: "q " + qual[kind](v), title: title || null, "data-v": v }, FMT[kind](v));
}

// rowMOS is one direction's MOS for the calls list: the running average
// of the closed 10 s intervals (listcalls src_mosf1_avg, the CDR's
// figure), null with a reason before there is one.
function rowMOS(c, p) {
  if (c[p + "received"] == null) return { v: null, why: "no RTP in this direction yet" };
  const avg = c[p + "mosf1_avg"];
  if (!(avg > 0)) return { v: null, why: "no 10 s interval closed yet (MOS needs 10 s of RTP)" };
  return { v: avg, title: "average of the closed 10 s intervals; last interval " + c[p + "mosf1"].toFixed(1) + ", lowest " + c[p + "mosf1_min"].toFixed(1) };
}

async function api(path) {
  const r = await fetch(path, { cache: "no-store" });
  const ct = r.headers.get("Content-Type") || "";
  const body = ct.includes("json") ? await r.json() : await r.text();
  if (!r.ok) throw new Error((body && body.error) || body || r.statusText);
  return body;
}

function setLive(ok, text) {
  $("#live").className = "live " + (ok ? "ok" : "err");
  $("#live-text").textContent = text;
}
const liveNow = () => setLive(true, "live · " + fmtClock(new Date()) + " " + tzLabel());

// labelCells gives each cell of a card table the text of its column's
// header, shown before the value on a phone.
function labelCells(table, tr) {
  const heads = [...table.querySelectorAll("thead th")].map((th) => th.dataset.text || th.textContent.trim());
  [...tr.children].forEach((td, i) => { if (heads[i] && !td.classList.contains("wide")) td.dataset.label = heads[i]; });
  return tr;
}

// ---------------------------------------------------------------- calls

const STATE_CLASS = { answered: "good", ringing: "info", calling: "" };
function callState(c) {
  if (c.state) return c.state;
  return c.connect_duration > 0 ? "answered" : "calling";
}
const stateBadge = (s) => el("span", { class: "badge state " + (STATE_CLASS[s] ?? "") }, s);

let calls = [];
function callBad(c) {
  return qual.mos(rowMOS(c, "src_").v) === "bad" || qual.mos(rowMOS(c, "dst_").v) === "bad" ||
    qual.loss(c.src_loss) === "bad" || qual.loss(c.dst_loss) === "bad" ||
    qual.jitter(c.src_jitter_avg) === "bad" || qual.jitter(c.dst_jitter_avg) === "bad";
}
function filteredCalls() {
  const q = $("#calls-search").value.trim().toLowerCase();
  const f = $("#calls-filter").value;
  return calls.filter((c) => {
    const st = callState(c);
    if (f === "answered" && st !== "answered") return false;
    if (f === "ringing" && st === "answered") return false;
    if (f === "bad" && !callBad(c)) return false;
    if (!q) return true;
    return [c.caller, c.called, c.callername, c.callid, c.callerip, c.calledip, c.callreference, c.calleragent, c.calledagent]
      .some((x) => x != null && String(x).toLowerCase().includes(q));
  });
}
const codecs = (c) => (c.src_received == null && c.dst_received == null ? DASH :
  codecName(c.callercodec) + (c.calledcodec >= 0 && c.dst_received != null && c.calledcodec !== c.callercodec ? " / " + codecName(c.calledcodec) : ""));
function renderCalls() {
  const rows = filteredCalls();
  const table = $("#calls-table");
  table.querySelector("tbody").replaceChildren(...rows.map((c) => {
    const ref = c.callreference, st = callState(c);
    const ma = rowMOS(c, "src_"), mb = rowMOS(c, "dst_");
    const noRTP = (p) => (c[p + "received"] == null ? "no RTP in this direction yet" : "");
    return labelCells(table, el("tr", { class: "click", "data-ref": ref, "data-state": st, onclick: () => (location.hash = "#/call/" + ref) },
      el("td", {}, el("strong", {}, c.caller || DASH), c.callername ? el("span", { class: "muted" }, " " + c.callername) : null),
      el("td", {}, c.called || DASH),
      el("td", {}, stateBadge(st)),
      el("td", {}, fmtDateTime(c.calldate)),
      el("td", { class: "num" }, fmtDur(c.duration)),
      el("td", {}, codecs(c)),
      el("td", { class: "num mos-a" }, qspan("mos", ma.v, ma.why, ma.title)),
      el("td", { class: "num mos-b" }, qspan("mos", mb.v, mb.why, mb.title)),
      el("td", { class: "num" }, qspan("loss", c.src_loss, noRTP("src_"), c.src_loss_abs != null ? c.src_loss_abs + " of " + (c.src_loss_abs + c.src_received) + " packets" : "")),
      el("td", { class: "num" }, qspan("loss", c.dst_loss, noRTP("dst_"), c.dst_loss_abs != null ? c.dst_loss_abs + " of " + (c.dst_loss_abs + c.dst_received) + " packets" : "")),
      el("td", { class: "num" }, qspan("jitter", c.src_jitter_avg, noRTP("src_"), c.src_jitter != null ? "now " + c.src_jitter.toFixed(1) + " ms, max " + c.src_jitter_max.toFixed(1) + " ms" : "")),
      el("td", { class: "num" }, qspan("jitter", c.dst_jitter_avg, noRTP("dst_"), c.dst_jitter != null ? "now " + c.dst_jitter.toFixed(1) + " ms, max " + c.dst_jitter_max.toFixed(1) + " ms" : "")),
      el("td", { class: "num wide" }, el("button", { class: "small", onclick: (e) => { e.stopPropagation(); location.hash = "#/call/" + ref + "/listen"; } }, "▶ Listen"))));
  }));
  // The badge counts the rows shown; "of N" when a filter hides some.
  $("#calls-count").textContent = rows.length;
  $("#calls-total").textContent = rows.length !== calls.length ? "of " + calls.length : "";
  $("#calls-empty").style.display = rows.length ? "none" : "block";
  $("#calls-empty").textContent = calls.length ? "No call matches the filter." : "No calls in progress.";
}
async function pollCalls() {
  try {
    calls = (await api("/api/calls")).rows;
    calls.sort((a, b) => String(b.calldate).localeCompare(String(a.calldate)));
    if (view === "calls") renderCalls();
    if (view === "player") renderPlayerCalls();
    liveNow();
  } catch (e) {
    setLive(false, "offline: " + e.message);
  }
}

// ---------------------------------------------------------------- registrations

// listregisters states, as the sniffer numbers them.
const REG_STATES = { 1: ["OK", "good"], 2: ["Failed", "bad"], 3: ["Unknown message OK", "warn"], 4: ["Many REGISTERs", "warn"], 5: ["Expired", "warn"], 6: ["Unregister", ""] };
const regState = (s) => REG_STATES[s] || ["state " + s, "warn"];
let regs = [];
function renderRegs() {
  const q = $("#regs-search").value.trim().toLowerCase();
  const rows = regs.filter((r) => !q || [...Object.values(r), regState(r.state)[0]].some((x) => x != null && String(x).toLowerCase().includes(q)));
  const table = $("#regs-table");
  table.querySelector("tbody").replaceChildren(...rows.map((r) => {
    const [name, cls] = regState(r.state);
    return labelCells(table, el("tr", { "data-state": name },
      el("td", {}, el("strong", {}, r.digestusername || r.from_num || r.to_num || DASH)),
      el("td", {}, r.from_domain || r.to_domain || DASH),
      el("td", {}, (r.contact_num || "") + (r.contact_domain ? "@" + r.contact_domain : "") || DASH),
      el("td", { class: "mono" }, r.sipcallerip || DASH), el("td", { class: "mono" }, r.sipcalledip || DASH),
      el("td", {}, el("span", { class: "badge state " + cls }, name)),
      el("td", { class: "num", title: r.expires_at ? "until " + fmtDateTimeTZ(r.expires_at) : "" }, r.expires ? r.expires + " s" : DASH),
      el("td", {}, r.ua || DASH),
      el("td", {}, fmtDateTime(r.calldate))));
  }));
  $("#regs-count").textContent = rows.length;
  $("#regs-empty").style.display = rows.length ? "none" : "block";
}
async function pollRegs() {
  try {
    regs = (await api("/api/registrations")).rows;
    renderRegs();
    liveNow();
  } catch (e) {
    setLive(false, "offline: " + e.message);
  }
}

// ---------------------------------------------------------------- charts

// niceStep is a round step (1, 2, 2.5 or 5 × 10^k) giving about n steps.
function niceStep(span, n) {
  const raw = span / n, p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 2.5, 5]) if (m * p >= raw) return m * p;
  return 10 * p;
}
function niceTicks(lo, hi, n) {
  const st = niceStep(hi - lo || 1, n), out = [];
  for (let v = Math.ceil(lo / st - 1e-9) * st; v <= hi + st * 1e-6; v += st) out.push(Math.round(v * 1e6) / 1e6);
  return out;
}
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600].map((s) => s * 1000);
function timeTicks(lo, hi, n) {
  const step = TIME_STEPS.find((s) => s >= (hi - lo) / n) || 3600e3;
  const zone = new Date(lo).getTimezoneOffset() * 60e3, out = [];
  for (let v = Math.ceil((lo - zone) / step) * step + zone; v <= hi; v += step) out.push(v);
  return { ticks: out, fmt: (v) => fmtClock(v, step < 60e3) };
}

// chart draws an SVG chart into box, as wide as box. opt: x [lo, hi]
// (ms since the epoch), y [lo, hi], yfmt, yticks (count), bands
// [{from, to, cls}] shaded behind the data, series [{cls, name, segs:
// [[x0, x1, y, title]…]}] drawn as steps (each segment a value over an
// interval), or [{cls, name, points: [[x, y, title]…]}] as lines with
// dots, bars [{x0, x1, y, cls, title}], and empty, the text shown without
// data.
function chart(box, opt) {
  const W = Math.max(240, Math.floor(box.clientWidth || 520)), H = opt.height || 170;
  const m = { l: 42, r: 10, t: 8, b: 22 }, pw = W - m.l - m.r, ph = H - m.t - m.b;
  const s = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img" });
  const [x0, x1] = opt.x, [y0, y1] = opt.y;
  const X = (v) => m.l + (x1 === x0 ? pw / 2 : ((Math.min(Math.max(v, x0), x1) - x0) / (x1 - x0)) * pw);
  const Y = (v) => m.t + ph - ((Math.min(Math.max(v, y0), y1) - y0) / (y1 - y0)) * ph;
  for (const b of opt.bands || []) {
    s.append(svg("rect", { x: m.l, width: pw, y: Y(b.to), height: Math.max(0, Y(b.from) - Y(b.to)), class: "band " + b.cls }));
  }
  for (const v of niceTicks(y0, y1, opt.yticks || 4)) {
    s.append(svg("line", { x1: m.l, x2: m.l + pw, y1: Y(v), y2: Y(v), class: "grid" }));
    s.append(svg("text", { x: m.l - 6, y: Y(v) + 4, "text-anchor": "end" }, opt.yfmt(v)));
  }
  const tt = timeTicks(x0, x1, Math.max(2, Math.floor(pw / 80)));
  for (const v of tt.ticks) {
    // A label must fit: none centred closer to the edge than half its width.
    const half = tt.fmt(v).length * 3.3;
    if (X(v) + half > W || X(v) - half < m.l - 6) continue;
    s.append(svg("line", { x1: X(v), x2: X(v), y1: m.t + ph, y2: m.t + ph + 4, class: "axis" }));
    s.append(svg("text", { x: X(v), y: H - 6, "text-anchor": "middle" }, tt.fmt(v)));
  }
  s.append(svg("line", { x1: m.l, x2: m.l + pw, y1: m.t + ph, y2: m.t + ph, class: "axis" }));
  let any = false;
  for (const b of opt.bars || []) {
    any = true;
    const w = Math.max(2, X(b.x1) - X(b.x0) - 2);
    const r = svg("rect", { x: X(b.x0) + 1, width: w, y: Y(b.y), height: Math.max(0, Y(y0) - Y(b.y)), class: "bar " + (b.cls || "") });
    r.append(svg("title", {}, b.title));
    s.append(r);
  }
  for (const se of opt.series || []) {
    let d = "", lastX = null;
    for (const [a, b, v, title] of se.segs || []) {
      any = true;
      d += (lastX === a ? ` V${Y(v).toFixed(1)}` : ` M${X(a).toFixed(1)},${Y(v).toFixed(1)}`) + ` H${X(b).toFixed(1)}`;
      lastX = b;
      const dot = svg("circle", { cx: X(b), cy: Y(v), r: 2.5, class: se.cls });
      dot.append(svg("title", {}, title));
      s.append(dot);
    }
    (se.points || []).forEach(([x, v, title], i) => {
      any = true;
      d += (i ? " L" : " M") + X(x).toFixed(1) + "," + Y(v).toFixed(1);
      const dot = svg("circle", { cx: X(x), cy: Y(v), r: se.r || 2.5, class: se.cls });
      dot.append(svg("title", {}, title));
      s.append(dot);
    });
    if (d) s.insertBefore(svg("path", { d: d.trim(), class: "line " + se.cls }), s.querySelector("circle"));
  }
  if (!any) s.append(svg("text", { x: m.l + pw / 2, y: m.t + ph / 2, "text-anchor": "middle", class: "nodata" }, opt.empty || "No data yet"));
  box.replaceChildren(s);
}

// barChart draws labelled bars over categories: bars [{label, value, cls,
// title}].
function barChart(box, opt) {
  const W = Math.max(240, Math.floor(box.clientWidth || 520)), H = opt.height || 170;
  const m = { l: 42, r: 10, t: 14, b: 22 }, pw = W - m.l - m.r, ph = H - m.t - m.b;
  const s = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img" });
  const top = Math.max(1, ...opt.bars.map((b) => b.value));
  const Y = (v) => m.t + ph - (v / top) * ph, bw = pw / opt.bars.length;
  // When a label is wider than its bar, all give way to their short form.
  const short = opt.bars.some((b) => b.short && b.label.length * 6.2 > bw);
  for (const v of niceTicks(0, top, 4).filter((v) => v === Math.round(v))) {
    s.append(svg("line", { x1: m.l, x2: m.l + pw, y1: Y(v), y2: Y(v), class: "grid" }));
    s.append(svg("text", { x: m.l - 6, y: Y(v) + 4, "text-anchor": "end" }, String(v)));
  }
  opt.bars.forEach((b, i) => {
    const x = m.l + i * bw;
    const r = svg("rect", { x: x + 3, width: Math.max(2, bw - 6), y: Y(b.value), height: Y(0) - Y(b.value), class: "bar " + (b.cls || "") });
    r.append(svg("title", {}, b.title));
    s.append(r);
    if (b.value) s.append(svg("text", { x: x + bw / 2, y: Y(b.value) - 3, "text-anchor": "middle", class: "val" }, String(b.value)));
    s.append(svg("text", { x: x + bw / 2, y: H - 6, "text-anchor": "middle" }, short ? b.short : b.label));
  });
  s.append(svg("line", { x1: m.l, x2: m.l + pw, y1: Y(0), y2: Y(0), class: "axis" }));
  if (!opt.bars.some((b) => b.value)) s.append(svg("text", { x: m.l + pw / 2, y: m.t + ph / 2, "text-anchor": "middle", class: "nodata" }, opt.empty || "No data yet"));
  box.replaceChildren(s);
}

// Charts are drawn at their box's width: redraw the view's on resize.
let redraw = null;
let resizeTimer = null;
window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(() => redraw && redraw(), 150); });

// ---------------------------------------------------------------- call details

const SIDE_TEXT = { caller: "caller → called", callee: "called → caller" };
const SIDE_CLASS = { caller: "s1", callee: "s2" };
const KIND_TEXT = { voice: "voice", dtmf: "DTMF (RFC 2833)", cn: "comfort noise", video: "video" };
function streamCarries(s) {
  const codec = s.codec || codecName(s.payload_type);
  if (s.kind !== "voice") return el("span", { class: "badge info kind", "data-kind": s.kind }, KIND_TEXT[s.kind] || s.kind);
  const extra = [s.dtmf_packets ? s.dtmf_packets + " DTMF" : "", s.cn_packets ? s.cn_packets + " CN" : ""].filter(Boolean).join(", ");
  return el("span", { class: "kind", "data-kind": "voice" }, codec, extra ? el("span", { class: "muted" }, " + " + extra) : null);
}
function streamMOS(s, m) {
  if (s.kind !== "voice") return el("span", { class: "q none", title: "not voice: no voice quality" }, DASH);
  if (!m) return el("span", { class: "q none", title: "no 10 s interval closed yet" }, DASH);
  return qspan("mos", m.f1, "", "F1 " + m.f1.toFixed(1) + ", F2 " + m.f2.toFixed(1) + ", adaptive " + m.adapt.toFixed(1));
}

let currentRef = null, lastQuality = null, lastCall = null;
async function loadCall(ref) {
  const enc = encodeURIComponent(ref);
  const [info, quality] = await Promise.all([api("/api/call?ref=" + enc).catch((e) => e), api("/api/quality?ref=" + enc).catch((e) => e)]);
  if (ref !== currentRef) return;
  // A call that ended turns into its history page (its CDR, its whole
  // ladder, its recordings): at once when its Call-ID is known, else
  // through the ladder log, which remembers references.
  if (info instanceof Error && /no such entry/.test(info.message)) {
    const callid = (lastCall && lastCall.callid) || (quality instanceof Error ? null : quality.callid);
    if (callid) return toHistoryPage(callid, ref);
    try {
      const d = await api("/api/cdr/detail?ref=" + enc);
      if (ref === currentRef) return toHistoryPage(d.callid, ref);
    } catch (e) {
      if (ref !== currentRef) return;
      $("#call-title").textContent = "Call " + ref + ": " + (/no such entry/.test(e.message) ? "not in memory and not in the history" : e.message);
      return;
    }
  }
  if (info instanceof Error && quality instanceof Error) {
    $("#call-title").textContent = "Call " + ref + ": " + quality.message;
    return;
  }
  // A call that ended is no longer active (active_call_info), but its
  // streams stay for a while (call_quality): keep the last summary.
  if (!(info instanceof Error)) lastCall = info.call;
  if (lastCall) renderSummary(lastCall, quality instanceof Error ? null : quality, info instanceof Error);
  else renderEndedSummary(quality);
  if (!(quality instanceof Error)) {
    lastQuality = quality;
    renderStreams(quality);
    renderQualityCharts(quality);
    redraw = () => lastQuality && renderQualityCharts(lastQuality);
  }
  try {
    drawLadder(await api("/api/ladder?ref=" + enc), LIVE_LADDER);
  } catch (e) {
    $("#ladder").replaceChildren(el("p", { class: "muted" }, "No SIP messages kept: " + e.message));
  }
  liveNow();
}

// toHistoryPage replaces the live page of a call that ended with its
// history page (the back button skips the dead live page).
function toHistoryPage(callid, ref) {
  stopListen(true);
  location.replace("#/cdr/" + encodeURIComponent(callid) + (ref ? "?ref=" + encodeURIComponent(ref) : ""));
}

function renderSummary(c, q, ended) {
  $("#call-title").textContent = (c.caller || "?") + " → " + (c.called || "?") + (ended ? " (ended)" : "");
  const mos = (p) => { const m = rowMOS(c, p); return m.v == null ? DASH + " (" + m.why + ")" : m.v.toFixed(1); };
  const st = q ? q.state : c.connect_duration > 0 ? "answered" : "calling";
  const kv = [
    ["Call reference", c.callreference], ["Call-ID", c.callid],
    ["State", st], ["Started", fmtDateTimeTZ(c.calldate)],
    ["Duration", fmtDur(c.duration)], ["Connected", c.connect_duration > 0 ? fmtDur(c.connect_duration) : DASH],
    ["Caller", (c.callername ? c.callername + " " : "") + (c.caller || "") + "@" + (c.callerdomain || "")],
    ["Called", (c.called || "") + "@" + (c.calleddomain || "")], ["Caller agent", c.calleragent || DASH], ["Called agent", c.calledagent || DASH],
    ["Last packet", fmtDateTimeTZ(c.lastpackettime ? c.lastpackettime * 1000 : 0)], ["Last SIP response", c.lastSIPresponseNum || DASH],
    ["MOS →", mos("src_")], ["MOS ←", mos("dst_")],
    ["Loss →", c.src_loss != null ? c.src_loss.toFixed(2) + " %" : DASH], ["Loss ←", c.dst_loss != null ? c.dst_loss.toFixed(2) + " %" : DASH],
  ];
  $("#call-summary").replaceChildren(...kv.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { title: String(v ?? "") }, v ?? DASH)]));
  const legs = [[c.callerip, c.calledip]];
  (c.sipproxies ? c.sipproxies.split(",") : []).forEach((p) => legs.push([p, "…"])); // "a,b" (listcalls text)
  $("#call-legs tbody").replaceChildren(...legs.map((l, i) => el("tr", {}, el("td", {}, i + 1), el("td", { class: "mono" }, l[0] ?? DASH), el("td", { class: "mono" }, l[1] ?? DASH))));
}

// renderEndedSummary is the summary of a call that had ended before the
// page opened: what call_quality still knows.
function renderEndedSummary(q) {
  $("#call-title").textContent = "Call " + q.callreference + " (" + q.state + ")";
  const kv = [["Call reference", q.callreference], ["Call-ID", q.callid], ["State", q.state], ["Started", fmtDateTimeTZ(q.calldate)],
    ["Answered", q.answered ? fmtDateTimeTZ(q.answered) : DASH]];
  $("#call-summary").replaceChildren(...kv.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { title: String(v ?? "") }, v ?? DASH)]));
}

function renderStreams(q) {
  const table = $("#call-streams");
  // Voice first, the caller's first.
  const order = (s) => (s.kind === "voice" ? 0 : 2) + (s.side === "caller" ? 0 : 1);
  const streams = [...q.streams].sort((a, b) => order(a) - order(b));
  table.querySelector("tbody").replaceChildren(...streams.map((s) => labelCells(table, el("tr", { "data-side": s.side, "data-kind": s.kind, "data-ssrc": s.ssrc },
    el("td", { class: "dir full" }, s.side ? el("span", {}, el("span", { class: "sw " + SIDE_CLASS[s.side] }), " " + SIDE_TEXT[s.side]) : el("span", { class: "muted", title: "neither side's SDP names this stream's addresses" }, "unknown")),
    el("td", { class: "full" }, streamCarries(s)),
    el("td", { class: "mono full" }, s.src), el("td", { class: "mono full" }, s.dst),
    el("td", { class: "mono" }, "0x" + (s.ssrc >>> 0).toString(16)),
    el("td", { class: "num" }, s.received), el("td", { class: "num" }, s.lost),
    el("td", { class: "num" }, s.kind === "voice" ? qspan("loss", s.loss_pct) : (s.loss_pct || 0).toFixed(1) + " %"),
    el("td", { class: "num" }, s.kind === "voice" ? qspan("jitter", s.jitter_avg_ms) : DASH),
    el("td", { class: "num" }, s.kind === "voice" ? qspan("jitter", s.jitter_max_ms) : DASH),
    el("td", { class: "num stream-mos" }, streamMOS(s, s.mos)),
    el("td", { class: "num" }, streamMOS(s, s.mos_last)),
    el("td", { class: "num", title: s.intervals_closed > s.intervals.length ? "the last " + s.intervals.length + " are kept" : "" }, s.kind === "voice" ? s.intervals_closed : DASH)))));
  $("#streams-empty").style.display = q.streams.length ? "none" : "block";
}

// renderQualityCharts draws each voice stream's intervals as steps: the
// MOS, loss and mean jitter of each closed 10 s interval.
function renderQualityCharts(q) {
  const voice = q.streams.filter((s) => s.kind === "voice");
  const t = (x) => new Date(x).getTime();
  const series = (f) => voice.map((s) => ({
    cls: SIDE_CLASS[s.side] || "s1",
    segs: s.intervals.map((iv, i) => {
      const end = t(iv.end), start = i ? t(s.intervals[i - 1].end) : s.intervals_closed > s.intervals.length ? end - 10e3 : t(s.first);
      return [start, end, f(iv), (SIDE_TEXT[s.side] || "stream") + ", interval to " + fmtClock(end) + ": " + f.fmt(f(iv))];
    }),
  }));
  const firsts = voice.map((s) => t(s.first)).filter((x) => x > 0);
  const lasts = voice.flatMap((s) => [t(s.last), ...s.intervals.map((iv) => t(iv.end))]);
  const lo = firsts.length ? Math.min(...firsts) : t(q.calldate);
  const hi = Math.max(lo + 30e3, ...lasts);
  const closed = voice.reduce((n, s) => n + s.intervals_closed, 0);
  const empty = voice.length ? "No 10 s interval closed yet" : "No voice RTP yet";
  const mos = (iv) => iv.mos.f1; mos.fmt = (v) => "MOS " + v.toFixed(1);
  const loss = (iv) => iv.loss_pct; loss.fmt = (v) => v.toFixed(2) + " % lost";
  const jit = (iv) => iv.jitter_avg_ms; jit.fmt = (v) => v.toFixed(1) + " ms mean";
  const maxOf = (f, floor) => Math.max(floor, ...voice.flatMap((s) => s.intervals.map(f)));
  chart($("#q-mos"), { x: [lo, hi], y: [1, 4.6], yfmt: (v) => v.toFixed(1), series: series(mos), empty,
    bands: [{ from: 1, to: 3.6, cls: "bad" }, { from: 3.6, to: 4, cls: "warn" }] });
  const lmax = maxOf(loss, 5);
  chart($("#q-loss"), { x: [lo, hi], y: [0, niceStep(lmax, 4) * Math.ceil(lmax / niceStep(lmax, 4))], yfmt: (v) => v + " %", series: series(loss), empty,
    bands: [{ from: 1, to: 3, cls: "warn" }, { from: 3, to: 100, cls: "bad" }] });
  const jmax = maxOf(jit, 60);
  chart($("#q-jitter"), { x: [lo, hi], y: [0, niceStep(jmax, 4) * Math.ceil(jmax / niceStep(jmax, 4))], yfmt: (v) => v + "", series: series(jit), empty,
    bands: [{ from: 20, to: 50, cls: "warn" }, { from: 50, to: 1e9, cls: "bad" }] });
  $("#quality-note").textContent = closed ? "" : "· a point per 10 s of RTP";
}

// The ladder's elements on the live page and on a history page.
const LIVE_LADDER = { box: "#ladder", raw: "#ladder-raw", note: "#ladder-note" };
const CDR_LADDER = { box: "#cdr-ladder", raw: "#cdr-ladder-raw", note: "#cdr-ladder-note" };

// rawText is a message's text as kept, saying when it was cut.
function rawText(m) {
  if (!m.raw) return m.line + "\n\n(the text of this message is not kept)";
  const crlf = m.raw.replace(/\r\n/g, "\n");
  return m.raw.length < m.size ? crlf + "\n… (" + m.raw.length + " of " + m.size + " bytes kept)" : crlf;
}

// drawLadder draws l's messages as an SVG sequence diagram into ids.box;
// a click on a message shows its text in ids.raw.
function drawLadder(l, ids) {
  const msgs = l.messages;
  const nodes = [];
  for (const m of msgs) for (const n of [m.src, m.dst]) if (!nodes.includes(n)) nodes.push(n);
  // Columns of up to 260 px, narrower on a small screen (never below 150).
  const left = 90, top = 40, rowH = 30;
  const colW = Math.max(150, Math.min(260, ((($(ids.box).clientWidth || 900) - left - 120) / Math.max(nodes.length - 1, 1))));
  const W = left + colW * Math.max(nodes.length - 1, 1) + 120, H = top + rowH * msgs.length + 20;
  const s = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}` });
  // One marker id per ladder: a url(#id) resolving into a hidden view's
  // SVG would draw no arrowheads.
  const arr = "arr-" + ids.box.slice(1);
  const defs = svg("defs"), mk = svg("marker", { id: arr, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  mk.append(svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow" }));
  defs.append(mk);
  s.append(defs);
  const x = (n) => left + 60 + nodes.indexOf(n) * colW;
  nodes.forEach((n) => {
    s.append(svg("text", { x: x(n), y: 18, "text-anchor": "middle", class: "node" }, n));
    s.append(svg("line", { x1: x(n), y1: 26, x2: x(n), y2: H - 6, class: "life" }));
  });
  const t0 = msgs.length ? new Date(msgs[0].time).getTime() : 0;
  msgs.forEach((m, i) => {
    const y = top + i * rowH + 14;
    const isResp = m.line.startsWith("SIP/2.0");
    const code = isResp ? parseInt(m.line.split(" ")[1], 10) : 0;
    const g = svg("g", { class: "msg" + (isResp ? " resp" : "") + (code >= 400 ? " err" : "") });
    g.append(svg("rect", { x: 0, y: y - rowH / 2 - 4, width: W, height: rowH, class: "hit" })); // the whole row is clickable
    const x1 = x(m.src), x2 = x(m.dst);
    g.append(svg("line", { x1, y1: y, x2: x2 + (x2 > x1 ? -2 : 2), y2: y, "marker-end": "url(#" + arr + ")" }));
    const label = isResp ? m.line.slice(8) : m.line.split(" ")[0];
    g.append(svg("text", { x: (x1 + x2) / 2, y: y - 5, "text-anchor": "middle" }, label));
    g.append(svg("text", { x: 8, y: y + 4, class: "t" }, "+" + ((new Date(m.time).getTime() - t0) / 1000).toFixed(3) + " s"));
    g.append(svg("title", {}, m.line + "  (" + m.size + " bytes, " + fmtDateTimeTZ(m.time) + ")"));
    g.dataset.i = i;
    const sel = ladderSel[ids.box];
    if (sel && sel.time === m.time && sel.line === m.line) g.classList.add("sel");
    g.addEventListener("click", () => {
      ladderSel[ids.box] = { time: m.time, line: m.line };
      s.querySelectorAll(".msg.sel").forEach((x) => x.classList.remove("sel"));
      g.classList.add("sel");
      const pre = $(ids.raw);
      pre.hidden = false;
      pre.textContent = rawText(m);
    });
    s.append(g);
  });
  $(ids.box).replaceChildren(s);
  $(ids.note).textContent = msgs.length + " messages" + (l.omitted ? ", " + l.omitted + " omitted" : "") + (l.truncated ? ", older ones no longer kept" : "") +
    (l.source ? " · from " + (l.source === "spool" ? "the SIP pcap" : "memory") : "") + " · click one for its text";
}
// ladderSel remembers the message shown per ladder, across redraws.
const ladderSel = {};

// ---------------------------------------------------------------- dashboard

// MOS bands of quality_history (tableview.mosBandEdges), split at the
// quality thresholds: five poor, two fair, two good.
const MOS_BANDS = ["< 2", "2–2.5", "2.5–3", "3–3.3", "3.3–3.6", "3.6–3.8", "3.8–4", "4–4.3", "≥ 4.3"];
const MOS_BANDS_SHORT = ["<2", "2", "2.5", "3", "3.3", "3.6", "3.8", "4", "4.3"]; // lower edges, for a phone
const MOS_BAND_CLASS = ["bad", "bad", "bad", "bad", "bad", "warn", "warn", "good", "good"];
let minutes = [];
async function pollHistory() {
  try {
    minutes = await api("/api/history");
    renderDashboard();
    redraw = renderDashboard;
    liveNow();
  } catch (e) {
    setLive(false, "offline: " + e.message);
  }
}
function renderDashboard() {
  const now = Date.now();
  const mins = minutes.map((m) => ({ ...m, t: m.start * 1000 }));
  const lo = Math.min(now - 10 * 60e3, ...mins.map((m) => m.t)), hi = now;
  const sum = (f) => mins.reduce((n, m) => n + f(m), 0);
  const ended = sum((m) => m.ended), answered = sum((m) => m.answered), nok = sum((m) => m.network_ok), attempts = sum((m) => m.attempts);
  const pct = (a, b) => (b ? ((100 * a) / b).toFixed(0) + " %" : DASH);
  const cur = mins.length ? mins[mins.length - 1].in_progress : 0;
  $("#dash-tiles").replaceChildren(...[
    [cur, "calls in progress"], [attempts, "call attempts, last hour"], [pct(answered, ended), "ASR, last hour"],
    [pct(nok, ended), "NER, last hour"], [ended, "calls ended, last hour"],
  ].map(([v, l]) => el("div", { class: "tile" }, el("b", {}, v), el("span", {}, l))));
  $("#dash-note").textContent = "· per minute, " + fmtClock(lo, false) + "–" + fmtClock(hi, false) + " " + tzLabel();
  const mid = (m) => m.t + 30e3;
  const pmax = Math.max(4, ...mins.map((m) => m.in_progress));
  chart($("#c-inprogress"), { x: [lo, hi], y: [0, Math.ceil(pmax * 1.15)], yfmt: (v) => String(v),
    series: [{ cls: "s1", points: mins.map((m) => [mid(m), m.in_progress, fmtClock(m.t, false) + ": " + m.in_progress + " calls in progress"]) }] });
  const cps = (m) => m.attempts / 60;
  const cmax = Math.max(0.1, ...mins.map(cps));
  chart($("#c-cps"), { x: [lo, hi], y: [0, cmax * 1.15], yfmt: (v) => (cmax < 1 ? v.toFixed(2) : v.toFixed(1)),
    bars: mins.map((m) => ({ x0: m.t, x1: m.t + 60e3, y: cps(m), title: fmtClock(m.t, false) + ": " + m.attempts + " attempts, " + cps(m).toFixed(2) + "/s" })) });
  const withEnded = mins.filter((m) => m.ended > 0);
  chart($("#c-asr"), { x: [lo, hi], y: [0, 100], yfmt: (v) => v + "", empty: "No call ended yet",
    series: [ // NER ≥ ASR: ASR drawn last, on top
      { cls: "s2", r: 4.5, points: withEnded.map((m) => [mid(m), (100 * m.network_ok) / m.ended, fmtClock(m.t, false) + ": NER " + pct(m.network_ok, m.ended) + " of " + m.ended]) },
      { cls: "s1", points: withEnded.map((m) => [mid(m), (100 * m.answered) / m.ended, fmtClock(m.t, false) + ": ASR " + pct(m.answered, m.ended) + " of " + m.ended]) },
    ] });
  const bands = MOS_BANDS.map((_, i) => sum((m) => m.mos[i] || 0));
  barChart($("#c-mos"), { empty: "No call with a MOS ended yet",
    bars: MOS_BANDS.map((label, i) => ({ label, short: MOS_BANDS_SHORT[i], value: bands[i], cls: MOS_BAND_CLASS[i], title: bands[i] + " calls with MOS " + label })) });
}

// ---------------------------------------------------------------- audio

// Latency: each chunk of the listen stream carries the server's send time;
// each 20 ms frame carries the time its newest RTP packet reached the
// sensor. The page adds when the frame will actually play.
window.vsLatency = { n: 0, sum: 0, max: 0, samples: [] };
window.vsCapture = { L: [], R: [], M: [] }; // last 2 s of received PCM per channel, for tests
const keep = (arr, xs) => { for (const v of xs) arr.push(v); if (arr.length > 16000) arr.splice(0, arr.length - 16000); };

class Player {
  constructor(channels) {
    this.ctx = new AudioContext({ latencyHint: "interactive" });
    this.channels = channels;
    this.split = this.ctx.createChannelSplitter(2);
    this.merge = this.ctx.createChannelMerger(2);
    this.gl = this.ctx.createGain();
    this.gr = this.ctx.createGain();
    this.al = this.ctx.createAnalyser();
    this.ar = this.ctx.createAnalyser();
    this.al.fftSize = this.ar.fftSize = 8192;
    this.input = this.ctx.createGain();
    this.input.channelCountMode = "explicit";
    this.input.channelCount = 2;
    this.input.connect(this.split);
    this.split.connect(this.gl, 0); this.split.connect(this.gr, 1);
    this.split.connect(this.al, 0); this.split.connect(this.ar, 1);
    this.gl.connect(this.merge, 0, 0); this.gr.connect(this.merge, 0, 1);
    this.merge.connect(this.ctx.destination);
    this.next = 0;
    window.vsAnalysers = { L: this.al, R: this.ar, rate: this.ctx.sampleRate };
  }
  balance(b) { this.gl.gain.value = Math.min(1, 1 - b); this.gr.gain.value = Math.min(1, 1 + b); }
  // play schedules n samples per channel (arrays of Float32Array) and
  // returns the wall-clock ms at which they start.
  play(chans, n) {
    const buf = this.ctx.createBuffer(2, n, 8000);
    buf.copyToChannel(chans[0], 0);
    buf.copyToChannel(chans[chans.length > 1 ? 1 : 0], 1);
    const src = this.ctx.createBufferSource();
    src.buffer = buf;
    src.connect(this.input);
    const now = this.ctx.currentTime;
    if (this.next < now + 0.02) this.next = now + 0.06; // underrun: restart with a 60 ms cushion
    if (this.next > now + 0.5) this.next = now + 0.06;  // drifted too far behind: catch up
    src.start(this.next);
    const startWall = performance.timeOrigin + performance.now() + (this.next - now) * 1000 + ((this.ctx.outputLatency || this.ctx.baseLatency || 0) * 1000);
    this.next += n / 8000;
    return startWall;
  }
  level(an) {
    const a = new Float32Array(an.fftSize);
    an.getFloatTimeDomainData(a);
    let s = 0;
    for (const v of a) s += v * v;
    return Math.sqrt(s / a.length);
  }
  close() { this.ctx.close(); }
}

// vsPeakHz returns the strongest frequency an analyser sees (for tests).
window.vsPeakHz = (ch) => {
  const an = window.vsAnalysers && window.vsAnalysers[ch];
  if (!an) return 0;
  const d = new Float32Array(an.frequencyBinCount);
  an.getFloatFrequencyData(d);
  let best = 0;
  for (let i = 1; i < d.length; i++) if (d[i] > d[best]) best = i;
  return best * window.vsAnalysers.rate / an.fftSize;
};
// vsGoertzelHz scans 100–3900 Hz in 10 Hz steps over the captured PCM of
// a channel and returns the strongest frequency.
window.vsGoertzelHz = (ch) => {
  const x = window.vsCapture[ch].slice(-4000);
  if (x.length < 800) return 0;
  let best = 0, bestP = -1;
  for (let f = 100; f < 3900; f += 10) {
    const w = 2 * Math.cos(2 * Math.PI * f / 8000);
    let s1 = 0, s2 = 0;
    for (const v of x) { const s0 = v + w * s1 - s2; s2 = s1; s1 = s0; }
    const p = s1 * s1 + s2 * s2 - w * s1 * s2;
    if (p > bestP) { bestP = p; best = f; }
  }
  return best;
};

let listenCtl = null, player = null, meterTimer = null;
function startMeters(ids) {
  stopMeters();
  meterTimer = setInterval(() => {
    if (!player) return;
    const lv = [player.level(player.al), player.level(player.ar)];
    ids.forEach((id, i) => { const e = $(id); if (e) e.style.width = Math.min(100, lv[i] * 140) + "%"; });
  }, 100);
}
function stopMeters() {
  clearInterval(meterTimer);
  for (const id of ["#meter-l", "#meter-r", "#meter-m"]) $(id).style.width = "0";
}

async function startListen(ref) {
  stopListen();
  const status = $("#listen-status");
  status.textContent = "connecting…";
  player = new Player(2);
  await player.ctx.resume();
  player.balance(parseFloat($("#balance").value));
  startMeters(["#meter-l", "#meter-r"]);
  $("#listen-btn").disabled = true;
  $("#stop-btn").disabled = false;
  listenCtl = new AbortController();
  const FRAME = 8 + 160 * 4;
  let r;
  try {
    r = await fetch("/api/listen?ref=" + encodeURIComponent(ref), { signal: listenCtl.signal, cache: "no-store" });
    if (!r.ok) throw new Error((await r.json()).error || r.statusText);
  } catch (e) {
    if (e.name !== "AbortError") status.textContent = "cannot listen: " + e.message;
    stopListen(true);
    return;
  }
  status.textContent = "listening";
  const reader = r.body.getReader();
  let pend = new Uint8Array(0);
  // The stream is a sequence of chunks: u32 frame count, i64 send time
  // (Unix ns), then that many frames of FRAME bytes (i64 capture time of
  // the newest RTP packet, then 160 interleaved caller/called s16le pairs).
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const b = new Uint8Array(pend.length + value.length);
      b.set(pend); b.set(value, pend.length);
      pend = b;
      while (pend.length >= 12) {
        const dv = new DataView(pend.buffer, pend.byteOffset, pend.byteLength);
        const nf = dv.getUint32(0, true), size = 12 + nf * FRAME;
        if (pend.length < size) break;
        const n = nf * 160;
        const L = new Float32Array(n), R = new Float32Array(n);
        let lastCap = 0;
        for (let k = 0; k < nf; k++) {
          const fo = 12 + k * FRAME;
          lastCap = Number(dv.getBigUint64(fo, true) / 1000n) / 1000;
          for (let i = 0; i < 160; i++) {
            L[k * 160 + i] = dv.getInt16(fo + 8 + 4 * i, true) / 32768;
            R[k * 160 + i] = dv.getInt16(fo + 10 + 4 * i, true) / 32768;
          }
        }
        pend = pend.slice(size);
        if (!n) continue;
        keep(window.vsCapture.L, L); keep(window.vsCapture.R, R);
        const startWall = player.play([L, R], n);
        const lat = startWall + (nf - 1) * 20 - lastCap; // when the newest frame starts playing
        if (lastCap > 0 && lat > -1000 && lat < 60000) {
          const v = window.vsLatency;
          v.n++; v.sum += lat; v.max = Math.max(v.max, lat); v.samples.push(lat);
          if (v.samples.length > 500) v.samples.shift();
          status.textContent = "listening · latency " + Math.round(lat) + " ms";
        }
      }
    }
    status.textContent = "call ended";
  } catch (e) {
    if (e.name !== "AbortError") status.textContent = "stream error: " + e.message;
  }
  stopListen(true);
}
function stopListen(keepStatus) {
  if (listenCtl) listenCtl.abort();
  listenCtl = null;
  if (player) player.close();
  player = null;
  stopMeters();
  $("#listen-btn").disabled = false;
  $("#stop-btn").disabled = true;
  if (!keepStatus) $("#listen-status").textContent = "";
}

// ---------------------------------------------------------------- player page

// The page lists the calls in progress to pick from; a reference typed by
// hand (another sensor, a GUI link) stays possible under "manual".
function renderPlayerCalls() {
  const table = $("#player-calls");
  table.querySelector("tbody").replaceChildren(...calls.map((c) => {
    const ref = c.callreference;
    return labelCells(table, el("tr", { "data-ref": ref, class: ref === chunkRef && chunkTimer !== null ? "playing" : "" },
      el("td", {}, el("strong", {}, c.caller || DASH), c.callername ? el("span", { class: "muted" }, " " + c.callername) : null),
      el("td", {}, c.called || DASH),
      el("td", {}, stateBadge(callState(c))),
      el("td", {}, fmtDateTime(c.calldate)),
      el("td", { class: "num" }, fmtDur(c.duration)),
      el("td", { class: "num wide" }, el("button", { class: "small primary pick", onclick: () => chunkPlay(ref, "", (c.caller || "?") + " → " + (c.called || "?")) }, "▶ Play"))));
  }));
  $("#player-empty").style.display = calls.length ? "none" : "block";
}

let chunkTimer = null, chunkID = null, chunkRef = null;
async function chunkPlay(ref, sensor, label) {
  chunkStop(true);
  const st = $("#player-status");
  st.textContent = "connecting…";
  chunkID = "p" + Math.random().toString(36).slice(2, 12);
  chunkRef = ref;
  const what = label || ref;
  const q = (op) => "/api/chunk/" + op + "?callref=" + encodeURIComponent(ref) + "&sensor_id=" + encodeURIComponent(sensor) + "&id=" + chunkID;
  const reply = await (await fetch(q("listen"))).text();
  if (reply !== "success" && reply !== "call already listening") {
    st.textContent = reply;
    return;
  }
  player = new Player(1);
  await player.ctx.resume();
  startMeters(["#meter-m"]);
  $("#player-play").disabled = true;
  $("#player-stop").disabled = false;
  st.textContent = "playing " + what;
  let bytes = 0;
  const tick = async () => {
    const r = await fetch(q("read"));
    const ct = r.headers.get("Content-Type") || "";
    if (ct.startsWith("application/octet-stream")) {
      const b = new Uint8Array(await r.arrayBuffer());
      const dv = new DataView(b.buffer);
      const n = b.length / 2, m = new Float32Array(n);
      for (let i = 0; i < n; i++) m[i] = dv.getInt16(2 * i, true) / 32768;
      keep(window.vsCapture.M, m);
      if (player) player.play([m], n);
      bytes += b.length;
      st.textContent = "playing " + what + " · " + (bytes / 16000).toFixed(1) + " s received";
    } else {
      const t = await r.text();
      if (t.startsWith("error:")) { st.textContent = t; chunkStop(true); return; }
    }
    if (chunkTimer !== null) chunkTimer = setTimeout(tick, 200);
  };
  chunkTimer = setTimeout(tick, 0);
  renderPlayerCalls();
}
function chunkStop(keepStatus) {
  if (chunkTimer !== null) clearTimeout(chunkTimer);
  chunkTimer = null;
  if (chunkID) fetch("/api/chunk/stop?callref=" + encodeURIComponent(chunkRef) + "&id=" + chunkID);
  chunkID = null;
  if (player) player.close();
  player = null;
  stopMeters();
  $("#player-play").disabled = false;
  $("#player-stop").disabled = true;
  if (!keepStatus) $("#player-status").textContent = "stopped";
  document.querySelectorAll("#player-calls tr.playing").forEach((tr) => tr.classList.remove("playing"));
}

// ---------------------------------------------------------------- history

// The history's search lives in the address: #/history?number=10%25&offset=50,
// so that a search can be bookmarked and the back button returns to it.
const HIST_FIELDS = ["number", "caller", "called", "ip", "callid", "from", "to", "code", "state", "ending", "mos_below", "loss_above"];
const STATE_BADGE = { answered: "good", busy: "warn", noanswer: "warn", cancelled: "", failed: "bad" };
const ENDING_TEXT = { normal: "", rtp_timeout: "RTP timeout", setup_timeout: "setup timeout", absolute_timeout: "absolute timeout", shutdown: "open at stop" };
// endingText is why the record was written, when it says more than the
// state: a call closed at a stop after its BYE ended normally.
const endingText = (c) => (c.ending === "shutdown" && c.whohanged ? "" : ENDING_TEXT[c.ending] || "");
let histQuery = new URLSearchParams();

// toLocalInput turns an ISO time into a datetime-local value, and back.
function toLocalInput(iso) {
  const d = toDate(iso);
  if (!d || isNaN(d)) return "";
  return d.getFullYear() + "-" + pad2(d.getMonth() + 1) + "-" + pad2(d.getDate()) + "T" + pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + ":" + pad2(d.getSeconds());
}
function fromLocalInput(v) {
  const d = new Date(v);
  return isNaN(d) ? "" : d.toISOString().replace(/\.000Z$/, "Z");
}

function histFormFill(q) {
  const f = $("#hist-form");
  for (const n of HIST_FIELDS) {
    const v = q.get(n) || "";
    f.elements[n].value = n === "from" || n === "to" ? toLocalInput(v) : v;
  }
  $("#hist-limit").value = q.get("limit") || "50";
  const sort = (q.get("sort") || "calldate") + ":" + (q.get("dir") || "desc");
  if (![...$("#hist-sort").options].some((o) => o.value === sort)) $("#hist-sort").append(el("option", { value: sort }, sort.replace(":", " ")));
  $("#hist-sort").value = sort;
}
function histFormQuery() {
  const f = $("#hist-form"), q = new URLSearchParams();
  for (const n of HIST_FIELDS) {
    let v = f.elements[n].value.trim();
    if (n === "from" || n === "to") v = v ? fromLocalInput(v) : "";
    if (v) q.set(n, v);
  }
  const keep = (k) => histQuery.get(k) && q.set(k, histQuery.get(k));
  keep("sort"); keep("dir");
  if ($("#hist-limit").value !== "50") q.set("limit", $("#hist-limit").value);
  return q;
}
const goHistory = (q) => (location.hash = "#/history" + (q.toString() ? "?" + q : ""));

// reason is why a stored call ended, in words.
function reason(c) {
  const parts = [];
  if (c.lastSIPresponseNum) parts.push(c.lastSIPresponseNum + (c.lastSIPresponse ? " " + c.lastSIPresponse : ""));
  if (c.whohanged) parts.push("BYE from the " + c.whohanged);
  if (endingText(c)) parts.push(endingText(c));
  return parts.join(", ");
}
const mosOf = (v) => (v == null ? null : v);
// filesCell says which recordings of a stored call the spool still holds
// (cdr_search's files): pcap and audio badges, "no files" once the cleaner
// removed them (or when the call was not recorded), a dash without a spool.
function filesCell(f) {
  const td = el("td", { class: "files" });
  if (!f) {
    td.append(el("span", { class: "q none", title: "no spool" }, DASH));
    return td;
  }
  const pcaps = [f.sip && "SIP", f.rtp && "RTP"].filter(Boolean);
  if (pcaps.length) td.append(el("span", { class: "badge info", "data-file": "pcap", title: pcaps.join(" and ") + " pcap in the spool" }, "pcap"));
  if (f.audio) td.append(el("span", { class: "badge info", "data-file": "audio", title: "audio recording in the spool" }, "audio"));
  if (!pcaps.length && !f.audio) td.append(el("span", { class: "badge", "data-file": "none", title: "not in the spool: removed by the cleaner, or never recorded" }, "no files"));
  return td;
}

async function loadHistory() {
  const q = new URLSearchParams(histQuery);
  let res;
  try {
    res = await api("/api/cdr?" + q);
  } catch (e) {
    $("#hist-table tbody").replaceChildren();
    $("#hist-empty").style.display = "block";
    $("#hist-empty").textContent = "Search failed: " + e.message;
    $("#hist-count").textContent = "0";
    $("#hist-range").textContent = "";
    return;
  }
  if (view !== "history") return;
  const table = $("#hist-table");
  table.querySelectorAll("th[data-sort]").forEach((th) => {
    th.classList.toggle("sorted", th.dataset.sort === res.sort);
    th.classList.toggle("asc", th.dataset.sort === res.sort && res.dir === "asc");
  });
  table.querySelector("tbody").replaceChildren(...res.calls.map((c) => {
    const href = "#/cdr/" + encodeURIComponent(c.callid) + "?id=" + c.id;
    return labelCells(table, el("tr", { class: "click", "data-callid": c.callid, "data-id": c.id, onclick: () => (location.hash = href) },
      el("td", {}, el("a", { href, onclick: (e) => e.stopPropagation() }, fmtDateTime(c.calldate))),
      el("td", {}, el("strong", {}, c.caller || DASH), c.callername ? el("span", { class: "muted" }, " " + c.callername) : null),
      el("td", {}, c.called || DASH),
      el("td", { title: reason(c) }, el("span", { class: "badge state " + (STATE_BADGE[c.state] ?? "") }, c.state || "?"),
        endingText(c) ? el("span", { class: "badge warn" }, endingText(c)) : null),
      el("td", { class: "num" }, fmtDur(c.duration)),
      el("td", { class: "num", title: c.lastSIPresponse || "" }, c.lastSIPresponseNum || DASH),
      el("td", { class: "num" }, qspan("mos", mosOf(c.mos), "no MOS (no RTP, or no 10 s interval)")),
      el("td", { class: "num" }, c.mos == null && !c.loss_pct ? el("span", { class: "q none" }, DASH) : qspan("loss", c.loss_pct)),
      el("td", { class: "num" }, c.mos == null && !c.jitter_ms ? el("span", { class: "q none" }, DASH) : qspan("jitter", c.jitter_ms)),
      filesCell(c.files)));
  }));
  const from = res.calls.length ? res.offset + 1 : 0, to = res.offset + res.calls.length;
  $("#hist-count").textContent = res.total + (res.total_capped ? "+" : "");
  $("#hist-range").textContent = res.calls.length ? from + "–" + to + " of " + res.total + (res.total_capped ? "+" : "") : "";
  $("#hist-note").textContent = res.total ? "· sorted by " + res.sort + " " + (res.dir === "asc" ? "↑" : "↓") : "";
  $("#hist-empty").style.display = res.calls.length ? "none" : "block";
  $("#hist-empty").textContent = res.total && !res.calls.length ? "No more calls: go back a page." : "No call matches.";
  $("#hist-prev").disabled = res.offset <= 0;
  $("#hist-next").disabled = to >= res.total;
  liveNow();
}

// ---------------------------------------------------------------- a stored call

let cdrKey = null, cdrPending = false, cdrPlayer = null, cdrMeterTimer = null;
async function loadCDR(callid, ref, id) {
  const key = callid + "|" + ref + "|" + id;
  const q = new URLSearchParams();
  if (callid) q.set("callid", callid);
  if (ref) q.set("ref", ref);
  if (id) q.set("id", id); // a row of the store: a Call-ID may have several
  let d;
  try {
    d = await api("/api/cdr/detail?" + q);
  } catch (e) {
    if (key !== cdrKey) return;
    $("#cdr-title").textContent = "Call " + (callid || ref || id);
    $("#cdr-state").textContent = "unknown";
    $("#cdr-note").textContent = /no such entry/.test(e.message) ? "· not in the history: no CDR, no SIP in memory, no recording" : "· " + e.message;
    clearInterval(pollTimer);
    return;
  }
  if (key !== cdrKey) return;
  cdrPending = d.pending;
  if (!d.pending) clearInterval(pollTimer); // a stored call no longer changes
  renderCDR(d, ref);
  liveNow();
}

function renderCDR(d, ref) {
  const c = d.cdr;
  const first = d.ladder && d.ladder.messages.length ? d.ladder.messages[0] : null;
  $("#cdr-title").textContent = c ? (c.caller || "?") + " → " + (c.called || "?") : "Call " + d.callid;
  $("#cdr-state").textContent = "ended";
  $("#cdr-state").className = "badge state " + (c ? STATE_BADGE[c.state] ?? "" : "info");
  $("#cdr-note").textContent = d.pending ? "· the CDR is being stored…" : "";
  const kv = c ? [
    ["State", "ended: " + (c.state || "?") + (reason(c) ? " (" + reason(c) + ")" : "")], ["Call-ID", c.callid],
    ["Started", fmtDateTimeTZ(c.calldate)], ["Ended", c.callend ? fmtDateTimeTZ(c.callend) : DASH],
    ["Duration", fmtDur(c.duration)], ["Connected", c.answered ? fmtDur(c.connect_duration) : DASH],
    ["Caller", (c.callername ? c.callername + " " : "") + (c.caller || "") + (c.caller_domain ? "@" + c.caller_domain : "")],
    ["Called", (c.called || "") + (c.called_domain ? "@" + c.called_domain : "")],
    ["Caller SIP", c.sipcallerip || DASH], ["Called SIP", c.sipcalledip || DASH],
    ["Caller agent", c.caller_agent || DASH], ["Called agent", c.called_agent || DASH],
    ["Last SIP response", c.lastSIPresponseNum ? c.lastSIPresponseNum + " " + (c.lastSIPresponse || "") : DASH], ["Ending", c.ending ? endingText(c) || (c.ending === "shutdown" ? "closed at a stop, after its BYE" : c.ending) : DASH],
    ["MOS (worse side)", c.mos != null ? c.mos.toFixed(1) : DASH], ["Loss (worse side)", c.loss_pct.toFixed(2) + " %"],
    ["Jitter", c.jitter_ms.toFixed(1) + " ms"], ["CDR id", c.id + (c.id_sensor != null ? " (sensor " + c.id_sensor + ")" : "")],
  ] : [["State", "ended" + (ref ? " (reference " + ref + ")" : "")], ["Call-ID", d.callid], ["Started", first ? fmtDateTimeTZ(first.time) : DASH]];
  $("#cdr-summary").replaceChildren(...kv.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { title: String(v ?? "") }, v ?? DASH)]));

  // Recordings: downloads through getfile, the audio in a player.
  const LABEL = { SIP: "SIP pcap", RTP: "RTP pcap", AUDIO: "audio" };
  const size = (n) => (n >= 1 << 20 ? (n / (1 << 20)).toFixed(1) + " MB" : n >= 1024 ? (n / 1024).toFixed(0) + " kB" : n + " B");
  const fileURL = (f, dl) => "/api/file?name=" + encodeURIComponent(f.name) + (dl ? "&download=1" : "");
  $("#cdr-files").replaceChildren(...(d.files.length ? d.files.map((f) =>
    el("a", { class: "button" + (f.type === "SIP" ? " primary" : ""), href: fileURL(f, true), "data-type": f.type, download: f.name.split("/").pop() },
      "⬇ " + LABEL[f.type] + " (" + size(f.size) + ")")) : [el("span", { class: "muted" }, "No recording in the spool")]));
  const audio = d.files.find((f) => f.type === "AUDIO");
  $("#cdr-audio-card").hidden = !audio;
  if (audio && $("#cdr-audio").dataset.name !== audio.name) {
    $("#cdr-audio").dataset.name = audio.name;
    $("#cdr-audio").src = fileURL(audio, false);
  }

  const table = $("#cdr-streams");
  table.querySelector("tbody").replaceChildren(...d.streams.map((s) => labelCells(table, el("tr", { "data-side": s.side, "data-ssrc": s.ssrc },
    el("td", { class: "dir full" }, el("span", {}, el("span", { class: "sw " + SIDE_CLASS[s.side] }), " " + SIDE_TEXT[s.side])),
    el("td", {}, s.codec || codecName(s.payload_type)),
    el("td", { class: "mono full" }, s.src || DASH), el("td", { class: "mono full" }, s.dst || DASH),
    el("td", { class: "mono" }, "0x" + (s.ssrc >>> 0).toString(16)),
    el("td", { class: "num" }, s.received), el("td", { class: "num" }, s.lost),
    el("td", { class: "num" }, qspan("loss", s.loss_pct)),
    el("td", { class: "num" }, qspan("jitter", s.jitter_avg_ms)), el("td", { class: "num" }, qspan("jitter", s.jitter_max_ms)),
    el("td", { class: "num stream-mos" }, s.mos ? qspan("mos", s.mos.f1, "", "F1 " + s.mos.f1.toFixed(1) + ", F2 " + s.mos.f2.toFixed(1) + ", adaptive " + s.mos.adapt.toFixed(1)) : qspan("mos", null, "no 10 s interval closed")),
    el("td", { class: "num" }, s.mos_min ? qspan("mos", s.mos_min.f1) : qspan("mos", null, "no 10 s interval closed"))))));
  $("#cdr-streams-empty").style.display = d.streams.length ? "none" : "block";
  $("#cdr-streams-empty").textContent = c ? "No RTP." : "Final quality comes with the CDR.";

  if (d.ladder) {
    drawLadder(d.ladder, CDR_LADDER);
    redraw = () => drawLadder(d.ladder, CDR_LADDER);
  } else {
    $("#cdr-ladder").replaceChildren(el("p", { class: "muted" }, "No SIP messages: no longer in memory, and no SIP pcap in the spool (savesip)" +
      (d.ladder_error ? "; " + d.ladder_error : "") + "."));
    $("#cdr-ladder-note").textContent = "";
  }
}

// The recording plays through Web Audio with the live page's balance:
// left is the caller, right the called party.
function cdrAudioPlay() {
  if (cdrPlayer) return cdrPlayer.ctx.resume();
  cdrPlayer = new Player(2);
  cdrPlayer.ctx.createMediaElementSource($("#cdr-audio")).connect(cdrPlayer.input);
  cdrPlayer.balance(parseFloat($("#cdr-balance").value));
  clearInterval(cdrMeterTimer);
  cdrMeterTimer = setInterval(() => {
    if (!cdrPlayer) return;
    $("#cdr-meter-l").style.width = Math.min(100, cdrPlayer.level(cdrPlayer.al) * 140) + "%";
    $("#cdr-meter-r").style.width = Math.min(100, cdrPlayer.level(cdrPlayer.ar) * 140) + "%";
  }, 100);
  return cdrPlayer.ctx.resume();
}
function cdrAudioStop() {
  const a = $("#cdr-audio");
  a.pause();
  if (!cdrPlayer && !a.getAttribute("src")) return;
  clearInterval(cdrMeterTimer);
  if (cdrPlayer) cdrPlayer.close();
  cdrPlayer = null;
  // A media element feeds one context for good: a fresh element for the next.
  const fresh = a.cloneNode();
  fresh.removeAttribute("src");
  delete fresh.dataset.name;
  a.replaceWith(fresh);
  fresh.addEventListener("play", cdrAudioPlay);
  $("#cdr-meter-l").style.width = $("#cdr-meter-r").style.width = "0";
}

// ---------------------------------------------------------------- router

let pollTimer = null, view = "calls";
function route() {
  const [path, query = ""] = (location.hash || "#/calls").slice(2).split("?");
  const parts = path.split("/");
  const params = new URLSearchParams(query);
  view = parts[0] || "calls";
  if (!$("#view-" + view)) view = "calls";
  clearInterval(pollTimer);
  redraw = null;
  if (view !== "call") stopListen();
  if (view !== "player") chunkStop(true);
  if (view !== "cdr") { cdrAudioStop(); cdrKey = null; }
  document.querySelectorAll(".view").forEach((v) => v.classList.remove("shown"));
  const navView = view === "call" ? "calls" : view === "cdr" ? "history" : view;
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.view === navView));
  $("#view-" + view).classList.add("shown");
  labelZones();
  if (view === "calls") { renderCalls(); pollCalls(); pollTimer = setInterval(pollCalls, 1000); }
  if (view === "registrations") { pollRegs(); pollTimer = setInterval(pollRegs, 2000); }
  if (view === "dashboard") { pollHistory(); pollTimer = setInterval(pollHistory, 5000); }
  if (view === "player") { renderPlayerCalls(); pollCalls(); pollTimer = setInterval(pollCalls, 2000); }
  if (view === "history") {
    histQuery = params;
    histFormFill(params);
    loadHistory();
  }
  if (view === "cdr") {
    const callid = parts.length > 1 ? decodeURIComponent(parts.slice(1).join("/")) : "";
    const ref = params.get("ref") || "", id = params.get("id") || "";
    const key = callid + "|" + ref + "|" + id;
    if (key !== cdrKey) {
      cdrAudioStop();
      $("#cdr-ladder-raw").hidden = true;
      $("#cdr-title").textContent = "Call " + (callid || ref || id);
      $("#cdr-state").textContent = "";
      for (const id of ["#cdr-summary", "#cdr-streams tbody", "#cdr-ladder", "#cdr-files"]) $(id).replaceChildren();
    }
    cdrKey = key;
    loadCDR(callid, ref, id);
    // Until the CDR is stored (the call ended moments ago), look again.
    pollTimer = setInterval(() => cdrPending && loadCDR(callid, ref, id), 2000);
  }
  if (view === "call") {
    const ref = parts[1];
    if (ref !== currentRef) {
      stopListen();
      $("#ladder-raw").hidden = true;
      lastQuality = lastCall = null;
      $("#call-title").textContent = "Call " + ref;
      for (const id of ["#call-summary", "#call-streams tbody", "#call-legs tbody", "#ladder", "#q-mos", "#q-loss", "#q-jitter"]) $(id).replaceChildren();
    }
    currentRef = ref;
    loadCall(ref);
    pollTimer = setInterval(() => loadCall(ref), 2000);
    if (parts[2] === "listen") { window.history.replaceState(null, "", "#/call/" + ref); startListen(ref); }
  }
}

$("#calls-search").addEventListener("input", renderCalls);
$("#calls-filter").addEventListener("change", renderCalls);
$("#regs-search").addEventListener("input", renderRegs);
$("#listen-btn").addEventListener("click", () => currentRef && startListen(currentRef));
$("#stop-btn").addEventListener("click", () => { stopListen(); $("#listen-status").textContent = "stopped"; });
$("#balance").addEventListener("input", (e) => player && player.balance(parseFloat(e.target.value)));
$("#player-form").addEventListener("submit", (e) => { e.preventDefault(); chunkPlay($("#player-ref").value.trim(), $("#player-sensor").value.trim()); });
$("#player-stop").addEventListener("click", () => chunkStop());
$("#hist-form").addEventListener("submit", (e) => { e.preventDefault(); goHistory(histFormQuery()); });
$("#hist-reset").addEventListener("click", () => { histQuery = new URLSearchParams(); goHistory(new URLSearchParams()); histFormFill(histQuery); });
$("#hist-limit").addEventListener("change", () => goHistory(histFormQuery()));
$("#hist-sort").addEventListener("change", (e) => {
  const [sort, dir] = e.target.value.split(":"), q = histFormQuery();
  q.set("sort", sort);
  q.set("dir", dir);
  goHistory(q);
});
const histPage = (dir) => {
  const q = new URLSearchParams(histQuery), limit = parseInt(q.get("limit") || "50", 10);
  const off = Math.max(0, parseInt(q.get("offset") || "0", 10) + dir * limit);
  if (off) q.set("offset", off); else q.delete("offset");
  goHistory(q);
};
$("#hist-prev").addEventListener("click", () => histPage(-1));
$("#hist-next").addEventListener("click", () => histPage(1));
document.querySelectorAll("#hist-table th[data-sort]").forEach((th) => th.addEventListener("click", () => {
  const q = new URLSearchParams(histQuery), cur = q.get("sort") || "calldate", dir = q.get("dir") || "desc";
  q.set("sort", th.dataset.sort);
  q.set("dir", cur === th.dataset.sort && dir === "desc" ? "asc" : "desc");
  q.delete("offset");
  goHistory(q);
}));
$("#cdr-audio").addEventListener("play", cdrAudioPlay);
$("#cdr-balance").addEventListener("input", (e) => cdrPlayer && cdrPlayer.balance(parseFloat(e.target.value)));
window.addEventListener("hashchange", route);
route();
