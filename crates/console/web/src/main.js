// The Lithos web console: logs in over XMPP on WebSocket (RFC 7395) with @xmpp/client,
// lists the account's things live (urn:lithos:tuxp:directory), sends their model's actions
// (urn:leps:tuxp:actuator) and shows how each ended, plots their reports (urn:leps:tuxp:sensor:
// history, then live), shows notifications (urn:leps:tuxp:thing) as they arrive, and lets an
// operator see pending authorizations and authorize a thing (urn:leps:tuxp:operator).

import { client, xml } from "@xmpp/client";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import "./style.css";

const NS = {
  directory: "urn:lithos:tuxp:directory",
  actuator: "urn:leps:tuxp:actuator",
  sensor: "urn:leps:tuxp:sensor",
  thing: "urn:leps:tuxp:thing",
  operator: "urn:leps:tuxp:operator",
  pending: "urn:lithos:tuxp:operator",
  rsm: "http://jabber.org/protocol/rsm",
};

/** How long a command may take before the console calls it a timeout (and the thing drops it). */
const COMMAND_TIMEOUT_MS = 10000;
/** Points kept per plot. */
const MAX_POINTS = 500;

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
};

const domain = document.querySelector('meta[name="lithos-domain"]').content;
const serviceUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/xmpp-websocket`;

let xmpp = null;
/** Things by bare JID: { info, card, plots: Map<key, Plot> }. */
const things = new Map();

function status(text, kind = "info") {
  const s = $("#status");
  s.textContent = text;
  s.dataset.kind = kind;
}

// ---------------------------------------------------------------- login

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  let user = $("#jid").value.trim();
  const password = $("#password").value;
  if (user.includes("@")) {
    const [local, d] = user.split("@");
    if (d !== domain) {
      status(`this server serves ${domain}, not ${d}`, "error");
      return;
    }
    user = local;
  }
  status("connecting…");
  $("#login").disabled = true;
  try {
    await login(user, password);
  } catch (e) {
    const why = `login failed: ${e.condition || e.message || e}${e.text ? ` (${e.text})` : ""}`;
    if (xmpp) {
      const x = xmpp;
      xmpp = null;
      x.removeAllListeners("offline");
      await x.stop().catch(() => {});
    }
    status(why, "error");
    $("#login-view").hidden = false;
    $("#main-view").hidden = true;
    $("#login").disabled = false;
  }
});

$("#logout").addEventListener("click", async () => {
  if (xmpp) await xmpp.stop().catch(() => {});
  location.reload();
});

async function login(username, password) {
  xmpp = client({ service: serviceUrl, domain, username, password, resource: `console-${Math.random().toString(36).slice(2, 8)}` });
  xmpp.reconnect.stop();
  xmpp.on("error", (e) => console.warn("xmpp", e));
  xmpp.on("offline", () => status("disconnected", "error"));
  xmpp.on("stanza", onStanza);
  await xmpp.start();
  await xmpp.send(xml("presence"));
  $("#login-view").hidden = true;
  $("#main-view").hidden = false;
  $("#whoami").textContent = `${username}@${domain}`;
  status("connected", "ok");
  // The answer to <watch/> is the list, <things/>.
  const answer = await xmpp.iqCaller.request(xml("iq", { type: "set", to: domain }, xml("watch", { xmlns: NS.directory })));
  for (const t of answer.getChild("things", NS.directory).getChildren("thing")) addThing(t);
  if (things.size === 0) $("#things").append(el("p", { class: "empty" }, "No things yet: an operator authorizes one, the device registers, and it appears here."));
  loadPending();
}

// ---------------------------------------------------------------- things

function protocols(t, kind) {
  return t.getChildren(kind).map((p) => ({ ns: p.attrs.ns, name: p.attrs.name }));
}

function addThing(t) {
  const info = {
    id: t.attrs.id,
    name: t.attrs.name,
    jid: t.attrs.jid,
    model: t.attrs.model,
    owned: t.attrs.owned === "true",
    actions: protocols(t, "action"),
    data: protocols(t, "data"),
  };
  const state = el("span", { class: "state" });
  const outcome = el("span", { class: "outcome", "aria-live": "polite" });
  const actions = el("div", { class: "actions" });
  for (const a of info.actions) {
    actions.append(el("button", { class: "action", "data-action": a.name, title: a.ns, onclick: () => command(info, a, outcome) }, a.name));
  }
  const plots = el("div", { class: "plots" });
  const card = el(
    "section",
    { class: "thing", "data-name": info.name, "data-id": info.id },
    el("header", {}, el("h3", {}, info.id), state),
    el("p", { class: "meta" }, `${info.model} · ${info.jid}${info.owned ? "" : " · granted"}`),
    actions,
    outcome,
    plots,
  );
  $("#things").append(card);
  const entry = { info, card, plots: new Map() };
  things.set(info.jid, entry);
  setOnline(entry, t.attrs.online === "true");
  for (const d of info.data) addPlot(entry, d, plots);
  if (info.data.length > 0) loadReports(entry);
}

function setOnline(entry, online) {
  const s = $(".state", entry.card);
  s.textContent = online ? "online" : "offline";
  s.dataset.online = String(online);
}

async function command(info, action, outcome) {
  outcome.textContent = `${action.name}…`;
  outcome.dataset.result = "pending";
  const started = performance.now();
  const expires = new Date(Date.now() + COMMAND_TIMEOUT_MS).toISOString();
  try {
    await xmpp.iqCaller.request(
      xml("iq", { type: "set", to: info.jid }, xml("execution", { xmlns: NS.actuator, expires }, xml(action.name, { xmlns: action.ns }))),
      COMMAND_TIMEOUT_MS,
    );
    const ms = Math.round(performance.now() - started);
    outcome.textContent = `${action.name}: executed in ${ms} ms`;
    outcome.dataset.result = "executed";
  } catch (e) {
    if (e.name === "TimeoutError") {
      outcome.textContent = `${action.name}: timeout (no answer in ${COMMAND_TIMEOUT_MS / 1000} s; it will not run late)`;
      outcome.dataset.result = "timeout";
    } else {
      const text = e.text ? ` (${e.text})` : "";
      outcome.textContent = `${action.name}: error ${e.condition || e.message}${text}`;
      outcome.dataset.result = "error";
    }
  }
}

// ---------------------------------------------------------------- reports

/** The number a data element carries: its `value` attribute, another numeric attribute, or its text. */
function numberOf(data) {
  const candidates = [data.attrs.value, ...Object.values(data.attrs), data.text()];
  for (const c of candidates) {
    if (c === undefined || c === null || c === "") continue;
    const n = Number(c);
    if (Number.isFinite(n)) return n;
  }
  return null;
}

const keyOf = (ns, name) => `{${ns}}${name}`;

function addPlot(entry, d, container) {
  const key = keyOf(d.ns, d.name);
  const box = el("div", { class: "plot", "data-key": key, "data-points": "0" }, el("h4", {}, d.name));
  container.append(box);
  const plot = { box, xs: [], ys: [], chart: null };
  plot.chart = new uPlot(
    {
      width: 420,
      height: 160,
      scales: { x: { time: true } },
      series: [{}, { label: d.name, stroke: "#2a7ab0", width: 2, points: { show: true, size: 4 } }],
      axes: [{}, {}],
    },
    [[], []],
    box,
  );
  entry.plots.set(key, plot);
}

function addPoint(entry, data, stampMs) {
  const plot = entry.plots.get(keyOf(data.attrs.xmlns || data.getNS(), data.name));
  if (!plot) return;
  const y = numberOf(data);
  if (y === null) return;
  const x = stampMs / 1000;
  // Keep the series sorted by time (history and live reports may interleave).
  let i = plot.xs.length;
  while (i > 0 && plot.xs[i - 1] > x) i--;
  plot.xs.splice(i, 0, x);
  plot.ys.splice(i, 0, y);
  if (plot.xs.length > MAX_POINTS) {
    plot.xs.shift();
    plot.ys.shift();
  }
  plot.chart.setData([plot.xs, plot.ys]);
  plot.box.dataset.points = String(plot.xs.length);
  plot.box.dataset.last = String(y);
}

async function loadReports(entry) {
  try {
    // Live first, so nothing falls between the history and the subscription.
    await xmpp.iqCaller.set(xml("subscribe", { xmlns: NS.sensor }), entry.info.jid);
    const history = await xmpp.iqCaller.get(
      xml("history", { xmlns: NS.sensor }, xml("set", { xmlns: NS.rsm }, xml("max", {}, "200"), xml("before"))),
      entry.info.jid,
    );
    for (const item of history.getChildren("item")) {
      const data = item.children.find((c) => typeof c !== "string");
      if (data) addPoint(entry, data, Date.parse(item.attrs.stamp));
    }
  } catch (e) {
    console.warn("reports of", entry.info.jid, e);
  }
}

// ---------------------------------------------------------------- stanzas

function onStanza(stanza) {
  if (!stanza.is("message")) return;
  const from = (stanza.attrs.from || "").split("/")[0];
  const entry = things.get(from);
  const state = stanza.getChild("thing-state", NS.directory);
  if (state && entry) {
    setOnline(entry, state.attrs.online === "true");
    return;
  }
  const report = stanza.getChild("report", NS.sensor);
  if (report && entry) {
    const data = report.children.find((c) => typeof c !== "string");
    if (data) addPoint(entry, data, report.attrs.stamp ? Date.parse(report.attrs.stamp) : Date.now());
    return;
  }
  const notification = stanza.getChild("notification", NS.thing);
  if (notification) {
    const event = notification.children.find((c) => typeof c !== "string");
    const attrs = event ? Object.entries(event.attrs).filter(([k]) => k !== "xmlns").map(([k, v]) => `${k}=${v}`).join(" ") : "";
    const who = entry ? entry.info.id : from;
    $("#notifications").prepend(el("li", { "data-from": from }, `${new Date().toLocaleTimeString()} ${who}: ${event ? event.name : "?"} ${attrs}`));
  }
}

// ---------------------------------------------------------------- operators

async function loadPending() {
  let answer;
  try {
    answer = await xmpp.iqCaller.get(xml("pending", { xmlns: NS.pending }), domain);
  } catch {
    $("#operator").hidden = true; // not an operator
    return;
  }
  $("#operator").hidden = false;
  const list = $("#pending");
  list.replaceChildren();
  for (const a of answer.getChildren("authorization")) {
    list.append(el("li", { "data-thing-id": a.attrs["thing-id"] }, `${a.attrs["thing-id"]} — by ${a.attrs.authorizer}, until ${new Date(a.attrs.expires).toLocaleString()}${a.attrs.key === "true" ? ", with key" : ""}`));
  }
  if (!list.children.length) list.append(el("li", { class: "empty" }, "none"));
}

$("#authorize-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const id = $("#auth-thing-id").value.trim();
  const key = $("#auth-key").value;
  const out = $("#authorize-outcome");
  const attrs = { xmlns: NS.operator, "thing-id": id };
  if (key) attrs["registration-key"] = key;
  try {
    await xmpp.iqCaller.set(xml("auth-thing", attrs), domain);
    out.textContent = `${id} authorized`;
    out.dataset.result = "ok";
    loadPending();
  } catch (e) {
    out.textContent = `refused: ${e.condition || e.message}${e.text ? ` (${e.text})` : ""}`;
    out.dataset.result = "error";
  }
});
