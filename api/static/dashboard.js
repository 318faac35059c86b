"use strict";
// The kgrag KPI dashboard: plain JS, no dependencies. Loads GET /v1/kpis with the key typed in the header and draws
// every chart as SVG from that JSON (the same report `kgrag report --json` writes).
(function () {
  const $ = (id) => document.getElementById(id);
  const NS = "http://www.w3.org/2000/svg";
  const DECISIONS = ["released", "review", "abstained"];
  const W = 560, H = 240, LEFT = 44, BOTTOM = 24, TOP = 10;

  $("key").value = sessionStorage.getItem("kgrag-key") || "";
  $("key").addEventListener("change", () => sessionStorage.setItem("kgrag-key", $("key").value));

  function status(text) { $("status").textContent = text; }

  async function api(path) {
    const headers = {};
    if ($("key").value) headers["Authorization"] = "Bearer " + $("key").value;
    const response = await fetch(path, { headers });
    if (!response.ok) {
      let detail = response.statusText;
      try { detail = (await response.json()).detail; } catch (e) { /* not JSON */ }
      throw new Error(response.status + ": " + detail);
    }
    return response.json();
  }

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function pct(x) { return x === null || x === undefined ? "–" : (100 * x).toFixed(1) + " %"; }
  function num(x, digits) { return x === null || x === undefined ? "–" : Number(x).toFixed(digits ?? 3); }
  function dur(s) {
    if (s === null || s === undefined) return "–";
    if (s < 120) return s.toFixed(0) + " s";
    if (s < 7200) return (s / 60).toFixed(0) + " min";
    if (s < 172800) return (s / 3600).toFixed(1) + " h";
    return (s / 86400).toFixed(1) + " d";
  }

  function frame(svg, maxValue, label) {
    svg.replaceChildren();
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.append(el("line", { class: "axis", x1: LEFT, y1: H - BOTTOM, x2: W - 4, y2: H - BOTTOM }));
    svg.append(el("line", { class: "axis", x1: LEFT, y1: TOP, x2: LEFT, y2: H - BOTTOM }));
    svg.append(el("text", { x: 2, y: TOP + 8 }, label(maxValue)));
    svg.append(el("text", { x: 2, y: H - BOTTOM }, label(0)));
  }

  function empty(svg, text) {
    svg.replaceChildren();
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.append(el("text", { class: "empty", x: W / 2 - 40, y: H / 2 }, text));
  }

  // Stacked bars: one <g class="day"> per day, one <rect class="bar DECISION"> per decision with answers that day.
  function drawDaily(days) {
    const svg = $("daily");
    if (!days.length) { empty(svg, "no answers"); return; }
    const max = Math.max(1, ...days.map((d) => d.answers));
    frame(svg, max, (v) => String(v));
    const plot = H - BOTTOM - TOP, step = (W - LEFT - 8) / days.length, width = Math.max(2, step * 0.7);
    days.forEach((d, i) => {
      const g = el("g", { class: "day", "data-day": d.day, "data-answers": d.answers });
      let y = H - BOTTOM;
      for (const decision of DECISIONS) {
        const count = d[decision];
        if (!count) continue;
        const h = (count / max) * plot;
        y -= h;
        const rect = el("rect", { class: "bar " + decision, x: LEFT + 4 + i * step, y: y, width: width, height: h,
          "data-count": count });
        rect.append(el("title", {}, d.day + ": " + count + " " + decision));
        g.append(rect);
      }
      svg.append(g);
    });
    svg.append(el("text", { x: LEFT + 4, y: H - 6 }, days[0].day));
    if (days.length > 1) svg.append(el("text", { x: W - 70, y: H - 6 }, days[days.length - 1].day));
  }

  // A line through one <circle> per day that had answers.
  function drawRate(days) {
    const svg = $("rate");
    const points = days.map((d, i) => [i, d]).filter(([, d]) => d.release_rate !== null);
    if (!points.length) { empty(svg, "no answers"); return; }
    frame(svg, 1, (v) => (v * 100).toFixed(0) + "%");
    const plot = H - BOTTOM - TOP, step = (W - LEFT - 16) / Math.max(1, days.length - 1);
    const xy = points.map(([i, d]) => [LEFT + 8 + i * step, H - BOTTOM - d.release_rate * plot, d]);
    svg.append(el("polyline", { points: xy.map(([x, y]) => x + "," + y).join(" ") }));
    for (const [x, y, d] of xy) {
      const c = el("circle", { cx: x, cy: y, r: 4, "data-day": d.day, "data-rate": d.release_rate });
      c.append(el("title", {}, d.day + ": " + pct(d.release_rate) + " of " + d.answers));
      svg.append(c);
    }
    svg.append(el("text", { x: LEFT + 4, y: H - 6 }, days[0].day));
    if (days.length > 1) svg.append(el("text", { x: W - 70, y: H - 6 }, days[days.length - 1].day));
  }

  // Two horizontal bars per workflow step: p50 and p95.
  function drawLatency(latency) {
    const svg = $("latency");
    const steps = Object.keys(latency).filter((s) => latency[s].count > 0);
    if (!steps.length) { empty(svg, "no timings"); return; }
    const max = Math.max(...steps.map((s) => latency[s].p95));
    svg.replaceChildren();
    const rowH = 26, left = 110, height = steps.length * rowH + 10;
    svg.setAttribute("viewBox", "0 0 " + W + " " + height);
    svg.style.height = Math.max(120, height) + "px";
    steps.forEach((s, i) => {
      const g = el("g", { class: "step", "data-step": s });
      const y = 6 + i * rowH;
      g.append(el("text", { x: 2, y: y + 14 }, s));
      for (const [j, q] of [[0, "p50"], [1, "p95"]]) {
        const v = latency[s][q];
        const w = max > 0 ? (v / max) * (W - left - 70) : 0;
        g.append(el("rect", { class: q, x: left, y: y + j * 10, width: Math.max(1, w), height: 9, "data-value": v }));
        g.append(el("text", { x: left + Math.max(1, w) + 4, y: y + j * 10 + 8 }, q + " " + num(v, 3)));
      }
      svg.append(g);
    });
  }

  // Paired bars (current, baseline) per KPI that has both, each pair scaled to its larger value; and the table.
  function drawDrift(drift) {
    const svg = $("drift-chart");
    const rows = drift.kpis.filter((k) => k.current !== null && k.baseline !== null);
    svg.replaceChildren();
    const rowH = 24, left = 130, height = Math.max(1, rows.length) * rowH + 10;
    svg.setAttribute("viewBox", "0 0 " + W + " " + height);
    svg.style.height = Math.max(60, height) + "px";
    rows.forEach((k, i) => {
      const g = el("g", { class: "kpi" + (k.drifting ? " drifting" : ""), "data-kpi": k.kpi });
      const y = 6 + i * rowH, scale = Math.max(Math.abs(k.current), Math.abs(k.baseline)) || 1;
      g.append(el("text", { x: 2, y: y + 13 }, k.kpi + (k.drifting ? " ⚠" : "")));
      for (const [j, part] of [[0, "current"], [1, "baseline"]]) {
        const w = (Math.abs(k[part]) / scale) * (W - left - 80);
        g.append(el("rect", { class: part, x: left, y: y + j * 9, width: Math.max(1, w), height: 8,
          "data-value": k[part] }));
        g.append(el("text", { x: left + Math.max(1, w) + 4, y: y + j * 9 + 8 }, part + " " + num(k[part])));
      }
      svg.append(g);
    });
    const body = $("drift").tBodies[0];
    body.replaceChildren();
    for (const k of drift.kpis) {
      const tr = document.createElement("tr");
      tr.dataset.kpi = k.kpi;
      if (k.drifting) tr.className = "drifting";
      const cells = [k.kpi, num(k.current), num(k.baseline), k.current_values + " / " + k.baseline_values,
        num(k.threshold), k.drifting ? "yes" : "no"];
      for (const cell of cells) {
        const td = document.createElement("td");
        td.textContent = cell;
        tr.append(td);
      }
      body.append(tr);
    }
    $("drift-windows").textContent = "current: newest " + drift.current_answers + " of " + drift.window +
      " answers; baseline: " + drift.baseline_answers + " of " + drift.baseline_window + " before them; drift is " +
      "judged with at least " + drift.min_answers + " values in each.";
  }

  function drawTiles(r) {
    const tiles = [
      ["answers", r.answers + (r.truncated ? "+" : ""), "in the period"],
      ["released", pct(r.rates.released), r.decisions.released + " answers"],
      ["abstained", pct(r.rates.abstained), r.decisions.abstained + " answers"],
      ["review", pct(r.rates.review), r.decisions.review + " held"],
      ["tokens/answer", num(r.tokens.per_answer, 1),
        r.tokens.prompt + " prompt + " + r.tokens.completion + " completion + " +
        (r.tokens.judge_prompt + r.tokens.judge_completion) + " judge"],
      ["review turnaround p50", dur(r.reviews.turnaround_s.p50),
        r.reviews.reviewed + " reviewed, " + r.reviews.pending + " pending"],
      ["drifting KPIs", String(r.drift.drifting.length), r.drift.drifting.join(", ") || "none"],
      ["ingestion tokens", String(r.ingestion.prompt_tokens + r.ingestion.completion_tokens),
        r.ingestion.runs + " runs"],
    ];
    const box = $("tiles");
    box.replaceChildren();
    for (const [name, value, note] of tiles) {
      const div = document.createElement("div");
      div.className = "tile";
      div.dataset.tile = name;
      const b = document.createElement("b");
      b.textContent = value;
      const small = document.createElement("small");
      small.textContent = name + " · " + note;
      div.append(b, small);
      box.append(div);
    }
  }

  function drawLists(r) {
    const ol = $("abstained");
    ol.replaceChildren();
    for (const q of r.top_abstained) {
      const li = document.createElement("li");
      li.textContent = q.question + " (" + q.count + "×, last " + q.last_asked.slice(0, 16).replace("T", " ") + ")";
      ol.append(li);
    }
    const body = $("ingestion").tBodies[0];
    body.replaceChildren();
    const i = r.ingestion;
    for (const [k, v] of [["runs", i.runs], ["failed", i.failed], ["documents added", i.documents_added],
      ["documents changed", i.documents_changed], ["documents deleted", i.documents_deleted],
      ["chunks embedded", i.chunks_embedded], ["chunks extracted", i.chunks_extracted],
      ["extraction failures", i.extraction_failures], ["files skipped", i.files_skipped],
      ["extractor tokens", i.prompt_tokens + " prompt + " + i.completion_tokens + " completion"]]) {
      const tr = document.createElement("tr");
      for (const cell of [k, v]) {
        const td = document.createElement("td");
        td.textContent = String(cell);
        tr.append(td);
      }
      body.append(tr);
    }
  }

  async function load(event) {
    if (event) event.preventDefault();
    const params = new URLSearchParams();
    for (const name of ["from", "to"]) if ($(name).value) params.set(name, $(name).value);
    status("loading…");
    let report;
    try { report = await api("/v1/kpis?" + params); } catch (e) { status(e.message); return; }
    drawTiles(report);
    drawDaily(report.daily);
    drawRate(report.daily);
    drawLatency(report.latency_s);
    drawDrift(report.drift);
    drawLists(report);
    document.body.dataset.loaded = report.generated_at;
    status(report.answers + " answers · generated " + report.generated_at.slice(0, 19).replace("T", " "));
  }

  $("period").addEventListener("submit", load);
  if ($("key").value) load();
})();
