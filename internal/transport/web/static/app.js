// voipsensor web console. No framework, no external assets: everything is
// served by the sensor. Data comes from the sensor's commands through the
// small JSON API in transport/web (listcalls, active_call_info, sip_ladder,
// listregisters, listen/readaudio).
"use strict";

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
};
const CODECS = { 0: "PCMU", 3: "GSM", 4: "G723", 8: "PCMA", 9: "G722", 18: "G729", 101: "DTMF" };
const codecName = (pt) => (pt == null || pt < 0 ? "–" : CODECS[pt] || "PT " + pt);
const fmtDur = (s) => {
  if (s == null || s < 0 || !isFinite(s)) return "–";
  s = Math.floor(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), x = s % 60;
  return (h ? h + ":" + String(m).padStart(2, "0") : m) + ":" + String(x).padStart(2, "0");
};
const fmtTime = (t) => (t ? new Date(t).toLocaleTimeString([], { hour12: false }) : "–");

// Quality classes: MOS (1–5), loss (%), jitter (ms).
const qual = {
  mos: (v) => (v == null || v <= 0 ? "none" : v >= 4 ? "good" : v >= 3.6 ? "warn" : "bad"),
  loss: (v) => (v == null ? "none" : v <= 1 ? "good" : v <= 3 ? "warn" : "bad"),
  jitter: (v) => (v == null ? "none" : v <= 20 ? "good" : v <= 50 ? "warn" : "bad"),
};
const qcell = (kind, v, fmt) => el("td", { class: "num" }, el("span", { class: "q " + qual[kind](v) }, v == null || (kind === "mos" && v <= 0) ? "–" : fmt(v)));

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

// ---------------------------------------------------------------- calls

let calls = [];
function callBad(c) {
  return qual.mos(c.src_mosf1) === "bad" || qual.mos(c.dst_mosf1) === "bad" || qual.loss(c.src_loss) === "bad" ||
    qual.loss(c.dst_loss) === "bad" || qual.jitter(c.src_jitter) === "bad" || qual.jitter(c.dst_jitter) === "bad";
}
function renderCalls() {
  const q = $("#calls-search").value.trim().toLowerCase();
  const f = $("#calls-filter").value;
  const rows = calls.filter((c) => {
    if (f === "answered" && !(c.connect_duration > 0)) return false;
    if (f === "ringing" && c.connect_duration > 0) return false;
    if (f === "bad" && !callBad(c)) return false;
    if (!q) return true;
    return [c.caller, c.called, c.callername, c.callid, c.callerip, c.calledip, c.callreference, c.calleragent]
      .some((x) => x != null && String(x).toLowerCase().includes(q));
  });
  const tb = $("#calls-table tbody");
  tb.replaceChildren(...rows.map((c) => {
    const ref = c.callreference;
    const tr = el("tr", { class: "click", "data-ref": ref, onclick: () => (location.hash = "#/call/" + ref) },
      el("td", {}, el("strong", {}, c.caller || "–"), c.callername ? el("span", { class: "muted" }, " " + c.callername) : null),
      el("td", {}, c.called || "–", c.connect_duration > 0 ? el("span", { class: "badge ans" }, "answered") : el("span", { class: "badge" }, "setup")),
      el("td", {}, fmtTime(c.calldate)),
      el("td", { class: "num" }, fmtDur(c.duration)),
      el("td", {}, codecName(c.callercodec) + (c.calledcodec >= 0 && c.calledcodec !== c.callercodec ? " / " + codecName(c.calledcodec) : "")),
      qcell("mos", c.src_mosf1, (v) => v.toFixed(2)), qcell("mos", c.dst_mosf1, (v) => v.toFixed(2)),
      qcell("loss", c.src_loss, (v) => v.toFixed(1) + " %"), qcell("loss", c.dst_loss, (v) => v.toFixed(1) + " %"),
      qcell("jitter", c.src_jitter, (v) => v.toFixed(1) + " ms"), qcell("jitter", c.dst_jitter, (v) => v.toFixed(1) + " ms"),
      el("td", { class: "num" }, el("button", { class: "small", onclick: (e) => { e.stopPropagation(); location.hash = "#/call/" + ref + "/listen"; } }, "▶ Listen")));
    return tr;
  }));
  $("#calls-count").textContent = calls.length;
  $("#calls-empty").style.display = rows.length ? "none" : "block";
  $("#calls-empty").textContent = calls.length ? "No call matches the filter." : "No calls in progress.";
}
async function pollCalls() {
  try {
    const r = await api("/api/calls");
    calls = r.rows;
    renderCalls();
    setLive(true, "live · " + new Date().toLocaleTimeString([], { hour12: false }));
  } catch (e) {
    setLive(false, "offline: " + e.message);
  }
}

