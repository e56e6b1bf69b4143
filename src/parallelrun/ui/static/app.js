// parallelrun dashboard: plain JavaScript, no build step, no network beyond this server.
// Every page is built from /api/... responses; text goes into the DOM as text, never as HTML.
"use strict";

const TERMINAL = new Set(["Finished", "Failed", "Canceled"]);
const SVG_NS = "http://www.w3.org/2000/svg";

// ---------------------------------------------------------------------------------- helpers
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") el.textContent = value;
    else if (key === "class") el.className = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  el.append(...nodes(children));
  return el;
}

// children as nodes: arrays flattened, null/false/undefined skipped, the rest as text
function nodes(children) {
  return [children].flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => c instanceof Node ? c : document.createTextNode(String(c)));
}

// replace an element's children
function fill(el, ...children) {
  el.replaceChildren(...nodes(children));
  return el;
}

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (key === "text") el.textContent = value;
    else el.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) if (child) el.append(child);
  return el;
}

async function api(path, options) {
  const response = await fetch(path, Object.assign({headers: {Accept: "application/json"}}, options));
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    const detail = body && body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : response.statusText;
    const error = new Error(detail);
    error.status = response.status;
    throw error;
  }
  return body;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, v);
  const text = q.toString();
  return text ? "?" + text : "";
}

const fmt = {
  int: (n) => (n === null || n === undefined) ? "–" : Number(n).toLocaleString("en-US"),
  rate: (n) => (n === null || n === undefined) ? "–" : Number(n).toLocaleString("en-US", {maximumFractionDigits: 1, minimumFractionDigits: 1}),
  time: (ts) => {
    if (!ts) return "–";
    const d = new Date(ts * 1000);
    const p = (x) => String(x).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  },
  duration: (sec) => {
    if (sec === null || sec === undefined) return "–";
    sec = Math.max(0, Math.round(sec));
    const hh = Math.floor(sec / 3600), mm = Math.floor(sec % 3600 / 60), ss = sec % 60;
    if (hh) return `${hh}h ${String(mm).padStart(2, "0")}m`;
    if (mm) return `${mm}m ${String(ss).padStart(2, "0")}s`;
    return `${ss}s`;
  },
  bytes: (n) => {
    if (n === null || n === undefined) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return `${i ? n.toFixed(1) : n} ${units[i]}`;
  },
};

function badge(status, extra) {
  return h("span", {class: `badge ${status || ""}`, "data-testid": extra || null, text: status || "–"});
}

function runBadges(run) {
  const parts = [badge(run.status, "run-status")];
  if (run.runner_lost) parts.push(h("span", {class: "badge lost", title: "the runner process is gone; resume the run with parallelrun runs resume", text: "runner lost"}));
  if (run.cancel_requested && !TERMINAL.has(run.status)) parts.push(h("span", {class: "badge Canceled", text: "cancel requested"}));
  return parts;
}

function progressBar(done, failed, total, big) {
  const bar = h("div", {class: big ? "bar big" : "bar", title: `${done} of ${total || "?"} done`});
  const ok = h("span"), bad = h("span", {class: "failed"});
  bar.append(ok, bad);
  setBar(bar, done, failed, total);
  return bar;
}

function setBar(bar, done, failed, total) {
  const [ok, bad] = bar.children;
  const whole = total > 0 ? total : Math.max(done, 1);
  const okShare = Math.min(1, Math.max(0, (done - failed) / whole));
  const badShare = Math.min(1 - okShare, Math.max(0, failed / whole));
  ok.style.width = `${(okShare * 100).toFixed(2)}%`;
  bad.style.left = `${(okShare * 100).toFixed(2)}%`;
  bad.style.width = `${(badShare * 100).toFixed(2)}%`;
}

function pager(page, onGo) {
  const {total, limit, offset} = page;
  const first = total ? offset + 1 : 0, last = Math.min(total, offset + limit);
  return h("div", {class: "pager"},
    h("button", {class: "small", disabled: offset <= 0, onclick: () => onGo(Math.max(0, offset - limit))}, "‹ newer"),
    h("span", {"data-testid": "pager-range"}, `${fmt.int(first)}–${fmt.int(last)} of ${fmt.int(total)}`),
    h("button", {class: "small", disabled: offset + limit >= total, onclick: () => onGo(offset + limit)}, "older ›"));
}

function table(headers, rows, attrs) {
  return h("table", attrs || {},
    h("thead", {}, h("tr", {}, headers.map(([label, cls]) => h("th", {class: cls || null}, label)))),
    h("tbody", {}, rows));
}

function show(...parts) {
  fill(document.getElementById("main"), parts);
}

function failure(error) {
  return h("div", {class: "card"}, h("div", {class: "flash bad", "data-testid": "error"}, String(error.message || error)));
}

function token() {
  return sessionStorage.getItem("parallelrun-token");
}

function pageOffset() {
  return Number(new URLSearchParams(location.search).get("offset") || 0);
}

