// Shardline dashboard: polls the JSON API and draws SVG line charts. No library, no network
// beyond this server.
"use strict";

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf"];
const REFRESH_MS = 3000;
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

function esc(s) {
  return String(s == null ? "" : s).replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function table(headers, rows) {
  if (!rows.length) return '<div class="empty">none</div>';
  const head = "<tr>" + headers.map((h) => `<th>${esc(h)}</th>`).join("") + "</tr>";
  const body = rows.map((r) => "<tr>" + r.map((c) => (c && c.html !== undefined)
    ? `<td class="${esc(c.cls || "")}">${c.html}</td>`
    : `<td>${esc(c)}</td>`).join("") + "</tr>").join("");
  return `<table>${head}${body}</table>`;
}

function num(v, digits) {
  if (v == null || Number.isNaN(v)) return "-";
  return Number(v).toLocaleString(undefined, { maximumFractionDigits: digits == null ? 0 : digits });
}

function el(name, attrs) {
  const e = document.createElementNS(SVG, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  return e;
}

function timeLabel(ms, spanMs) {
  const d = new Date(ms);
  const hm = d.toISOString().slice(11, 16);
  return spanMs > 36 * 3600 * 1000 ? d.toISOString().slice(5, 10) + " " + hm : hm;
}

function drawChart(fig, data) {
  fig.innerHTML = "";
  const title = document.createElement("h3");
  const shown = data.series.length;
  title.textContent = `${fig.dataset.title} — ${shown} of ${data.matched} instances`;
  fig.appendChild(title);
  const W = 600, H = 220, L = 44, R = 8, T = 8, B = 22;
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img" });
  let max = 0;
  for (const s of data.series) for (const p of s.points) max = Math.max(max, p[1]);
  max = max > 0 ? max * 1.1 : 1;
  const x = (t) => L + (t - data.start) / (data.end - data.start) * (W - L - R);
  const y = (v) => T + (1 - v / max) * (H - T - B);
  for (let i = 0; i <= 4; i++) {
    const v = max * i / 4;
    svg.appendChild(el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    const t = el("text", { x: L - 4, y: y(v) + 3, "text-anchor": "end" });
    t.textContent = num(v, v < 10 ? 1 : 0);
    svg.appendChild(t);
  }
  for (let i = 0; i <= 4; i++) {
    const ms = data.start + (data.end - data.start) * i / 4;
    const t = el("text", { x: x(ms), y: H - 6, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" });
    t.textContent = timeLabel(ms, data.end - data.start);
    svg.appendChild(t);
  }
  svg.appendChild(el("line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis" }));
  svg.appendChild(el("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }));
  const legend = document.createElement("div");
  legend.className = "legend";
  data.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const d = s.points.map((p, j) => (j ? "L" : "M") + x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1)).join("");
    const path = el("path", { d: d || "M0,0", class: "series", stroke: color, "data-instance": s.instance_id });
    const tip = el("title", {});
    tip.textContent = `${s.instance_id} (${s.region}) latest ${num(s.latest, 2)}`;
    path.appendChild(tip);
    svg.appendChild(path);
    if (s.points.length === 1) {
      svg.appendChild(el("circle", { cx: x(s.points[0][0]), cy: y(s.points[0][1]), r: 2.5, fill: color }));
    }
    const item = document.createElement("span");
    item.innerHTML = `<i style="background:${color}"></i>${esc(s.instance_id)} ${num(s.latest, 1)}`;
    legend.appendChild(item);
  });
  fig.appendChild(svg);
  if (!data.series.length) {
    const none = document.createElement("div");
    none.className = "empty";
    none.textContent = data.series_total ? "no instance matches the search" : "no data in this range yet";
    fig.appendChild(none);
  }
  fig.appendChild(legend);
}

async function getJson(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error(`${url}: ${r.status} ${await r.text()}`);
  return r.json();
}

async function refreshCharts() {
  const minutes = $("range").value, limit = $("limit").value;
  const q = encodeURIComponent($("search").value.trim());
  await Promise.all([...document.querySelectorAll(".chart")].map(async (fig) => {
    const data = await getJson(`/api/chart?metric=${fig.dataset.metric}&minutes=${minutes}&limit=${limit}&q=${q}`);
    drawChart(fig, data);
  }));
}

function renderOverview(o) {
  $("stream").textContent = `stream ${o.stream.name}: ${num(o.stream.records)} records in ${o.stream.shards.length} shards`
    + (o.live ? "" : " (stopped data directory)");
  $("updated").textContent = "updated " + o.now.slice(11, 19) + " UTC";
  const c = o.alarms.counts;
  $("alarm-counts").textContent = `${num(c.ALARM || 0)} in alarm, ${num(c.OK || 0)} ok, ${num(c.INSUFFICIENT_DATA || 0)} insufficient data`;
  $("alarms").innerHTML = table(["state", "alarm", "instance", "region", "since", "last"],
    o.alarms.firing.map((a) => [{ html: "ALARM", cls: "state-ALARM" }, a.name, a.instance_id, a.region, a.since || "-", num(a.last_value, 2)]));
  $("consumers").innerHTML = table(["consumer", "state", "records/s", "delivered", "lag", "behind", "dead letters"],
    o.consumers.map((k) => [k.name, k.state, num(k.rate), num(k.delivered), k.lag_ms ? num(k.lag_ms) + " ms" : "-", num(k.records_behind), num(k.dead_letters)]));
  $("notifications").innerHTML = table(["at", "subject"],
    o.notifications.map((n) => [n.at || "-", { html: esc(n.subject), cls: "wrap" }]));
  $("dlq-total").textContent = num(o.dead_letters.total);
  $("dead-letters").innerHTML = table(["at", "consumer", "reason"],
    o.dead_letters.recent.map((l) => [l.at, l.consumer, { html: esc(l.reason), cls: "wrap" }]));
  $("flows").innerHTML = table(["execution", "status", "start", "states", "error"],
    o.flows.map((f) => [f.name, { html: esc(f.status), cls: "state-" + f.status }, f.start, f.states, f.error || ""]));
}

let busy = false;
async function refresh() {
  if (busy) return;
  busy = true;
  try {
    const o = await getJson("/api/overview");
    renderOverview(o);
    await refreshCharts();
    $("status").textContent = "";
    $("status").className = "status";
    document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
  } catch (e) {
    $("status").textContent = "cannot reach shardline: " + e.message;
    $("status").className = "status error";
  } finally {
    busy = false;
  }
}

let searchTimer = null;
$("search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(refresh, 300);
});
for (const id of ["range", "limit"]) $(id).addEventListener("change", refresh);
setInterval(() => { if ($("live").checked) refresh(); }, REFRESH_MS);
refresh();