// ---------------------------------------------------------------- registrations

let regs = [];
function renderRegs() {
  const q = $("#regs-search").value.trim().toLowerCase();
  const rows = regs.filter((r) => !q || Object.values(r).some((x) => x != null && String(x).toLowerCase().includes(q)));
  const stateClass = (s) => (/ok|registered/i.test(s) ? "good" : /fail|expired|unknown/i.test(s) ? "bad" : "warn");
  $("#regs-table tbody").replaceChildren(...rows.map((r) => el("tr", {},
    el("td", {}, el("strong", {}, r.digestusername || r.from_num || r.to_num || "–")),
    el("td", {}, r.from_domain || r.to_domain || "–"),
    el("td", {}, (r.contact_num || "") + (r.contact_domain ? "@" + r.contact_domain : "") || "–"),
    el("td", { class: "mono" }, r.sipcallerip || "–"), el("td", { class: "mono" }, r.sipcalledip || "–"),
    el("td", {}, el("span", { class: "q " + stateClass(String(r.state)) }, r.state ?? "–")),
    el("td", { class: "num" }, r.expires ?? "–"),
    el("td", {}, r.ua || "–"),
    el("td", {}, fmtTime(r.calldate)))));
  $("#regs-count").textContent = regs.length;
  $("#regs-empty").style.display = rows.length ? "none" : "block";
}
async function pollRegs() {
  try {
    regs = (await api("/api/registrations")).rows;
    renderRegs();
    setLive(true, "live · " + new Date().toLocaleTimeString([], { hour12: false }));
  } catch (e) {
    setLive(false, "offline: " + e.message);
  }
}

// ---------------------------------------------------------------- call details

let currentRef = null;
async function loadCall(ref) {
  let info;
  try {
    info = await api("/api/call?ref=" + encodeURIComponent(ref));
  } catch (e) {
    $("#call-title").textContent = "Call " + ref + " — " + e.message;
    return;
  }
  const c = info.call;
  $("#call-title").textContent = (c.caller || "?") + " → " + (c.called || "?");
  const kv = [
    ["Call reference", c.callreference], ["Call-ID", c.callid], ["Started", c.calldate ? new Date(c.calldate).toLocaleString() : "–"],
    ["Duration", fmtDur(c.duration)], ["Connected", fmtDur(c.connect_duration)], ["Last packet", fmtTime(c.lastpackettime ? c.lastpackettime * 1000 : 0)]  /* unix seconds */,
    ["Caller", (c.callername ? c.callername + " " : "") + (c.caller || "") + "@" + (c.callerdomain || "")],
    ["Called", (c.called || "") + "@" + (c.calleddomain || "")], ["Caller agent", c.calleragent || "–"], ["Called agent", c.calledagent || "–"],
    ["Codec →", codecName(c.callercodec)], ["Codec ←", codecName(c.calledcodec)],
    ["MOS →", c.src_mosf1 > 0 ? c.src_mosf1.toFixed(2) : "–"], ["MOS ←", c.dst_mosf1 > 0 ? c.dst_mosf1.toFixed(2) : "–"],
    ["Loss →", c.src_loss != null ? c.src_loss.toFixed(2) + " %" : "–"], ["Loss ←", c.dst_loss != null ? c.dst_loss.toFixed(2) + " %" : "–"],
  ];
  $("#call-summary").replaceChildren(...kv.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { title: String(v ?? "") }, v ?? "–")]));
  const legs = [[c.callerip, c.calledip]];
  (c.sipproxies ? c.sipproxies.split(",") : []).forEach((p) => legs.push([p, "…"])); // "a,b" (listcalls text)
  $("#call-legs tbody").replaceChildren(...legs.map((l, i) => el("tr", {}, el("td", {}, i + 1), el("td", { class: "mono" }, l[0] ?? "–"), el("td", { class: "mono" }, l[1] ?? "–"))));
  $("#call-streams tbody").replaceChildren(...info.rtp_streams.map((s) => el("tr", {},
    el("td", {}, s.src_ip === c.callerip || s.src_ip === c.rtp_src ? "caller → called" : "called → caller"),
    el("td", { class: "mono" }, s.src_ip + ":" + s.src_port), el("td", { class: "mono" }, s.dst_ip + ":" + s.dst_port),
    el("td", { class: "mono" }, "0x" + (s.ssrc >>> 0).toString(16)), el("td", {}, codecName(s.codec)),
    el("td", { class: "num" }, s.received), el("td", { class: "num" }, s.lost),
    qcell("jitter", s.jitter_avg, (v) => v.toFixed(1) + " ms"), qcell("jitter", s.jitter_max, (v) => v.toFixed(1) + " ms"))));
  try {
    drawLadder(await api("/api/ladder?ref=" + encodeURIComponent(ref)));
  } catch (e) {
    $("#ladder").replaceChildren(el("p", { class: "muted" }, "No SIP messages kept: " + e.message));
  }
}

