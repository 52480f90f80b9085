// The sandbox console: polls /console/api/overview with the cursor of the last history record
// it saw (the answer is tiny while nothing happens), and draws what the JSON says. Every value
// from the sandbox goes into the page as text, never as HTML.

const API = "api/";
const POLL_MS = 1000;
const SVG_NS = "http://www.w3.org/2000/svg";

const state = {
  cursor: null,
  overview: null,
  journeyKey: null, // {table, key} of the open journey
  journey: null,
  fresh: new Set(), // keys the Create button made, highlighted once they show up
};

// Small helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function setAttrs(node, attrs) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
}

function duration(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(2)} s`;
  const minutes = Math.floor(ms / 60000);
  return `${minutes} min ${Math.round((ms - minutes * 60000) / 1000)} s`;
}

function clock(epoch) {
  if (!epoch) return "–";
  const d = new Date(epoch * 1000);
  const two = (n) => String(n).padStart(2, "0");
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.` +
    String(d.getMilliseconds()).padStart(3, "0");
}

// Column names of steps: `time_order_service` and `time_invoice_service` read "order" and
// "invoice" (what they share says nothing); the full name is in the tooltip.
function stepLabels(attributes) {
  const words = attributes.map((a) => a.replace(/^time_/, "").split("_"));
  let shared = 0;
  while (words.length > 1 && words.every((w) => w.length > shared + 1 &&
    w[w.length - 1 - shared] === words[0][words[0].length - 1 - shared])) shared += 1;
  return words.map((w) => w.slice(0, w.length - shared).join(" "));
}

function statusBadge(status) {
  const label = status || "no history";
  const kind = { complete: "ok", failed: "bad", "in progress": "busy" }[status] || "none";
  const icon = { ok: "✓", bad: "✕", busy: "…", none: "·" }[kind];
  return el("span", { class: `badge ${kind}` }, el("span", { "aria-hidden": "true", text: icon }),
    ` ${label}`);
}

async function getJSON(path) {
  const answer = await fetch(path, { cache: "no-store" });
  if (!answer.ok) {
    let message = `${answer.status}`;
    try { message = (await answer.json()).message || message; } catch { /* not JSON */ }
    throw new Error(message);
  }
  return answer.json();
}

// Polling

async function poll() {
  try {
    const since = state.cursor === null ? "" : `?since=${state.cursor}`;
    const overview = await getJSON(`${API}overview${since}`);
    const changed = !overview.unchanged;
    state.cursor = overview.cursor;
    if (changed) {
      state.overview = overview;
      renderOverview();
    }
    if (state.journeyKey && (changed || !state.journey)) await loadJourney();
    setLive(true);
  } catch (error) {
    setLive(false, error.message);
  }
}

async function pollForever() {
  await poll();
  setTimeout(pollForever, POLL_MS);
}

// The text changes only when the connection does, so screen readers are not told each second.
function setLive(ok, message) {
  const live = document.getElementById("live");
  const text = ok ? "Live" : `Sandbox not answering (${message}): retrying`;
  live.classList.toggle("down", !ok);
  if (live.textContent !== text) live.textContent = text;
  live.title = `Last answer at ${clock(Date.now() / 1000)}`;
}

// Header: title and the API's buttons

function renderHeader(overview) {
  document.getElementById("title").textContent =
    `${overview.title} · tables: ${overview.tables.join(", ") || "none"}`;
  document.title = `${overview.title} · Sandbox console`;
  const calls = document.getElementById("calls");
  if (calls.childElementCount) return;
  for (const call of overview.calls) {
    calls.append(el("div", { class: "call" },
      el("button", { type: "button", class: "primary", onclick: () => callApi(call) },
        call.label),
      el("code", { class: "muted", text: `${call.method} ${call.path}` })));
  }
}

async function callApi(call) {
  const answerBox = document.getElementById("answer");
  answerBox.replaceChildren(`Calling ${call.method} ${call.path}…`);
  try {
    const answer = await fetch(call.path, { cache: "no-store" });
    const body = await answer.text();
    const keyName = Object.values(state.overview?.keys || {})[0];
    let key = null;
    try { key = keyName && JSON.parse(body)[keyName]; } catch { /* not JSON */ }
    const parts = [el("span", { class: answer.ok ? "code ok" : "code bad", text: answer.status }),
      el("code", { text: body })];
    if (typeof key === "string") {
      state.fresh.add(key);
      parts.push(el("button", { type: "button", class: "quiet",
        onclick: () => openJourney({ key }) }, "Show its journey"));
    }
    answerBox.replaceChildren(...parts);
  } catch (error) {
    answerBox.replaceChildren(el("span", { class: "code bad", text: "failed" }),
      ` ${error.message}`);
  }
  poll();
}

