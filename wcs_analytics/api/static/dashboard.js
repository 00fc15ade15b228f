/* The dashboard page: filters in the URL hash, parallel fetches of /api/kpi/..., auto-refresh. */
"use strict";
(() => {
  const C = {
    answered: "#3fb67a", busy: "#e3a52f", noAnswer: "#7d8b99", failed: "#f2555a", progress: "#4ea1ff",
    blue: "#4ea1ff", violet: "#a57cf2", teal: "#2fc1b4", amber: "#e3a52f", red: "#f2555a", pink: "#e86aa8",
  };
  const FAMILY_COLORS = { connection: C.violet, call: C.blue, stream: C.teal, message: C.amber, data: C.pink };
  const $ = (id) => document.getElementById(id);
  const num = (v) => (v == null ? "–" : v >= 1000 ? `${(v / 1000).toFixed(v >= 10000 ? 0 : 1)}k` : `${Math.round(v * 10) / 10}`);
  const pct = (v) => (v == null ? "–" : `${Math.round(v * 100)}%`);
  const secs = (ms) => {
    if (ms == null) return "–";
    if (ms < 60000) return `${(ms / 1000).toFixed(ms > 0 && ms < 10000 ? 1 : 0)} s`;
    const m = Math.floor(ms / 60000), r = Math.round((ms % 60000) / 1000);
    return r ? `${m}m ${r}s` : `${m} min`;
  };
  const msFmt = (ms) => (ms == null ? "–" : ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`);
  const INT = { integer: true };
  let timer = null, extent = null, last = null, seq = 0;

  function readHash() {
    const q = new URLSearchParams(location.hash.slice(1));
    for (const id of ["range", "app_key", "node", "refresh"]) {
      const v = q.get(id);
      if (v == null) continue;
      const sel = $(id);
      if (![...sel.options].some((o) => o.value === v)) sel.add(new Option(v, v));
      sel.value = v;
    }
  }

  function writeHash() {
    const q = new URLSearchParams();
    for (const id of ["range", "app_key", "node", "refresh"]) q.set(id, $(id).value);
    history.replaceState(null, "", `#${q}`);
  }

  function fillSelect(id, values, allLabel) {
    const sel = $(id), keep = sel.value;
    sel.innerHTML = "";
    sel.add(new Option(allLabel, ""));
    for (const v of values) sel.add(new Option(id === "node" ? v.replace(/^.*@/, "") + ` (${v.slice(0, 6)}…)` : v, v));
    if (keep && !values.includes(keep)) sel.add(new Option(keep, keep));
    sel.value = keep;
  }

  /* The read side may require credentials. A browser that logged in with Basic (its own
     prompt) sends them by itself; a page opened as http://user:pass@host/dashboard has them in
     its URL, which fetch() refuses: take them out and send them as an explicit header. */
  const base = new URL(".", location.href);
  const b64 = (text) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));
  const auth = base.username
    ? { Authorization: `Basic ${b64(`${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`)}` }
    : {};
  base.username = ""; base.password = "";

  async function get(path, params) {
    const url = new URL(`api/kpi/${path}?${params}`, base);
    const res = await fetch(url, { cache: "no-store", credentials: "same-origin", headers: auth });
    const body = await res.json();
    if (!res.ok) throw new Error(body.error || body.detail || `${path}: HTTP ${res.status}`);
    return body;
  }

  function params() {
    const range = $("range").value, q = new URLSearchParams();
    if (range === "all" && extent && extent.first_ms) {
      q.set("from", extent.first_ms); q.set("to", extent.last_ms);
    } else {
      const to = Date.now();
      q.set("from", to - Number(range === "all" ? 3600000 : range)); q.set("to", to);
    }
    if ($("app_key").value) q.set("app_key", $("app_key").value);
    if ($("node").value) q.set("node", $("node").value);
    return q;
  }

  /* Buckets from..to; rows (sparse, by t) -> one array per field, `zero` fills missing counters. */
  function columns(data, fields, zero) {
    const step = data.step_ms, start = Math.floor(data.from_ms / step) * step, times = [];
    for (let t = start; t < data.to_ms; t += step) times.push(t);
    const at = new Map(data.rows.map((r) => [r.t, r]));
    const out = { times, stepMs: step };
    for (const f of fields) out[f] = times.map((t) => (at.has(t) && at.get(t)[f] != null ? at.get(t)[f] : zero ? 0 : null));
    return out;
  }

  function chart(id, cols, series, format, extra) {
    const host = $(`chart-${id}`);
    WcsCharts.legend(host.previousElementSibling, series.filter((s) => s.kind !== "info"));
    WcsCharts.render(host, Object.assign({ times: cols.times, stepMs: cols.stepMs, series, format }, extra || {}));
  }

  function s(label, color, kind, values, fmt) { return { label, color, kind, values, fmt }; }

  function drawAll(d) {
    const calls = columns(d.calls, ["answered", "busy", "no_answer", "failed", "in_progress"], true);
    chart("calls", calls, [
      s("Answered", C.answered, "bar", calls.answered), s("Busy", C.busy, "bar", calls.busy),
      s("No answer", C.noAnswer, "bar", calls.no_answer), s("Failed", C.failed, "bar", calls.failed),
      s("In progress", C.progress, "bar", calls.in_progress)], num, INT);
    const q = columns(d.quality, ["asr", "ner", "acd_ms", "setup_avg_ms", "pdd_avg_ms", "pdd_p95_ms", "attempts"], false);
    chart("ratios", q, [s("ASR", C.answered, "line", q.asr), s("NER", C.blue, "line", q.ner),
      s("Attempts", "#555f6b", "info", q.attempts, num)], pct, { yMax: 1 });
    chart("acd", q, [s("ACD", C.teal, "line", q.acd_ms), s("Setup time", C.violet, "line", q.setup_avg_ms)], secs);
    chart("pdd", q, [s("PDD average", C.blue, "line", q.pdd_avg_ms), s("PDD p95", C.amber, "line", q.pdd_p95_ms)], msFmt);
    const cc = columns(d.concurrency, ["calls", "publishers", "viewers"], false);
    chart("concurrency", cc, [s("Calls", C.blue, "line", cc.calls), s("Publishers", C.teal, "line", cc.publishers),
      s("Viewers", C.violet, "line", cc.viewers)], num, INT);
    const st = columns(d.streams, ["publishers", "viewers", "startup_failures", "publish_minutes", "viewer_minutes"], true);
    chart("streams", st, [s("Publishers", C.teal, "bar", st.publishers), s("Viewers", C.violet, "bar", st.viewers),
      s("Startup failures", C.red, "line", st.startup_failures)], num, INT);
    chart("minutes", st, [s("Publish minutes", C.teal, "line", st.publish_minutes),
      s("Viewer minutes", C.violet, "line", st.viewer_minutes)], num);
    const ka = columns(d.keepalive, ["gaps", "gap_total_s", "gap_max_ms"], true);
    chart("keepalive", ka, [s("Gaps", C.amber, "bar", ka.gaps), s("Total gap time", "#555f6b", "info", ka.gap_total_s.map((v) => v * 1000), secs),
      s("Longest gap", "#555f6b", "info", ka.gap_max_ms, secs)], num, INT);
    const m = columns(d.messages, ["sent", "accepted", "failed", "delivery_rate", "imdn_delivery_rate"], true);
    const other = m.sent.map((v, i) => Math.max(0, v - m.accepted[i] - m.failed[i]));
    chart("messages", m, [s("Accepted", C.answered, "bar", m.accepted), s("Failed", C.failed, "bar", m.failed),
      s("No outcome", C.noAnswer, "bar", other), s("Delivery rate", "#555f6b", "info", m.delivery_rate.map((v, i) => (m.sent[i] ? v : null)), pct),
      s("IMDN delivery rate", "#555f6b", "info", m.imdn_delivery_rate.map((v, i) => (m.sent[i] ? v : null)), pct)], num, INT);
    const families = Object.keys(FAMILY_COLORS), f = columns(d.failed, families, true);
    const markers = d.alerts.rows.map((a) => ({ t: a.t, end: a.end_t, label: `⚑ ${a.family || "alert"}${a.app_key ? " · " + a.app_key : ""}` }));
    chart("failed", f, families.map((k) => s(k, FAMILY_COLORS[k], "bar", f[k])), num, { markers, integer: true });
    tiles(d, { calls, cc, st, m, f });
    tables(d);
  }

  function tile(label, value, note, bad) {
    return `<div class="tile${bad ? " bad" : ""}"><div class="label">${label}</div><div class="value">${value}</div><div class="note">${note}</div></div>`;
  }

  function tiles(d, c) {
    const sum = (a) => a.reduce((x, v) => x + (v || 0), 0), max = (a) => a.reduce((x, v) => Math.max(x, v || 0), 0);
    const sm = d.summary.summary, sent = sum(c.m.sent), failed = sum(["connection", "call", "stream", "message", "data"].map((k) => sum(c.f[k])));
    $("tiles").innerHTML = [
      tile("Call attempts", num(sm.attempts), `${num(sum(c.calls.answered))} answered`),
      tile("ASR", pct(sm.asr), `NER ${pct(sm.ner)}`),
      tile("ACD", secs(sm.acd_ms), `setup ${secs(sm.setup_avg_ms)}`),
      tile("PDD", msFmt(sm.pdd_avg_ms), `p95 ${msFmt(sm.pdd_p95_ms)}`),
      tile("Peak concurrent calls", num(max(c.cc.calls)), `peak viewers ${num(max(c.cc.viewers))}`),
      tile("Streams started", num(sum(c.st.publishers) + sum(c.st.viewers)), `${num(sum(c.st.startup_failures))} startup failures`, sum(c.st.startup_failures) > 0),
      tile("Message delivery", sent ? pct(sum(c.m.accepted) / sent) : "–", `${num(sent)} sent`),
      tile("FAILED statuses", num(failed), `${d.alerts.rows.length} alert${d.alerts.rows.length === 1 ? "" : "s"}`, d.alerts.rows.length > 0),
    ].join("");
  }

  function table(id, head, rows, cells) {
    const t = $(id);
    t.innerHTML = "";
    const tr = t.createTHead().insertRow();
    head.forEach((h) => { const th = document.createElement("th"); th.textContent = h; tr.appendChild(th); });
    const body = t.createTBody();
    if (!rows.length) { const td = body.insertRow().insertCell(); td.colSpan = head.length; td.className = "none"; td.textContent = "Nothing in this range"; return; }
    for (const r of rows) {
      const row = body.insertRow();
      for (const [text, cls, meter] of cells(r)) {
        const td = row.insertCell();
        td.className = cls || "";
        td.title = String(text);
        if (meter != null) { const bar = document.createElement("span"); bar.className = "meter"; bar.style.width = `${Math.round(meter * 60)}px`; td.appendChild(bar); }
        td.appendChild(document.createTextNode(String(text)));
      }
    }
  }

  function tables(d) {
    const top = Math.max(1, ...d.reasons.rows.map((r) => r.calls));
    table("reasons", ["Count", "Source", "Disposition", "Reason", "SIP"], d.reasons.rows, (r) => [
      [r.calls, "num", r.calls / top], [r.source], [r.disposition], [r.info || "(none)"], [r.sip_status == null ? "" : r.sip_status, "num"]]);
    table("gap-streams", ["Stream", "App", "Gaps", "Total", "Longest"], d.keepalive.streams, (r) => [
      [r.name || r.media_session_id], [r.app_key], [r.gaps, "num"], [secs(r.gap_total_ms), "num"], [secs(r.gap_max_ms), "num"]]);
  }

  async function refresh() {
    const mine = ++seq;  // a newer refresh (filter change) wins over one still in flight
    clearTimeout(timer);
    const status = $("status");
    try {
      const f = await get("filters", "");
      extent = f;
      fillSelect("app_key", f.app_keys || [], "All apps");
      fillSelect("node", f.nodes || [], "All nodes");
      const q = params(), names = ["calls", "quality", "concurrency", "streams", "keepalive", "messages", "failed", "reasons", "summary", "alerts"];
      const answers = await Promise.all(names.map((n) => get(n, q)));
      if (mine !== seq) return;
      last = Object.fromEntries(names.map((n, i) => [n, answers[i]]));
      drawAll(last);
      status.className = "status";
      status.textContent = `Updated ${new Date().toISOString().slice(11, 19)} UTC`;
    } catch (err) {
      if (mine !== seq) return;
      status.className = "status error";
      status.textContent = `Cannot load data: ${err.message}`;
    } finally {
      const every = Number($("refresh").value);
      if (mine === seq && every > 0) timer = setTimeout(refresh, every * 1000);
    }
  }

  readHash();
  for (const id of ["range", "app_key", "node", "refresh"]) $(id).addEventListener("change", () => { writeHash(); refresh(); });
  $("reload").addEventListener("click", refresh);
  let resize = null;
  window.addEventListener("resize", () => { clearTimeout(resize); resize = setTimeout(() => last && drawAll(last), 150); });
  refresh();
})();