const SVGNS = "http://www.w3.org/2000/svg";
const svg = (tag, attrs = {}, text) => {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  return e;
};
function drawLadder(l) {
  const msgs = l.messages;
  const nodes = [];
  for (const m of msgs) for (const n of [m.src, m.dst]) if (!nodes.includes(n)) nodes.push(n);
  const colW = 260, left = 90, top = 40, rowH = 30;
  const W = left + colW * Math.max(nodes.length - 1, 1) + 120, H = top + rowH * msgs.length + 20;
  const s = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}` });
  s.append(svg("defs", {}));
  s.firstChild.innerHTML = '<marker id="arr" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#6b7385"/></marker>';
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
    const x1 = x(m.src), x2 = x(m.dst);
    g.append(svg("line", { x1, y1: y, x2: x2 + (x2 > x1 ? -2 : 2), y2: y, "marker-end": "url(#arr)" }));
    let label = isResp ? m.line.slice(8) : m.line.split(" ")[0];
    g.append(svg("text", { x: (x1 + x2) / 2, y: y - 5, "text-anchor": "middle" }, label));
    g.append(svg("text", { x: 8, y: y + 4, class: "t" }, "+" + ((new Date(m.time).getTime() - t0) / 1000).toFixed(3) + " s"));
    g.append(svg("title", {}, m.line + "  (" + m.size + " bytes)"));
    g.addEventListener("click", () => {
      const pre = $("#ladder-raw");
      pre.hidden = false;
      pre.textContent = m.raw || m.line + "\n\n(raw messages are not kept; see LadderRawBytes)";
    });
    s.append(g);
  });
  $("#ladder").replaceChildren(s);
  $("#ladder-note").textContent = msgs.length + " messages" + (l.omitted ? ", " + l.omitted + " omitted" : "") + (l.truncated ? ", older ones no longer kept" : "");
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

// ---------------------------------------------------------------- ChunkPlayer page

let chunkTimer = null, chunkID = null, chunkRef = null;
async function chunkPlay(ref, sensor) {
  chunkStop(true);
  const st = $("#player-status");
  st.textContent = "connecting…";
  chunkID = "p" + Math.random().toString(36).slice(2, 12);
  chunkRef = ref;
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
  st.textContent = "playing " + ref;
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
      st.textContent = "playing " + ref + " · " + (bytes / 16000).toFixed(1) + " s received";
    } else {
      const t = await r.text();
      if (t.startsWith("error:")) { st.textContent = t; chunkStop(true); return; }
    }
    if (chunkTimer !== null) chunkTimer = setTimeout(tick, 200);
  };
  chunkTimer = setTimeout(tick, 0);
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
}

// ---------------------------------------------------------------- router

let pollTimer = null;
function route() {
  const parts = (location.hash || "#/calls").slice(2).split("/");
  const view = parts[0] || "calls";
  clearInterval(pollTimer);
  if (view !== "call") stopListen();
  if (view !== "player") chunkStop(true);
  document.querySelectorAll(".view").forEach((v) => v.classList.remove("shown"));
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.view === view || (view === "call" && a.dataset.view === "calls")));
  $("#view-" + view)?.classList.add("shown");
  if (view === "calls") { pollCalls(); pollTimer = setInterval(pollCalls, 1000); }
  if (view === "registrations") { pollRegs(); pollTimer = setInterval(pollRegs, 2000); }
  if (view === "call") {
    const ref = parts[1];
    if (ref !== currentRef) { stopListen(); $("#ladder-raw").hidden = true; }
    currentRef = ref;
    loadCall(ref);
    pollTimer = setInterval(() => loadCall(ref), 2000);
    if (parts[2] === "listen") { history.replaceState(null, "", "#/call/" + ref); startListen(ref); }
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
window.addEventListener("hashchange", route);
route();