// The list of items

function renderOverview() {
  const overview = state.overview;
  renderHeader(overview);
  const noun = overview.noun;
  const plural = `${noun[0].toUpperCase()}${noun.slice(1)}s`;
  document.getElementById("items-heading").textContent = plural;
  document.getElementById("items-count").textContent = overview.total;
  const shown = overview.items.length < overview.total
    ? ` Showing the newest ${overview.items.length} of ${overview.total}.` : "";
  document.getElementById("items-caption").textContent =
    `${plural}, newest first. Each step shows its time after the ${noun} started.${shown}`;
  renderItems(overview);
  renderFailures(overview);
}

function renderItems(overview) {
  const table = document.getElementById("items");
  const head = table.tHead.rows[0];
  const multiTable = overview.tables.length > 1;
  const keyName = [...new Set(Object.values(overview.keys))].join(" / ") || "Key";
  const labels = stepLabels(overview.steps);
  head.replaceChildren(...[
    el("th", { scope: "col", text: keyName }),
    multiTable ? el("th", { scope: "col", text: "Table" }) : null,
    el("th", { scope: "col", text: "Started" }),
    ...overview.steps.map((s, i) => el("th", { scope: "col", class: "num", title: s,
      text: labels[i] })),
    el("th", { scope: "col", text: "Status" }),
    el("th", { scope: "col", class: "num", text: "Took" })].filter(Boolean));
  const rows = overview.items.map((item) => {
    const open = state.journeyKey && state.journeyKey.key === item.key &&
      (!state.journeyKey.table || state.journeyKey.table === item.table);
    const row = el("tr", { class: state.fresh.has(item.key) ? "fresh" : null,
      "aria-current": open ? "true" : null },
      el("td", {}, el("button", { type: "button", class: "link mono",
        "aria-label": `Show the journey of ${overview.noun} ${item.key}`,
        onclick: () => openJourney({ table: item.table, key: item.key }) }, item.key)),
      multiTable ? el("td", { text: item.table }) : null,
      el("td", { class: "mono", title: item.origin_time || "", text: clock(item.origin) }),
      ...overview.steps.map((s) => item.steps[s] === undefined
        ? el("td", { class: "num pending", text: "–", "aria-label": "not yet" })
        : el("td", { class: "num", text: `+${duration(item.steps[s])}` })),
      el("td", {}, statusBadge(item.status)),
      el("td", { class: "num", text: duration(item.duration_ms) }));
    row.dataset.key = item.key;
    return row;
  });
  table.tBodies[0].replaceChildren(...rows);
  document.getElementById("items-empty").hidden = rows.length > 0;
}

// One item's journey

function openJourney(which) {
  state.journeyKey = which;
  state.journey = null;
  history.replaceState(null, "", `#journey=${encodeURIComponent(which.key)}`);
  selectTab("items");
  loadJourney().then(() => {
    document.getElementById("journey").scrollIntoView({ behavior: "smooth", block: "start" });
    document.getElementById("journey-title").focus({ preventScroll: true });
  });
}

function closeJourney() {
  state.journeyKey = null;
  state.journey = null;
  history.replaceState(null, "", "#");
  document.getElementById("journey").hidden = true;
  if (state.overview) renderItems(state.overview);
}

async function loadJourney() {
  const which = state.journeyKey;
  const query = new URLSearchParams({ key: which.key });
  if (which.table) query.set("table", which.table);
  try {
    state.journey = await getJSON(`${API}journey?${query}`);
  } catch (error) {
    state.journey = null;
    showJourneyMessage(`No journey for ${which.key}: ${error.message}`);
    return;
  }
  renderJourney(state.journey);
  if (state.overview) renderItems(state.overview);
}

function showJourneyMessage(message) {
  const section = document.getElementById("journey");
  section.hidden = false;
  document.getElementById("journey-title").textContent = "Journey";
  document.getElementById("journey-summary").textContent = message;
  document.getElementById("timeline").replaceChildren();
  document.getElementById("steps").tBodies[0].replaceChildren();
}

function renderJourney(journey) {
  const noun = state.overview?.noun || "item";
  const section = document.getElementById("journey");
  section.hidden = false;
  const title = document.getElementById("journey-title");
  title.textContent = `Journey of ${noun} ${journey.key}`;
  title.tabIndex = -1;
  document.getElementById("journey-summary").replaceChildren(
    statusBadge(journey.status),
    ` · started ${clock(journey.origin)} · took ${duration(journey.duration_ms)} · ` +
    `${journey.steps.length} steps · ${journey.lanes.length} services`);
  const open = new Set([...section.querySelectorAll("details[open]")].map((d) => d.dataset.id));
  document.getElementById("timeline").replaceChildren(drawTimeline(journey));
  renderSteps(journey, open);
  renderOtherLogs(journey);
}