function goOffset(offset) {
  const q = new URLSearchParams(location.search);
  if (offset) q.set("offset", offset); else q.delete("offset");
  location.search = q.toString();
}

// live updates: server-sent events, or polling when the stream is not available
function follow(path, onData, onEnd, poll) {
  let closed = false, timer = null, source = null;
  const stop = () => { closed = true; if (source) source.close(); if (timer) clearTimeout(timer); };
  const polling = async () => {
    if (closed) return;
    try {
      const data = await api(poll);
      onData(data);
      if (TERMINAL.has(data.status)) { stop(); if (onEnd) onEnd(data); return; }
    } catch (e) { /* keep trying */ }
    timer = setTimeout(polling, 2000);
  };
  if (window.EventSource) {
    source = new EventSource(path);
    let last = null;
    source.addEventListener("update", (ev) => { last = JSON.parse(ev.data); onData(last); });
    source.addEventListener("end", () => { stop(); if (onEnd) onEnd(last); });
    source.addEventListener("gone", () => stop());
    source.onerror = () => {
      if (closed) return;
      if (source.readyState === EventSource.CLOSED) { source = null; polling(); }
    };
  } else {
    polling();
  }
  return stop;
}

// ------------------------------------------------------------------------------------ pages
async function pageExperiments() {
  const offset = pageOffset();
  const data = await api(`/api/experiments${query({limit: 50, offset})}`);
  const rows = data.items.map((e) => h("tr", {},
    h("td", {}, h("a", {href: `/experiments/${encodeURIComponent(e.name)}`}, e.name)),
    h("td", {class: "num"}, fmt.int(e.run_count)),
    h("td", {}, e.latest_run ? [runBadges(e.latest_run), " ", h("a", {class: "mono", href: `/runs/${encodeURIComponent(e.latest_run.id)}`}, e.latest_run.id)] : "–"),
    h("td", {}, e.latest_run ? fmt.time(e.latest_run.created_at) : "–")));
  show(h("h1", {}, "Experiments"),
    h("div", {class: "card"},
      data.total ? table([["Experiment"], ["Runs", "num"], ["Latest run"], ["Created"]], rows, {"data-testid": "experiments"})
                 : h("p", {class: "muted"}, "No runs yet. Submit a pipeline with Experiment(ws, name).submit(pipeline)."),
      data.total > data.limit ? pager(data, goOffset) : null));
}

function runRows(runs, withExperiment) {
  return runs.map((r) => h("tr", {"data-run": r.id},
    h("td", {}, h("a", {class: "mono", href: `/runs/${encodeURIComponent(r.id)}`}, r.id)),
    withExperiment ? h("td", {}, h("a", {href: `/experiments/${encodeURIComponent(r.experiment)}`}, r.experiment)) : null,
    h("td", {}, runBadges(r)),
    h("td", {}, fmt.time(r.created_at)),
    h("td", {class: "num"}, fmt.duration(r.duration)),
    h("td", {class: "num"}, fmt.rate(r.items_per_second)),
    h("td", {class: "num"}, `${r.steps_finished}/${r.steps_total}`),
    h("td", {class: "num"}, fmt.int(r.items_succeeded)),
    h("td", {class: "num"}, fmt.int(r.items_failed))));
}

const RUN_HEADERS = [["Status"], ["Created"], ["Duration", "num"], ["Items/s", "num"], ["Steps done", "num"], ["Items ok", "num"], ["Items failed", "num"]];

async function runList(title, crumbs, path, withExperiment) {
  const offset = pageOffset();
  const status = new URLSearchParams(location.search).get("status") || "";
  const load = () => api(`${path}${query({limit: 50, offset, status})}`);
  let data = await load();
  const body = h("tbody");
  const render = () => fill(body, runRows(data.items, withExperiment));
  render();
  const headers = [["Run"], ...(withExperiment ? [["Experiment"]] : []), ...RUN_HEADERS];
  const filter = h("select", {onchange: (ev) => { const q = new URLSearchParams(location.search); q.delete("offset"); if (ev.target.value) q.set("status", ev.target.value); else q.delete("status"); location.search = q.toString(); }},
    ["", "NotStarted", "Queued", "Running", "Finished", "Failed", "Canceled"].map((v) => h("option", {value: v, selected: v === status}, v || "any status")));
  show(crumbs, h("h1", {}, title),
    h("div", {class: "card"},
      h("div", {class: "pager"}, "Status ", filter),
      h("table", {"data-testid": "runs"}, h("thead", {}, h("tr", {}, headers.map(([l, c]) => h("th", {class: c || null}, l)))), body),
      pager(data, goOffset)));
  // runs still going: refresh the page of runs every few seconds
  const tick = async () => {
    if (!data.items.some((r) => !TERMINAL.has(r.status))) return;
    try { data = await load(); render(); } catch (e) { /* next time */ }
    setTimeout(tick, 3000);
  };
  setTimeout(tick, 3000);
}

async function pageExperimentRuns(name) {
  await runList(`Experiment ${name}`, h("div", {class: "crumbs"}, h("a", {href: "/"}, "Experiments"), " › ", name),
    `/api/experiments/${encodeURIComponent(name)}/runs`, false);
}

