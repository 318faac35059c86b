"use strict";
// The kgrag review page: plain JS, no dependencies. Talks to /v1/answers* with the key typed in the header.
(function () {
  const $ = (id) => document.getElementById(id);
  const COLORS = { answer: "#9ecbff", claim: "#c7e0ff", passage: "#ffe58f", fact: "#ffd0a8", chunk: "#d7f0c2",
    document_version: "#b7e4a8", ingestion: "#e3d7f7", workflow_run: "#f3c4d3", gate: "#f7a8a8",
    prompt: "#e9e9e9", model: "#dcdcdc", workflow: "#d0d0d0", review: "#c2f0ee", chat_message: "#fff3c4",
    rewrite: "#f6e3a1" };
  const COLUMNS = { review: 0, chat_message: 0, rewrite: 0, answer: 1, gate: 1, workflow_run: 1, claim: 2, prompt: 2,
    model: 2, workflow: 2,
    passage: 3, fact: 3, chunk: 4, document_version: 5, ingestion: 6 };
  let graph = null;
  let record = null;

  $("key").value = sessionStorage.getItem("kgrag-key") || "";
  $("key").addEventListener("change", () => sessionStorage.setItem("kgrag-key", $("key").value));

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

  function status(text) { $("status").textContent = text; }

  function showList(items) {
    const ul = $("results");
    ul.replaceChildren();
    for (const item of items) {
      const li = document.createElement("li");
      li.dataset.answerId = item.answer_id;
      const badge = document.createElement("span");
      badge.className = "decision " + item.decision;
      badge.textContent = item.decision;
      const q = document.createElement("div");
      q.textContent = item.question;
      const when = document.createElement("small");
      when.textContent = item.created_at.slice(0, 19).replace("T", " ") + " · " + item.citations + " citations";
      li.append(badge, q, when);
      li.addEventListener("click", () => openAnswer(item.answer_id));
      ul.append(li);
    }
    status(items.length + " answers");
  }

  async function search(event) {
    if (event) event.preventDefault();
    const params = new URLSearchParams();
    for (const name of ["q", "from", "to", "decision"]) if ($(name).value) params.set(name, $(name).value);
    try { showList((await api("/v1/answers?" + params)).items); } catch (e) { status(e.message); }
  }

  async function queue() {
    try { showList((await api("/v1/review-queue")).items); } catch (e) { status(e.message); }
  }

  function docVersionFor(chunkId) {
    const edge = graph.edges.find((e) => e.source === "chunk:" + chunkId && e.relation === "wasDerivedFrom");
    return edge ? graph.nodes.find((n) => n.id === edge.target) : null;
  }

  function showSource(n) {
    const c = record.citations[n - 1];
    if (!c) return;
    const doc = docVersionFor(c.chunk_id);
    const text = doc && doc.text ? doc.text : c.text;
    const start = doc && doc.text ? c.start : 0;
    const end = doc && doc.text ? c.end : c.text.length;
    $("source-title").textContent = "[" + n + "] " + c.source + " (" + c.document_id + ":" + c.start + "-" + c.end +
      (doc ? ", version " + doc.attributes.sha256.slice(0, 12) : "") + ")";
    const pre = $("source-text");
    const mark = document.createElement("mark");
    mark.className = "cite";
    mark.textContent = text.slice(start, end);
    pre.replaceChildren(document.createTextNode(text.slice(0, start)), mark, document.createTextNode(text.slice(end)));
    $("source").hidden = false;
    mark.scrollIntoView({ block: "nearest" });
  }

  function renderAnswerText(text) {
    const p = $("answer-text");
    p.replaceChildren();
    const re = /\[(\d+)\]/g;
    let last = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      p.append(document.createTextNode(text.slice(last, m.index)));
      const a = document.createElement("span");
      a.className = "marker";
      a.textContent = m[0];
      const n = Number(m[1]);
      a.addEventListener("click", () => showSource(n));
      p.append(a);
      last = m.index + m[0].length;
    }
    p.append(document.createTextNode(text.slice(last)));
  }

  function showNode(node) {
    for (const g of document.querySelectorAll("#graph g.node")) g.classList.toggle("selected", g.dataset.id === node.id);
    $("node-title").textContent = node.kind + ": " + node.label;
    $("node-text").textContent = node.text || "(no text)";
    $("node-meta").textContent = JSON.stringify(node.attributes, null, 2);
    $("node").hidden = false;
    if (node.kind === "passage") showSource(Number(node.id.split(":").pop()));
  }

  function drawGraph() {
    const svg = $("graph");
    svg.replaceChildren();
    const NS = "http://www.w3.org/2000/svg";
    const rows = {};
    const pos = {};
    for (const node of graph.nodes) {
      const col = COLUMNS[node.kind] ?? 6;
      rows[col] = (rows[col] || 0) + 1;
      pos[node.id] = { x: 10 + col * 150, y: 10 + (rows[col] - 1) * 34 };
    }
    const height = 20 + Math.max(...Object.values(rows)) * 34;
    svg.setAttribute("viewBox", "0 0 1060 " + Math.max(height, 200));
    svg.style.height = Math.max(height, 200) + "px";
    for (const e of graph.edges) {
      const a = pos[e.source], b = pos[e.target];
      if (!a || !b) continue;
      const line = document.createElementNS(NS, "line");
      line.setAttribute("x1", a.x + 65); line.setAttribute("y1", a.y + 12);
      line.setAttribute("x2", b.x + 65); line.setAttribute("y2", b.y + 12);
      const title = document.createElementNS(NS, "title");
      title.textContent = e.relation;
      line.append(title);
      svg.append(line);
    }
    for (const node of graph.nodes) {
      const g = document.createElementNS(NS, "g");
      g.setAttribute("class", "node " + node.kind);
      g.dataset.id = node.id;
      g.setAttribute("transform", "translate(" + pos[node.id].x + "," + pos[node.id].y + ")");
      const rect = document.createElementNS(NS, "rect");
      rect.setAttribute("width", 130); rect.setAttribute("height", 24);
      rect.setAttribute("fill", COLORS[node.kind] || "#eee");
      const text = document.createElementNS(NS, "text");
      text.setAttribute("x", 4); text.setAttribute("y", 15);
      text.textContent = node.label.length > 24 ? node.label.slice(0, 23) + "\u2026" : node.label;
      const title = document.createElementNS(NS, "title");
      title.textContent = node.kind + ": " + node.label;
      g.append(rect, text, title);
      g.addEventListener("click", () => showNode(node));
      svg.append(g);
    }
  }

  async function openAnswer(id) {
    try {
      [record, graph] = await Promise.all([api("/v1/answers/" + id), api("/v1/answers/" + id + "/provenance")]);
    } catch (e) { status(e.message); return; }
    $("answer").hidden = false;
    $("answer").dataset.answerId = id;
    $("question").textContent = record.question;
    renderAnswerText(record.answer);
    const gate = record.provenance.gate;
    $("meta").textContent = "gate: " + gate.decision + (gate.reason ? " (" + gate.reason + ")" : "") + " · model " +
      record.provenance.model + " · prompt " + record.provenance.prompt.name + " v" + record.provenance.prompt.version +
      " · " + record.created_at;
    const ol = $("citations");
    ol.replaceChildren();
    record.citations.forEach((c, i) => {
      const li = document.createElement("li");
      li.className = "citation";
      li.textContent = c.source + ": " + c.text.slice(0, 160);
      li.addEventListener("click", () => showSource(i + 1));
      ol.append(li);
    });
    $("source").hidden = true;
    $("node").hidden = true;
    $("graphml").onclick = async (event) => {
      event.preventDefault();
      const headers = $("key").value ? { Authorization: "Bearer " + $("key").value } : {};
      const blob = await (await fetch("/v1/answers/" + id + "/provenance?format=graphml", { headers })).blob();
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = "provenance-" + id + ".graphml";
      a.click();
    };
    drawGraph();
  }

  $("search").addEventListener("submit", search);
  $("queue").addEventListener("click", queue);
  const hash = location.hash.slice(1);
  if (hash) openAnswer(hash);
})();