function renderSteps(journey, open) {
  const rows = journey.entries.map((entry, index) => {
    const failed = entry.ok === false || entry.kind === "dead-letter";
    const what = el("td", {}, el("span", { text: entry.text }));
    if (entry.kind === "invocation" && entry.logs.length) {
      const id = `${entry.request_id}/${entry.attempt ?? 0}`;
      what.append(el("details", { "data-id": id, open: open.has(id) },
        el("summary", {}, `Log lines and REPORT (${entry.logs.length})`),
        el("pre", { class: "log", text: entry.logs.join("\n") })));
    }
    const row = el("tr", { id: `entry-${index}`,
      class: [`kind-${entry.kind}`, failed ? "failed" : "", entry.retry ? "retry" : ""].join(" ") },
    el("td", { class: "num mono", text: `+${duration(entry.offset_ms)}` }),
    el("td", { text: entry.lane }),
    what);
    return row;
  });
  document.getElementById("steps").tBodies[0].replaceChildren(...rows);
}

function renderOtherLogs(journey) {
  const box = document.getElementById("other-logs");
  if (!journey.other_logs.length) { box.replaceChildren(); return; }
  box.replaceChildren(el("h3", { text: "Other log lines naming it" }),
    el("pre", { class: "log", text: journey.other_logs.map((l) => `[${l.lane}] ${l.line}`)
      .join("\n") }));
}

// The timeline: one lane per service, time to the right.

function niceStep(span) {
  const raw = span / 6;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) || power * 10;
}