async function pageRuns() {
  await runList("Runs", h("div", {class: "crumbs"}, "All runs of the workspace, newest first"), "/api/runs", true);
}

function drawGraph(layout, steps) {
  const wrap = h("div", {class: "graph", "data-testid": "graph"});
  if (!layout || !layout.nodes.length) { wrap.append(h("p", {class: "muted"}, "No graph recorded.")); return wrap; }
  const byName = Object.fromEntries(steps.map((st) => [st.name, st]));
  const svg = s("svg", {viewBox: `0 0 ${layout.width} ${layout.height}`, width: layout.width, height: layout.height, role: "img", "aria-label": "pipeline graph"});
  svg.append(s("defs", {}, s("marker", {id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse"},
    s("path", {d: "M 0 0 L 10 5 L 0 10 z", fill: "#98a4b5"}))));
  for (const edge of layout.edges) {
    const [[x1, y1], [x2, y2]] = edge.points;
    const mid = (x1 + x2) / 2;
    svg.append(s("path", {class: "edge", d: `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2 - 2} ${y2}`, "marker-end": "url(#arrow)"}));
    if (edge.label) svg.append(s("text", {class: "edge-label", x: mid, y: (y1 + y2) / 2 - 6, "text-anchor": "middle", text: edge.label}));
  }
  for (const node of layout.nodes) {
    const step = node.kind === "step" ? byName[node.step] : null;
    const status = step ? step.status : "";
    const group = s("g", {class: `node ${node.kind} ${status}`, "data-step": node.step || null});
    group.append(s("rect", {x: node.x, y: node.y, width: node.w, height: node.h, rx: 8}));
    // long dataset descriptions end in what tells them apart: keep the end
    const label = node.label.length <= 26 ? node.label
      : node.kind === "data" ? "…" + node.label.slice(-25) : node.label.slice(0, 25) + "…";
    group.append(s("title", {text: node.label}));
    group.append(s("text", {x: node.x + 10, y: node.y + 21, text: label}));
    group.append(s("text", {class: "sub", x: node.x + 10, y: node.y + 40, text: step ? `${step.kind} · ${status}` : "input"}));
    if (step) {
      const link = s("a", {href: `/steps/${step.id}`});
      link.append(group);
      svg.append(link);
    } else svg.append(group);
  }
  wrap.append(svg);
  return wrap;
}

function stepRows(steps) {
  return steps.map((st) => {
    const parallel = st.kind === "parallel";
    const done = st.minibatches_succeeded + st.minibatches_failed;
    return h("tr", {"data-step": st.name},
      h("td", {}, h("a", {href: `/steps/${st.id}`}, st.name)),
      h("td", {}, st.kind),
      h("td", {}, badge(st.status), st.reused_from ? h("span", {class: "muted"}, " reused") : null),
      h("td", {}, parallel ? progressBar(done, st.minibatches_failed, st.minibatches_total) : null),
      h("td", {class: "num"}, parallel ? `${fmt.int(done)}/${fmt.int(st.minibatches_total)}` : ""),
      h("td", {class: "num"}, parallel ? fmt.int(st.items_succeeded) : ""),
      h("td", {class: "num"}, parallel ? fmt.int(st.items_failed) : ""),
      h("td", {class: "num"}, parallel ? fmt.int(st.retries) : ""),
      h("td", {class: "num"}, parallel ? fmt.rate(st.items_per_second) : ""),
      h("td", {class: "num"}, fmt.duration(st.duration)));
  });
}

async function pageRun(runId) {
  let run = await api(`/api/runs/${encodeURIComponent(runId)}`);
  const title = h("span", {class: "mono", "data-testid": "run-id"}, run.id);
  const badges = h("span");
  const info = h("dl", {class: "kv"});
  const graph = h("div");
  const stepsBody = h("tbody");
  const errorBox = h("div");
  const actions = h("div");
  const render = () => {
    fill(badges, runBadges(run));
    fill(info, 
      h("dt", {}, "Created"), h("dd", {}, fmt.time(run.created_at)),
      h("dt", {}, "Started"), h("dd", {}, fmt.time(run.started_at)),
      h("dt", {}, "Ended"), h("dd", {}, fmt.time(run.finished_at)),
      h("dt", {}, "Duration"), h("dd", {"data-testid": "run-duration"}, fmt.duration(run.duration)),
      h("dt", {}, "Items"), h("dd", {}, `${fmt.int(run.items_succeeded)} succeeded, ${fmt.int(run.items_failed)} failed, ${fmt.rate(run.items_per_second)} items/s`),
      h("dt", {}, "Steps"), h("dd", {}, `${run.steps_finished} of ${run.steps_total} finished`),
      h("dt", {}, "Runner"), h("dd", {}, run.pid ? `pid ${run.pid} on ${run.host || "?"}, attempt ${run.attempts}` : "–"),
      run.description ? [h("dt", {}, "Description"), h("dd", {}, run.description)] : null);
    fill(graph, drawGraph(run.layout, run.steps));
    fill(stepsBody, stepRows(run.steps));
    fill(errorBox, run.error ? h("div", {class: "card"}, h("h2", {}, "Error"), h("pre", {class: "error", "data-testid": "run-error"}, run.error)) : "");
    if (TERMINAL.has(run.status)) cancelButton.remove();
  };
  const flash = h("div");
  const cancelButton = h("button", {class: "danger", "data-testid": "cancel", onclick: cancel}, "Cancel run");
  actions.append(cancelButton);
  async function cancel() {
    let secret = token();
    if (!secret) {
      secret = window.prompt("Cancel needs the token that `parallelrun ui` printed when it started:");
      if (!secret) return;
    }
    try {
      const result = await api(`/api/runs/${encodeURIComponent(runId)}/cancel`, {method: "POST", headers: {"X-Parallelrun-Token": secret, Accept: "application/json"}});
      sessionStorage.setItem("parallelrun-token", secret);
      fill(flash, h("div", {class: "flash"}, `Cancel requested; the run is ${result.status}.`));
    } catch (e) {
      if (e.status === 403) sessionStorage.removeItem("parallelrun-token");
      fill(flash, h("div", {class: "flash bad"}, e.message));
    }
  }
  render();
  const runLog = logViewer(`/api/runs/${encodeURIComponent(runId)}/logs`, () => !TERMINAL.has(run.status));
  show(h("div", {class: "crumbs"}, h("a", {href: "/"}, "Experiments"), " › ",
      h("a", {href: `/experiments/${encodeURIComponent(run.experiment)}`}, run.experiment), " › run"),
    h("h1", {}, title, badges), flash,
    h("div", {class: "card"}, h("h2", {}, "Run"), info, h("div", {class: "pager"}, actions)),
    h("div", {class: "card"}, h("h2", {}, "Pipeline"), graph),
    h("div", {class: "card"}, h("h2", {}, "Steps"),
      h("table", {"data-testid": "steps"}, h("thead", {}, h("tr", {}, [["Step"], ["Kind"], ["Status"], ["Progress"], ["Mini-batches", "num"], ["Items ok", "num"], ["Items failed", "num"], ["Retried", "num"], ["Items/s", "num"], ["Duration", "num"]].map(([l, c]) => h("th", {class: c || null}, l)))), stepsBody)),
    errorBox,
    h("div", {class: "card"}, h("h2", {}, "Run log"), runLog));
  if (!TERMINAL.has(run.status)) {
    follow(`/api/runs/${encodeURIComponent(runId)}/events`, (data) => { if (data) { run = data; render(); } },
      () => runLog.refresh(), `/api/runs/${encodeURIComponent(runId)}`);
  }
}

function stat(label, testid, cls) {
  const value = h("div", {class: `value ${cls || ""}`, "data-testid": testid}, "–");
  return [h("div", {class: "stat"}, h("div", {class: "label"}, label), value), value];
}

function drawChart(box, series) {
  const points = series.points || [];
  box.replaceChildren();
  if (points.length < 2) { box.append(h("p", {class: "muted"}, "Waiting for the first measurements…")); return; }
  const W = 900, H = 220, L = 52, R = 12, T = 12, B = 28;
  const t0 = points[0].t, t1 = points[points.length - 1].t;
  const span = Math.max(1, t1 - t0);
  const maxRate = Math.max(1, ...points.map((p) => p.rate));
  const x = (t) => L + (t - t0) / span * (W - L - R);
  const y = (r) => T + (1 - r / maxRate) * (H - T - B);
  const svg = s("svg", {viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", "data-testid": "throughput-chart"});
  for (let i = 0; i <= 4; i++) {
    const value = maxRate * i / 4;
    svg.append(s("line", {class: "grid", x1: L, x2: W - R, y1: y(value), y2: y(value)}));
    svg.append(s("text", {x: L - 6, y: y(value) + 4, "text-anchor": "end", text: fmt.rate(value)}));
  }
  for (let i = 0; i <= 4; i++) {
    const t = t0 + span * i / 4;
    const label = span < 20 ? `${(t - t0).toFixed(1)}s` : fmt.duration(t - t0);
    svg.append(s("text", {x: x(t), y: H - 8, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle", text: label}));
  }
  svg.append(s("line", {class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B}));
  // a step line: each point's rate holds over the interval that ends at it
  let d = `M ${x(points[0].t)} ${y(0)}`;
  for (let i = 1; i < points.length; i++) d += ` L ${x(points[i - 1].t)} ${y(points[i].rate)} L ${x(points[i].t)} ${y(points[i].rate)}`;
  svg.append(s("path", {class: "area", d: `${d} L ${x(t1)} ${y(0)} Z`}));
  svg.append(s("path", {class: "line", d}));
  svg.append(s("text", {x: L + 4, y: T + 10, text: "items/s"}));
  box.append(svg);
}

function workerTable(workers) {
  if (!workers.length) return h("p", {class: "muted"}, "No workers yet.");
  const most = Math.max(1, ...workers.map((w) => w.done || 0));
  return table([["Worker"], ["Node"], ["State"], ["Working on"], ["Done", "num"], [""]],
    workers.map((w) => {
      const bar = h("div", {class: "bar"}, h("span"));
      bar.firstChild.style.width = `${(100 * (w.done || 0) / most).toFixed(1)}%`;
      return h("tr", {"data-worker": w.process},
        h("td", {class: "mono"}, w.process), h("td", {}, w.node || ""), h("td", {}, w.state || ""),
        h("td", {}, w.current === null || w.current === undefined ? h("span", {class: "muted"}, "idle") : `mini-batch ${w.current}`),
        h("td", {class: "num"}, fmt.int(w.done || 0)), h("td", {}, bar));
    }), {"data-testid": "workers"});
}

function errorSummary(stepId, data) {
  const box = h("div", {"data-testid": "errors"});
  if (!data.groups.length) {
    box.append(h("p", {class: "muted"}, data.complete ? "No failed tries." : "Reading the error log…"));
    return box;
  }
  if (!data.complete) box.append(h("div", {class: "note"}, `Indexed ${fmt.bytes(data.scanned_bytes)} of ${fmt.bytes(data.size)} of the error log so far; counts grow as it is read.`));
  const rows = [];
  for (const g of data.groups) {
    const trace = h("tr", {class: "traceback-row", hidden: true}, h("td", {colspan: 6}, h("pre", {class: "error", "data-testid": "traceback"}, g.traceback || "(no traceback recorded)")));
    const first = g.first || {};
    rows.push(h("tr", {class: "error-group", "data-error-type": g.type},
      h("td", {class: "mono"}, g.type),
      h("td", {class: "num"}, fmt.int(g.tries)),
      h("td", {class: "num"}, fmt.int(g.minibatches_failed)),
      h("td", {class: "num"}, fmt.int(g.retried)),
      h("td", {}, h("div", {class: "message"}, first.message || ""), h("div", {class: "muted"}, first.index !== undefined ? `first: mini-batch ${first.index}, try ${first.attempt}, ${first.node}/${first.process}` : "")),
      h("td", {},
        h("button", {class: "small", "data-testid": "show-traceback", onclick: () => { trace.hidden = !trace.hidden; }}, "traceback"), " ",
        h("a", {href: `/steps/${stepId}/failures${query({type: g.type})}`, "data-testid": "failure-list"}, `all ${fmt.int(g.tries)}`))));
    rows.push(trace);
  }
  box.append(table([["Exception"], ["Failed tries", "num"], ["Mini-batches failed", "num"], ["Retried", "num"], ["First failure"], [""]], rows));
  return box;
}

function outputBox(outputs) {
  if (!outputs.length) return h("p", {class: "muted"}, "This step has no output.");
  return outputs.map((o) => h("div", {"data-testid": "output"},
    h("dl", {class: "kv"},
      h("dt", {}, "Output"), h("dd", {}, o.name),
      o.datastore ? [h("dt", {}, "Datastore"), h("dd", {}, o.datastore)] : null,
      o.path_on_datastore ? [h("dt", {}, "Path on datastore"), h("dd", {class: "mono"}, o.path_on_datastore)] : null,
      h("dt", {}, "Local folder"), h("dd", {class: "mono"}, o.local_path || "–")),
    o.files.length ? table([["File"], ["Size", "num"]], o.files.map((f) => h("tr", {}, h("td", {class: "mono"}, f.name), h("td", {class: "num"}, fmt.bytes(f.size))))) : null,
    o.more_files ? h("p", {class: "muted"}, "… and more files") : null));
}

function logViewer(listPath, isLive) {
  const box = h("div", {class: "logs", "data-testid": "logs"});
  const list = h("ul");
  const listPager = h("div");
  const pre = h("pre", {"data-testid": "log-text"}, "");
  const label = h("span", {class: "mono"});
  const where = h("span", {class: "muted"});
  let current = null, chunk = null, followTimer = null, picked = false, listOffset = 0;
  const followBox = h("input", {type: "checkbox", onchange: () => scheduleFollow()});
  const older = h("button", {class: "small", onclick: () => load({before: chunk.start})}, "‹ older");
  const newer = h("button", {class: "small", onclick: () => load({offset: chunk.end})}, "newer ›");
  const tail = h("button", {class: "small", onclick: () => load({})}, "tail");
  async function load(params) {
    if (!current) return;
    try {
      chunk = await api(`${listPath}/${current.id}${query(params)}`);
      pre.textContent = chunk.text || "(empty)";
      older.disabled = chunk.at_start;
      newer.disabled = chunk.at_end;
      where.textContent = `bytes ${fmt.int(chunk.start)}–${fmt.int(chunk.end)} of ${fmt.int(chunk.size)}`;
      if (params.offset === undefined && params.before === undefined) pre.scrollTop = pre.scrollHeight;
    } catch (e) { pre.textContent = e.message; }
  }
  function scheduleFollow() {
    if (followTimer) clearTimeout(followTimer);
    if (!followBox.checked) return;
    followTimer = setTimeout(async () => { if (chunk && chunk.at_end) await load({}); scheduleFollow(); }, 2000);
  }
  function select(file) {
    current = file;
    for (const li of list.children) li.classList.toggle("selected", li.dataset.id === file.id);
    label.textContent = file.name;
    load({});
  }
  async function loadList(offset) {
    listOffset = offset;
    const page = await api(`${listPath}${query({limit: 100, offset})}`);
    fill(list, page.items.map((f) => {
      const li = h("li", {"data-file": f.name, "data-id": f.id, title: f.name, class: current && current.id === f.id ? "selected" : null},
        h("span", {class: "size"}, fmt.bytes(f.size)), f.name);
      li.addEventListener("click", () => { picked = true; select(f); });
      return li;
    }));
    fill(listPager, page.total > page.limit ? pager(page, loadList) : "");
    // until the user picks a file, show the most useful one (job_result.txt once it exists)
    if (!picked && page.items.length && (!current || current.id !== page.items[0].id)) select(page.items[0]);
    if (!page.items.length) pre.textContent = "No log files yet.";
  }
  // the files of a running job come and grow: list them again now and then, and at the end
  box.refresh = () => loadList(listOffset).then(() => { if (current) return load({}); }).catch(() => {});
  loadList(0).catch((e) => { pre.textContent = e.message; });
  if (isLive && isLive()) {
    followBox.checked = true;
    const again = setInterval(() => { if (!isLive()) { clearInterval(again); box.refresh(); } else loadList(listOffset).catch(() => {}); }, 5000);
  }
  scheduleFollow();
  box.append(h("div", {}, list, listPager),
    h("div", {}, h("div", {class: "toolbar"}, label, older, newer, tail, h("label", {}, followBox, " follow"), where), pre));
  return box;
}

async function pageStep(stepId) {
  let step = await api(`/api/steps/${stepId}`);
  const stats = {};
  const cards = [
    ["Mini-batches done", "stat-minibatches-done"], ["Mini-batches failed", "stat-minibatches-failed", "bad"],
    ["Items succeeded", "stat-items-succeeded", "ok"], ["Items failed", "stat-items-failed", "bad"],
    ["Retried tries", "stat-retries"], ["Items/s", "stat-rate"], ["ETA", "stat-eta"], ["Elapsed", "stat-elapsed"],
    ["Workers ready", "stat-workers"]];
  const grid = h("div", {class: "stats"});
  for (const [label, id, cls] of cards) { const [card, value] = stat(label, id, cls); stats[id] = value; grid.append(card); }
  const bar = progressBar(0, 0, 0, true);
  const badgeBox = h("span");
  const chart = h("div", {class: "chart"});
  const workers = h("div");
  const errors = h("div");
  const outputs = h("div");
  const errorBox = h("div");
  let viewer = step.logs_available ? logViewer(`/api/steps/${stepId}/logs`, () => !TERMINAL.has(step.status)) : null;
  const logsBox = h("div", {}, viewer || h("p", {class: "muted"}, "No logs in the workspace for this step (yet)."));
  const render = () => {
    fill(badgeBox, badge(step.status, "step-status"));
    setBar(bar, step.minibatches_done, step.minibatches_failed, step.minibatches_total);
    const total = step.planning_done ? fmt.int(step.minibatches_total) : `${fmt.int(step.minibatches_total)}+`;
    stats["stat-minibatches-done"].textContent = `${fmt.int(step.minibatches_done)} / ${total}`;
    stats["stat-minibatches-failed"].textContent = fmt.int(step.minibatches_failed);
    stats["stat-items-succeeded"].textContent = fmt.int(step.items_succeeded);
    stats["stat-items-failed"].textContent = fmt.int(step.items_failed);
    stats["stat-retries"].textContent = fmt.int(step.retries);
    stats["stat-rate"].textContent = fmt.rate(step.items_per_second);
    stats["stat-eta"].textContent = step.status === "Running" ? (step.eta_seconds === null ? "–" : fmt.duration(step.eta_seconds)) : "–";
    stats["stat-elapsed"].textContent = fmt.duration(step.duration);
    stats["stat-workers"].textContent = `${step.workers_ready} / ${step.workers_total}`;
    fill(workers, workerTable(step.workers));
    if (!viewer && step.logs_available) {  // a queued step got its log folder
      viewer = logViewer(`/api/steps/${stepId}/logs`, () => !TERMINAL.has(step.status));
      fill(logsBox, viewer);
    }
    fill(outputs, [outputBox(step.outputs)].flat());
    fill(errorBox, step.error && step.status !== "Finished" ? h("div", {class: "card"}, h("h2", {}, "Why the step stopped"), h("pre", {class: "error", "data-testid": "step-error"}, step.error)) : "");
  };
  // redrawn only when their data changed, so an opened traceback stays open
  let lastSeries = null, lastErrors = null;
  const refreshSlow = async () => {
    try {
      const series = await api(`/api/steps/${stepId}/throughput`);
      const key = JSON.stringify(series.points);
      if (key !== lastSeries) { lastSeries = key; drawChart(chart, series); }
    } catch (e) { /* next time */ }
    try {
      const summary = await api(`/api/steps/${stepId}/errors`);
      const key = JSON.stringify(summary);
      if (key !== lastErrors) { lastErrors = key; fill(errors, errorSummary(stepId, summary)); }
    } catch (e) { fill(errors, h("p", {class: "muted"}, e.message)); }
  };
  render();
  const parallel = step.kind === "parallel";
  show(h("div", {class: "crumbs"}, h("a", {href: "/"}, "Experiments"), " › ",
      step.experiment ? h("a", {href: `/experiments/${encodeURIComponent(step.experiment)}`}, step.experiment) : "", " › ",
      h("a", {class: "mono", href: `/runs/${encodeURIComponent(step.run_id)}`}, step.run_id), " › step"),
    h("h1", {}, h("span", {"data-testid": "step-name"}, step.name), badgeBox, step.reused_from ? h("span", {class: "muted"}, `reused from step run ${step.reused_from}`) : null),
    h("div", {class: "card"}, h("h2", {}, "Progress"), parallel ? [bar, grid] : h("p", {class: "muted"}, "A script step: see its logs below.")),
    errorBox,
    parallel ? h("div", {class: "card"}, h("h2", {}, "Throughput"), chart) : null,
    parallel ? h("div", {class: "row"},
      h("div", {class: "card"}, h("h2", {}, "Workers"), workers),
      h("div", {class: "card"}, h("h2", {}, "Output"), outputs)) : h("div", {class: "card"}, h("h2", {}, "Output"), outputs),
    parallel ? h("div", {class: "card"}, h("h2", {}, "Errors"), errors) : null,
    h("div", {class: "card"}, h("h2", {}, "Logs"), logsBox));
  refreshSlow();
  if (!TERMINAL.has(step.status)) {
    let slow = setInterval(refreshSlow, 3000);
    follow(`/api/steps/${stepId}/events`, (data) => { if (data) { step = data; render(); } },
      () => { clearInterval(slow); refreshSlow(); if (viewer) viewer.refresh(); }, `/api/steps/${stepId}`);
  }
}

async function pageFailures(stepId) {
  const params = new URLSearchParams(location.search);
  const type = params.get("type") || "";
  const offset = pageOffset();
  const step = await api(`/api/steps/${stepId}`);
  const data = await api(`/api/steps/${stepId}/errors/items${query({type, offset, limit: 50})}`);
  const rows = [];
  for (const f of data.items) {
    const trace = h("tr", {hidden: true}, h("td", {colspan: 7}, h("pre", {class: "error", "data-testid": "traceback"}, "…")));
    const open = async () => {
      trace.hidden = !trace.hidden;
      if (!trace.hidden) {
        try { trace.querySelector("pre").textContent = (await api(`/api/steps/${stepId}/errors/${f.entry}`)).traceback || "(no traceback recorded)"; }
        catch (e) { trace.querySelector("pre").textContent = e.message; }
      }
    };
    rows.push(h("tr", {"data-entry": f.entry},
      h("td", {class: "num"}, f.index), h("td", {class: "num"}, f.attempt), h("td", {}, f.outcome),
      h("td", {class: "mono"}, f.status), h("td", {}, h("div", {class: "message mono"}, f.message)),
      h("td", {class: "mono"}, `${f.node}/${f.process}`),
      h("td", {}, h("button", {class: "small", onclick: open}, "traceback"))));
    rows.push(trace);
  }
  show(h("div", {class: "crumbs"}, h("a", {class: "mono", href: `/runs/${encodeURIComponent(step.run_id)}`}, step.run_id), " › ",
      h("a", {href: `/steps/${stepId}`}, step.name), " › failures"),
    h("h1", {}, `${type} in ${step.name}`),
    h("div", {class: "card"}, table([["Mini-batch", "num"], ["Try", "num"], ["Outcome"], ["Status"], ["Message"], ["Worker"], [""]], rows, {"data-testid": "failures"}), pager(data, goOffset)));
}

async function registryPage(title, path, columns, versionColumns) {
  const offset = pageOffset();
  const data = await api(`${path}${query({limit: 50, offset})}`);
  const rows = [];
  for (const item of data.items) {
    const versions = h("tr", {hidden: true}, h("td", {colspan: columns.length + 1}));
    const toggle = async (voffset) => {
      const page = await api(`${path}/${encodeURIComponent(item.name)}/versions${query({limit: 20, offset: voffset || 0})}`);
      versions.hidden = false;
      fill(versions.firstChild, 
        table(versionColumns.map(([label, , cls]) => [label, cls]), page.items.map((v) => h("tr", {}, versionColumns.map(([, get, cls]) => h("td", {class: cls || null}, get(v)))))),
        page.total > page.limit ? pager(page, toggle) : "");
    };
    rows.push(h("tr", {"data-name": item.name},
      h("td", {}, h("a", {href: "#", onclick: (ev) => { ev.preventDefault(); if (versions.hidden) toggle(0); else versions.hidden = true; }}, item.name)),
      columns.map(([, get, cls]) => h("td", {class: cls || null}, get(item)))));
    rows.push(versions);
  }
  show(h("h1", {}, title),
    h("div", {class: "card"}, data.total ? table([["Name"], ...columns.map(([label, , cls]) => [label, cls])], rows, {"data-testid": "registry"}) : h("p", {class: "muted"}, `No ${title.toLowerCase()} registered.`),
      data.total > data.limit ? pager(data, goOffset) : null));
}

const tags = (t) => Object.entries(t || {}).map(([k, v]) => `${k}=${v}`).join(", ");

async function pageDatasets() {
  await registryPage("Datasets", "/api/datasets",
    [["Versions", (d) => fmt.int(d.versions), "num"], ["Latest", (d) => `v${d.latest_version}`], ["Kind", (d) => d.latest.kind],
     ["Files", (d) => fmt.int(d.latest.file_count), "num"], ["Size", (d) => fmt.bytes(d.latest.total_bytes), "num"], ["Updated", (d) => fmt.time(d.updated_at)]],
    [["Version", (v) => `v${v.version}`], ["Files", (v) => fmt.int(v.file_count), "num"], ["Size", (v) => fmt.bytes(v.total_bytes), "num"],
     ["Paths", (v) => v.paths.join(", ")], ["Description", (v) => v.description || ""], ["Tags", (v) => tags(v.tags)], ["Created", (v) => fmt.time(v.created_at)]]);
}

async function pageModels() {
  await registryPage("Models", "/api/models",
    [["Versions", (m) => fmt.int(m.versions), "num"], ["Latest", (m) => `v${m.latest_version}`], ["Files", (m) => fmt.int(m.latest.file_count), "num"],
     ["Size", (m) => fmt.bytes(m.latest.total_bytes), "num"], ["Tags", (m) => tags(m.latest.tags)], ["Updated", (m) => fmt.time(m.updated_at)]],
    [["Version", (v) => `v${v.version}`], ["Files", (v) => fmt.int(v.file_count), "num"], ["Size", (v) => fmt.bytes(v.total_bytes), "num"],
     ["Description", (v) => v.description || ""], ["Tags", (v) => tags(v.tags)], ["Created", (v) => fmt.time(v.created_at)]]);
}

async function pageCompute() {
  const [targets, stores] = await Promise.all([api("/api/compute"), api("/api/datastores")]);
  const props = (p) => Object.entries(p || {}).filter(([, v]) => v !== null && v !== "").map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join("; ");
  show(h("h1", {}, "Compute targets"),
    h("div", {class: "card"}, table([["Name"], ["Kind"], ["Settings"]], targets.items.map((c) => h("tr", {"data-name": c.name}, h("td", {}, c.name), h("td", {}, c.kind), h("td", {class: "mono"}, props(c.properties)))), {"data-testid": "compute"})),
    h("h1", {}, "Datastores"),
    h("div", {class: "card"}, table([["Name"], ["Kind"], ["Where"]], stores.items.map((d) => h("tr", {}, h("td", {}, d.name), h("td", {}, d.kind), h("td", {class: "mono"}, props(d.config)))))));
}

// ----------------------------------------------------------------------------------- router
const ROUTES = [
  [/^\/$/, pageExperiments, "experiments"],
  [/^\/experiments\/([^/]+)$/, pageExperimentRuns, "experiments"],
  [/^\/runs$/, pageRuns, "runs"],
  [/^\/runs\/([^/]+)$/, pageRun, "runs"],
  [/^\/steps\/([^/]+)\/failures$/, pageFailures, "runs"],
  [/^\/steps\/([^/]+)$/, pageStep, "runs"],
  [/^\/datasets$/, pageDatasets, "datasets"],
  [/^\/models$/, pageModels, "models"],
  [/^\/compute$/, pageCompute, "compute"],
];

async function start() {
  // the cancel token arrives in the URL's fragment (never sent to a server); keep it for this tab
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("token")) {
    sessionStorage.setItem("parallelrun-token", fragment.get("token"));
    history.replaceState(null, "", location.pathname + location.search);
  }
  api("/api/workspace").then((ws) => {
    document.getElementById("workspace").textContent = `workspace ${ws.name} · ${ws.path}`;
  }).catch(() => {});
  for (const [pattern, render, nav] of ROUTES) {
    const match = location.pathname.match(pattern);
    if (!match) continue;
    for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.dataset.nav === nav);
    try {
      await render(...match.slice(1).map(decodeURIComponent));
    } catch (e) {
      show(failure(e));
    }
    document.body.dataset.ready = "1";
    return;
  }
  show(failure(new Error(`no page at ${location.pathname}`)));
}

document.addEventListener("DOMContentLoaded", start);
