// The sandbox console, for any app: polls /console/api/traces with the cursor of the last span
// it saw (an empty answer while nothing happens) and merges the traces that changed; the open
// trace, resource or failure list is read again only when something did. Every value from the
// sandbox goes into the page as text, never as HTML.

const API = "api/";
const POLL_MS = 1000;
const KEEP = 100; // traces listed

const state = {
  app: null,
  cursor: null,
  traces: new Map(), // trace_id -> summary
  search: null, // {query, traces} while a search is shown
  traceId: null, // the open trace
  traceShown: false, // its spans are on the page
  resource: null, // {type, name, label} of the open resource
  tab: "traces",
};

// Small helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function duration(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms < 1000) return `${Math.round(ms * 10) / 10} ms`;
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

function badge(ok, text) {
  return el("span", { class: `badge ${ok ? "ok" : "bad"}` },
    el("span", { "aria-hidden": "true", text: ok ? "✓" : "✕" }), ` ${text}`);
}

function traceButton(traceId, label) {
  return el("button", { type: "button", class: "link mono", "aria-label": `Show trace ${traceId}`,
    onclick: () => openTrace(traceId) }, label || traceId);
}

function show(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

async function getJSON(path) {
  const answer = await fetch(API + path, { cache: "no-store" });
  if (!answer.ok) {
    let message = `${answer.status}`;
    try { message = (await answer.json()).message || message; } catch { /* not JSON */ }
    throw new Error(message);
  }
  return answer.json();
}

// Polling: only the traces that changed since the cursor come back.

async function poll() {
  try {
    if (!state.app) {
      state.app = await getJSON("app");
      renderApp();
    }
    const since = state.cursor === null ? "" : `?since=${state.cursor}`;
    const answer = await getJSON(`traces${since}`);
    const changed = state.cursor === null || answer.cursor !== state.cursor;
    if (answer.reset) state.traces.clear();
    for (const t of answer.traces) state.traces.set(t.trace_id, t);
    state.cursor = answer.cursor;
    if (changed) await refresh(answer.traces.map((t) => t.trace_id));
    setLive(true);
  } catch (error) {
    setLive(false, error.message);
  }
}

async function refresh(changedIds) {
  renderTraces();
  if (state.traceId && (changedIds.includes(state.traceId) || !state.traceShown)) {
    await loadTrace();
  }
  if (state.resource && state.tab === "resources") await loadResource();
  await loadFailures();
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

// The app: title, the route form, the resources

function renderApp() {
  const app = state.app;
  document.getElementById("title").textContent = app.title;
  document.title = `${app.title} · Sandbox console`;
  renderCallForm(app.routes);
  renderResourceList(app.resources);
}

function renderCallForm(routes) {
  const form = document.getElementById("call");
  form.hidden = routes.length === 0;
  const select = document.getElementById("call-route");
  select.replaceChildren(...routes.map((r, i) => el("option", { value: i,
    text: `${r.methods.length > 1 ? "ANY" : r.methods[0]} ${r.path}` })));
  const pick = () => {
    const route = routes[select.value];
    document.getElementById("call-method").replaceChildren(
      ...route.methods.map((m) => el("option", { text: m })));
    document.getElementById("call-parameters").replaceChildren(...route.parameters.map((p) =>
      el("label", {}, `${p} `, el("input", { name: p, required: true, "aria-label": p }))));
    toggleBody();
  };
  const toggleBody = () => {
    const method = document.getElementById("call-method").value;
    document.getElementById("call-body-label").hidden = method === "GET" || method === "DELETE";
  };
  select.addEventListener("change", pick);
  document.getElementById("call-method").addEventListener("change", toggleBody);
  form.addEventListener("submit", (e) => { e.preventDefault(); callRoute(routes[select.value]); });
  if (routes.length) pick();
}

async function callRoute(route) {
  const method = document.getElementById("call-method").value;
  let path = route.path;
  for (const input of document.querySelectorAll("#call-parameters input")) {
    const value = input.value;
    path = path.replace(`{${input.name}}`, input.name.endsWith("+") ? value
      : encodeURIComponent(value));
  }
  const bodyText = document.getElementById("call-body").value;
  const options = { method, cache: "no-store" };
  if (method !== "GET" && method !== "DELETE" && bodyText) {
    options.body = bodyText;
    options.headers = { "Content-Type": "application/json" };
  }
  const box = document.getElementById("answer");
  box.replaceChildren(`Calling ${method} ${path}…`);
  try {
    const answer = await fetch(path, options);
    const body = await answer.text();
    const traceId = (answer.headers.get("X-Amzn-Trace-Id") || "").replace(/^Root=/, "")
      .split(";")[0];
    box.replaceChildren(
      el("span", { class: answer.ok ? "code ok" : "code bad", text: answer.status }),
      el("code", { text: `${method} ${path}` }), el("code", { text: body }),
      traceId ? el("button", { type: "button", class: "quiet",
        onclick: () => openTrace(traceId) }, "Show its trace") : null);
  } catch (error) {
    box.replaceChildren(el("span", { class: "code bad", text: "failed" }), ` ${error.message}`);
  }
  poll();
}

// The list of traces (or of a search's)

function renderTraces() {
  const list = state.search ? state.search.traces
    : [...state.traces.values()].sort((a, b) => b.start - a.start).slice(0, KEEP);
  if (!state.search) {
    for (const id of [...state.traces.keys()]) {
      if (!list.some((t) => t.trace_id === id)) state.traces.delete(id);
    }
  }
  document.getElementById("traces-count").textContent = state.traces.size;
  const rows = list.map((t) => el("tr", { "aria-current": t.trace_id === state.traceId ? "true"
    : null },
  el("td", { class: "mono", text: clock(t.start) }),
  el("td", {}, traceButton(t.trace_id, t.entry)),
  el("td", { class: "num", text: duration(t.duration_ms) }),
  el("td", { text: t.services.join(", ") }),
  el("td", { title: t.errors.join("\n") }, badge(t.ok, t.ok ? `${t.spans} spans`
    : `${t.errors.length} failed`))));
  document.getElementById("traces").tBodies[0].replaceChildren(...rows);
  document.getElementById("traces-empty").hidden = rows.length > 0;
}

async function search(text) {
  if (!text.trim()) { clearSearch(); return; }
  const found = await getJSON(`search?q=${encodeURIComponent(text)}`);
  state.search = found;
  document.getElementById("search-note").hidden = false;
  document.getElementById("search-what").textContent =
    `${found.traces.length} trace${found.traces.length === 1 ? "" : "s"} found for “${text}”.`;
  selectTab("traces");
  renderTraces();
  if (found.traces.length === 1) openTrace(found.traces[0].trace_id);
}

function clearSearch() {
  state.search = null;
  document.getElementById("search-note").hidden = true;
  document.getElementById("search-text").value = "";
  renderTraces();
}

// One trace as a waterfall

function openTrace(traceId) {
  state.traceId = traceId;
  state.traceShown = false;
  history.replaceState(null, "", `#trace=${encodeURIComponent(traceId)}`);
  selectTab("traces");
  loadTrace().then(() => {
    document.getElementById("trace").scrollIntoView({ block: "start" });
    document.getElementById("trace-title").focus({ preventScroll: true });
  });
}

function closeTrace() {
  state.traceId = null;
  history.replaceState(null, "", "#");
  document.getElementById("trace").hidden = true;
  renderTraces();
}

async function loadTrace() {
  const section = document.getElementById("trace");
  section.hidden = false;
  let trace;
  try {
    trace = await getJSON(`trace?id=${encodeURIComponent(state.traceId)}`);
  } catch (error) {
    document.getElementById("trace-title").textContent = `Trace ${state.traceId}`;
    document.getElementById("trace-summary").textContent = `Not yet: ${error.message}`;
    document.getElementById("waterfall").tBodies[0].replaceChildren();
    return;
  }
  state.traceShown = true;
  document.getElementById("trace-title").textContent = `Trace ${trace.trace_id}`;
  document.getElementById("trace-summary").replaceChildren(
    badge(trace.ok, trace.ok ? "ok" : trace.errors.join("; ")),
    ` · ${trace.entry} · started ${clock(trace.start)} · took ${duration(trace.duration_ms)}` +
    ` · ${trace.spans.length} spans · ${trace.services.length} services`);
  const open = new Set([...section.querySelectorAll("details[open]")].map((d) => d.dataset.id));
  const total = Math.max(trace.duration_ms, 0.001);
  const rows = trace.spans.map((span) => spanRow(span, total, open));
  document.getElementById("waterfall").tBodies[0].replaceChildren(...rows);
  renderTraces();
}

function spanRow(span, total, open) {
  const name = el("td", { class: "span-name" });
  name.style.paddingLeft = `${0.4 + span.depth * 1.1}rem`;
  name.append(el("span", { text: span.name }),
    ...span.marks.map((m) => el("span", { class: `mark ${m === "failed" ? "bad" : "busy"}`,
      text: m })));
  if (span.reason) name.append(el("div", { class: span.ok ? "muted" : "reason",
    text: span.reason }));
  if (span.logs && span.logs.length) {
    name.append(el("details", { "data-id": span.span_id, open: open.has(span.span_id) },
      el("summary", {}, `Log lines (${span.logs.length})`),
      el("pre", { class: "log", text: span.logs.join("\n") })));
  }
  const bar = el("div", { class: `bar ${span.ok ? span.kind : "bad"}`,
    title: `+${duration(span.offset_ms)} for ${duration(span.duration_ms)}` });
  bar.style.marginLeft = `${(span.offset_ms / total) * 100}%`;
  bar.style.width = `${Math.max((span.duration_ms / total) * 100, 0.4)}%`;
  return el("tr", { class: `kind-${span.kind}${span.ok ? "" : " failed"}`,
    "data-depth": span.depth },
  name, el("td", { text: span.service }),
  el("td", { class: "num", text: duration(span.duration_ms) }),
  el("td", { class: "bars" }, el("div", { class: "track" }, bar)));
}

// Resources: buses, functions, queues, tables

const RESOURCE_NAMES = { bus: "Event buses", function: "Functions", queue: "Queues",
  table: "Tables" };
const RESOURCE_NAME = { bus: "Event bus", function: "Function", queue: "Queue", table: "Table" };

function renderResourceList(resources) {
  const groups = Object.entries(RESOURCE_NAMES).filter(([type]) => resources[type].length)
    .map(([type, heading]) => el("section", {}, el("h3", { text: heading }),
      el("ul", {}, ...resources[type].map((r) => el("li", {},
        el("button", { type: "button", class: "link", "data-type": type,
          onclick: () => openResource({ type, ...r }) }, r.label),
        r.failure ? el("span", { class: "muted", text: " failure queue" }) : null)))));
  document.getElementById("resource-list").replaceChildren(...groups);
}

function openResource(resource) {
  state.resource = resource;
  selectTab("resources");
  loadResource().then(() => document.getElementById("resource-title").focus());
}

async function loadResource() {
  const r = state.resource;
  const view = await getJSON(`resource?type=${r.type}&name=${encodeURIComponent(r.name)}`);
  document.getElementById("resource-title").textContent =
    `${RESOURCE_NAME[r.type]} ${r.label}`;
  const [head, rows, note] = RESOURCE_VIEWS[r.type](view, r);
  document.getElementById("resource-note").textContent = note;
  const table = document.getElementById("resource-rows");
  table.tHead.rows[0].replaceChildren(...head.map((h) => el("th", { scope: "col", text: h })));
  table.tBodies[0].replaceChildren(...rows.map((cells) => el("tr", {},
    ...cells.map((c) => (c instanceof Node ? el("td", {}, c) : el("td", { text: show(c) }))))));
}

function logs(lines, id) {
  return lines.length ? el("details", { "data-id": id },
    el("summary", {}, `Log lines (${lines.length})`),
    el("pre", { class: "log", text: lines.join("\n") })) : el("span", { class: "muted",
    text: "none" });
}

const RESOURCE_VIEWS = {
  bus: (view, r) => [["Put", "Event", "Source", "Rules matched", "Trace"],
    view.rows.map((e) => [clock(e.start), e.detail_type, e.source,
      e.rules.length ? e.rules.join(", ") : "none", traceButton(e.trace_id)]),
    `Rules: ${r.rules.join(", ") || "none"}. The newest ${view.rows.length} events.`],
  function: (view) => [["Started", "Trigger", "Took", "Status", "Logs", "Trace"],
    view.rows.map((i) => [clock(i.start), i.trigger, duration(i.duration_ms),
      badge(i.ok, [i.ok ? "ok" : i.reason, ...i.marks.filter((m) => m !== "failed")]
        .join(" · ")),
      logs(i.logs, i.request_id), traceButton(i.trace_id)]),
    `The newest ${view.rows.length} invocations.`],
  queue: (view) => [["Sent", "Message ID", "By", "Body", "Trace"],
    view.rows.map((m) => [clock(m.start), m.message_id, m.via, m.body, traceButton(m.trace_id)]),
    `Holds ${view.held} message${view.held === 1 ? "" : "s"} now; the newest ` +
    `${view.rows.length} sent are listed.`],
  table: (view) => [[...view.key, "Attributes", ""],
    view.rows.map((row) => [...view.key.map((k) => row.key[k]), row.item,
      el("button", { type: "button", class: "quiet",
        onclick: () => search(show(row.key[view.key[0]])) }, "Find its traces")]),
    `Key: ${view.key.join(" + ")}. ${view.rows.length} item${view.rows.length === 1 ? ""
      : "s"}${view.more ? " (the first page)" : ""}.`],
};

// Failure queues

async function loadFailures() {
  const failures = await getJSON("failures");
  const total = failures.reduce((n, q) => n + q.count, 0);
  const count = document.getElementById("failures-count");
  count.textContent = total;
  count.classList.toggle("alert", total > 0);
  const full = failures.filter((q) => q.messages.length);
  const empty = failures.filter((q) => !q.messages.length);
  const sections = full.map((queue) => el("section", { class: "queue" },
    el("h3", {}, queue.queue, " ", el("span", { class: "count alert", text: queue.count })),
    queue.count > queue.messages.length
      ? el("p", { class: "muted", text: `The newest ${queue.messages.length} are shown.` }) : null,
    el("ul", { class: "messages" }, ...queue.messages.map(failureCard))));
  if (empty.length) {
    sections.push(el("p", { class: "muted" },
      `${full.length ? "Empty" : "All empty"}: ${empty.map((q) => q.queue).join(", ")}.`));
  }
  if (!failures.length) sections.push(el("p", { class: "muted",
    text: "The template declares no dead-letter queue or on-failure destination." }));
  document.getElementById("failures").replaceChildren(...sections);
}

function failureCard(message) {
  const event = message.event
    ? `${message.event.detail_type} from ${message.event.source} (event ${message.event.id})`
    : "not an event";
  const from = message.source === "lambda"
    ? "Lambda gave up after its retries" : "EventBridge could not deliver it";
  return el("li", { class: "message" },
    el("p", { class: "reason" }, el("span", { "aria-hidden": "true", text: "✕ " }), message.reason),
    el("dl", {},
      el("dt", { text: "Event" }), el("dd", {}, event, " ", message.event?.id
        ? el("button", { type: "button", class: "quiet", onclick: () => search(message.event.id) },
          "Find its trace") : null),
      el("dt", { text: "Why here" }),
      el("dd", { text: `${from}: ${message.attempts} attempt${message.attempts === 1 ? "" : "s"}` }),
      el("dt", { text: "Sent" }), el("dd", { class: "mono", title: message.sent_time,
        text: clock(message.sent) })),
    el("details", {}, el("summary", { text: "The message" }),
      el("pre", { class: "log", text: JSON.stringify({ attributes: message.attributes,
        body: message.body }, null, 2) })));
}

// Tabs

const TABS = ["traces", "resources", "failures"];

function selectTab(name) {
  state.tab = name;
  for (const tab of TABS) {
    const selected = tab === name;
    const button = document.getElementById(`tab-${tab}`);
    button.setAttribute("aria-selected", String(selected));
    button.tabIndex = selected ? 0 : -1;
    document.getElementById(`panel-${tab}`).hidden = !selected;
  }
}

function setUpTabs() {
  TABS.forEach((name, i) => {
    const tab = document.getElementById(`tab-${name}`);
    tab.addEventListener("click", () => selectTab(name));
    tab.addEventListener("keydown", (e) => {
      const move = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
      if (!move) return;
      const next = TABS[(i + move + TABS.length) % TABS.length];
      selectTab(next);
      document.getElementById(`tab-${next}`).focus();
    });
  });
}

// Start

setUpTabs();
document.getElementById("trace-close").addEventListener("click", closeTrace);
document.getElementById("search-clear").addEventListener("click", clearSearch);
document.getElementById("search").addEventListener("submit", (e) => {
  e.preventDefault();
  search(document.getElementById("search-text").value).catch((error) => {
    document.getElementById("search-note").hidden = false;
    document.getElementById("search-what").textContent = `Search failed: ${error.message}`;
  });
});
const linked = location.hash.match(/^#trace=(.+)$/);
if (linked) openTrace(decodeURIComponent(linked[1]));
pollForever();