function drawTimeline(journey) {
  const width = Math.max(640, document.getElementById("timeline").clientWidth || 960);
  const labelW = 180, padR = 150, axisH = 30, laneH = 54;
  const lanes = journey.lanes.map((l) => l.name);
  const height = axisH + lanes.length * laneH + 6;
  const end = Math.max(1, ...journey.entries.map((e) => e.end_offset_ms ?? e.offset_ms));
  const span = end * 1.03;
  const plotW = width - labelW - padR;
  const x = (ms) => labelW + (ms / span) * plotW;
  const laneTop = (name) => axisH + lanes.indexOf(name) * laneH;
  const barY = (name) => laneTop(name) + 12;
  const barH = 16;
  const mid = (name) => barY(name) + barH / 2;

  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-labelledby": "timeline-title timeline-desc", class: "chart" });
  root.append(
    svg("title", { id: "timeline-title", text: `Timeline of ${journey.key}` }),
    svg("desc", { id: "timeline-desc", text: journey.lanes.map((l) =>
      `${l.name} first acted at ${duration(l.first_offset_ms)}`).join("; ") }),
    svg("defs", {},
      svg("pattern", { id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse",
        patternTransform: "rotate(45)" },
      svg("rect", { width: 6, height: 6, class: "init-bg" }),
      svg("line", { x1: 0, y1: 0, x2: 0, y2: 6, class: "init-line" })),
      svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7,
        markerHeight: 7, orient: "auto-start-reverse" },
      svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-head" })),
      svg("marker", { id: "arrow-bad", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7,
        markerHeight: 7, orient: "auto-start-reverse" },
      svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-head bad" }))));

  // Lanes and their names
  lanes.forEach((name, i) => {
    const top = laneTop(name);
    root.append(svg("rect", { x: 0, y: top, width, height: laneH,
      class: i % 2 ? "lane odd" : "lane" }));
    root.append(svg("text", { x: 12, y: top + laneH / 2 + 5, class: "lane-name", text: name }));
  });
  // Time axis
  const step = niceStep(span);
  for (let t = 0; t <= span; t += step) {
    root.append(svg("line", { x1: x(t), x2: x(t), y1: axisH - 6, y2: height, class: "grid" }));
    root.append(svg("text", { x: x(t), y: axisH - 12, class: "tick", "text-anchor": "middle",
      text: duration(t) }));
  }

  const targets = journey.entries.filter((e) => e.kind === "invocation");
  // Events: a dot where they were published, an arrow to each target's first run
  for (const event of journey.entries.filter((e) => e.kind === "event")) {
    const deliveries = journey.entries.filter((e) => e.kind === "delivery" &&
      e.event_id === event.event_id);
    const seen = new Set();
    for (const delivery of deliveries) {
      if (seen.has(delivery.lane) && delivery.ok) continue;
      seen.add(delivery.lane);
      const run = targets.find((r) => r.event_id === event.event_id && r.lane === delivery.lane);
      const toX = run && delivery.ok ? x(run.offset_ms) : x(delivery.offset_ms);
      const toY = barY(delivery.lane) - 1;
      const fromY = mid(event.lane) + (mid(delivery.lane) > mid(event.lane) ? 6 : -6);
      root.append(svg("path", {
        d: `M${x(event.offset_ms)},${fromY} C${x(event.offset_ms)},${(fromY + toY) / 2} ` +
          `${toX},${(fromY + toY) / 2} ${toX},${toY}`,
        class: delivery.ok ? "delivery" : "delivery bad",
        "marker-end": delivery.ok ? "url(#arrow)" : "url(#arrow-bad)" },
      svg("title", { text: `${delivery.lane}: ${delivery.text}` })));
    }
  }
  // Invocations: cold start, then the handler's run
  journey.entries.forEach((entry, index) => {
    if (entry.kind !== "invocation") return;
    const y = barY(entry.lane);
    const initEnd = entry.offset_ms + (entry.init_duration_ms || 0);
    const group = svg("g", { class: "hit", tabindex: 0, role: "button",
      "aria-label": `${entry.lane}: ${entry.text}`, onclick: () => focusEntry(index),
      onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") focusEntry(index); } },
    svg("title", { text: `${entry.lane} +${duration(entry.offset_ms)}: ${entry.text}` }));
    if (entry.init_duration_ms) {
      group.append(svg("rect", { x: x(entry.offset_ms), y, height: barH,
        width: Math.max(1, x(initEnd) - x(entry.offset_ms)), class: "init" }));
    }
    group.append(svg("rect", { x: x(initEnd), y, height: barH,
      width: Math.max(3, x(entry.end_offset_ms) - x(initEnd)), class: entry.ok ? "run" : "run bad" }));
    if (entry.trigger === "api") {
      group.append(svg("text", { x: x(entry.offset_ms) - 4, y: y + 12, class: "tag",
        "text-anchor": "end", text: "API" }));
    }
    root.append(group);
  });
  // Retries and failures: one note after the last attempt of each delivery to a service
  const attempts = new Map();
  for (const run of targets) {
    const id = `${run.request_id}`;
    attempts.set(id, [...(attempts.get(id) || []), run]);
  }
  for (const runs of attempts.values()) {
    const last = runs[runs.length - 1];
    const failures = runs.filter((r) => !r.ok).length;
    if (!failures) continue;
    const note = last.ok ? `ok after ${failures} failed attempt${failures > 1 ? "s" : ""}`
      : `✕ failed ${runs.length} attempt${runs.length > 1 ? "s" : ""}`;
    root.append(label(x(last.end_offset_ms) + 5, barY(last.lane) + 12, note,
      last.ok ? "tag busy" : "tag bad"));
  }
  // Events on top of the bars they leave from
  for (const event of journey.entries.filter((e) => e.kind === "event")) {
    root.append(svg("g", { class: "event-mark" },
      svg("circle", { cx: x(event.offset_ms), cy: mid(event.lane), r: 5.5, class: "event" }),
      svg("text", { x: x(event.offset_ms) + 8, y: mid(event.lane) - 9, class: "tag event-name",
        text: event.detail_type }),
      svg("title", { text: `+${duration(event.offset_ms)} ${event.lane}: ${event.text}` })));
  }
  // Stamps and failure-queue marks under the bars
  for (const entry of journey.entries) {
    if (entry.kind === "stamp") {
      const cx = x(entry.offset_ms), cy = barY(entry.lane) + barH + 12;
      root.append(svg("g", {},
        svg("path", { d: `M${cx},${cy - 6} L${cx + 6},${cy} L${cx},${cy + 6} L${cx - 6},${cy} z`,
          class: "stamp" }),
        svg("text", { x: cx + 9, y: cy + 4, class: "tag", text: `+${duration(entry.offset_ms)}` }),
        svg("title", { text: `+${duration(entry.offset_ms)} ${entry.text}` })));
    } else if (entry.kind === "dead-letter") {
      const cx = x(entry.offset_ms), cy = barY(entry.lane) + barH + 12;
      root.append(svg("g", {},
        svg("rect", { x: cx - 6, y: cy - 6, width: 12, height: 12, class: "dlq" }),
        label(cx + 10, cy + 4, "to a failure queue", "tag bad"),
        svg("title", { text: `+${duration(entry.offset_ms)} ${entry.lane}: ${entry.text}` })));
    }
  }
  return root;

  // A text mark that stays inside the chart: near the right edge it ends where it starts.
  function label(atX, atY, text, cls) {
    const nearEdge = atX > width - 8 * text.length - 12;
    return svg("text", { x: nearEdge ? atX - 14 : atX, y: nearEdge ? atY - 16 : atY,
      "text-anchor": nearEdge ? "end" : "start", class: cls, text });
  }
}

function focusEntry(index) {
  const row = document.getElementById(`entry-${index}`);
  if (!row) return;
  const details = row.querySelector("details");
  if (details) details.open = true;
  row.scrollIntoView({ behavior: "smooth", block: "center" });
  row.classList.remove("flash");
  void row.offsetWidth; // restart the animation
  row.classList.add("flash");
}

// Failure queues

function renderFailures(overview) {
  const total = overview.failures.reduce((n, q) => n + q.count, 0);
  const count = document.getElementById("failures-count");
  count.textContent = total;
  count.classList.toggle("alert", total > 0);
  const box = document.getElementById("failures");
  const full = overview.failures.filter((q) => q.messages.length);
  const empty = overview.failures.filter((q) => !q.messages.length);
  const sections = full.map((queue) => el("section", { class: "queue" },
    el("h3", {}, queue.queue, " ", el("span", { class: "count alert", text: queue.count })),
    queue.count > queue.messages.length
      ? el("p", { class: "muted", text: `The newest ${queue.messages.length} are shown.` }) : null,
    el("ul", { class: "messages" }, ...queue.messages.map((m) => failureCard(m, overview)))));
  if (empty.length) {
    sections.push(el("p", { class: "muted" },
      `${full.length ? "Empty" : "All empty"}: ${empty.map((q) => q.queue).join(", ")}.`));
  }
  if (!overview.failures.length) sections.push(el("p", { class: "muted",
    text: "The template declares no dead-letter queue or on-failure destination." }));
  box.replaceChildren(...sections);
}

function failureCard(message, overview) {
  const noun = overview.noun;
  const belongs = message.items.length
    ? message.items.map((item) => el("button", { type: "button", class: "link mono",
      "aria-label": `Show the journey of ${noun} ${item.key}`,
      onclick: () => openJourney(item) }, item.key))
    : [el("span", { class: "muted", text: `none: the message names no ${noun}` })];
  const event = message.event
    ? `${message.event.detail_type} from ${message.event.source} (event ${message.event.id})`
    : "not an event";
  const from = message.source === "lambda"
    ? "Lambda gave up after its retries" : "EventBridge could not deliver it";
  return el("li", { class: "message" },
    el("p", { class: "reason" }, el("span", { "aria-hidden": "true", text: "✕ " }), message.reason),
    el("dl", {},
      el("dt", { text: noun[0].toUpperCase() + noun.slice(1) }), el("dd", {}, ...belongs),
      el("dt", { text: "Event" }), el("dd", { text: event }),
      el("dt", { text: "Why here" }),
      el("dd", { text: `${from}: ${message.attempts} attempt${message.attempts === 1 ? "" : "s"}` }),
      el("dt", { text: "Sent" }), el("dd", { class: "mono", title: message.sent_time,
        text: clock(message.sent) })),
    el("details", {}, el("summary", { text: "The message" }),
      el("pre", { class: "log", text: JSON.stringify({ attributes: message.attributes,
        body: message.body }, null, 2) })));
}

// Tabs

function selectTab(name) {
  for (const tab of ["items", "failures"]) {
    const selected = tab === name;
    const button = document.getElementById(`tab-${tab}`);
    button.setAttribute("aria-selected", String(selected));
    button.tabIndex = selected ? 0 : -1;
    document.getElementById(`panel-${tab}`).hidden = !selected;
  }
}

function setUpTabs() {
  const names = ["items", "failures"];
  names.forEach((name, i) => {
    const tab = document.getElementById(`tab-${name}`);
    tab.addEventListener("click", () => selectTab(name));
    tab.addEventListener("keydown", (e) => {
      const move = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
      if (!move) return;
      const next = names[(i + move + names.length) % names.length];
      selectTab(next);
      document.getElementById(`tab-${next}`).focus();
    });
  });
}

// Start

setUpTabs();
document.getElementById("journey-close").addEventListener("click", closeJourney);
const linked = location.hash.match(/^#journey=(.+)$/);
if (linked) openJourney({ key: decodeURIComponent(linked[1]) });
let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => { if (state.journey) renderJourney(state.journey); }, 150);
});
pollForever();
