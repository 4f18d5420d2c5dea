// The web chat: plain JavaScript, no build step. It talks only to the API
// (orchestrator/api/app.py, through api.js) and follows the session's event
// stream, resuming from the last offset it saw whenever the connection breaks.
"use strict";

// --- sessions ----------------------------------------------------------------------------

async function loadSessions() {
  const response = await api("GET", "/api/sessions");
  const sessions = await response.json();
  const list = $("#sessions");
  list.replaceChildren();
  for (const session of sessions) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `${session.id} · ${session.started.replace("T", " ").slice(0, 16)}`;
    button.setAttribute("aria-current", String(session.id === state.session));
    button.addEventListener("click", () => select(session.id));
    item.append(button);
    list.append(item);
  }
}

// Creates a session and shows it; false (with the reason shown) when it could not.
async function newSession(key = newKey()) {
  closeSessions();
  const response = await changing("POST", "/api/sessions", undefined, key);
  if (!response.ok) {
    notice(await detail(response));
    return false;
  }
  const created = await response.json();
  await select(created.id);
  await loadSessions();
  return state.session === created.id;
}

async function select(id) {
  closeSessions();
  if (state.follower) state.follower.abort();
  state.session = id;
  state.seen = new Set();
  state.turns = {};
  window.location.hash = id;
  $("#conversation").replaceChildren();
  const response = await api("GET", `/api/sessions/${encodeURIComponent(id)}`);
  if (response.status === 404) {
    state.session = null;
    $("#temporal-ui").hidden = true;
    notice(`Session not found: ${id}. Type to start a new one, or pick one from the list.`);
    return;
  }
  if (!response.ok) return notice(await detail(response));
  notice("");
  const view = await response.json();
  const link = $("#temporal-ui");
  link.href = view.temporal_ui;
  link.hidden = false;
  for (const turn of view.history) renderPastTurn(turn);
  state.last = view.offset - 1;
  $("#message").disabled = false;
  $("#send").disabled = false;
  $("#message").focus();
  running(view.status.state !== "idle" && view.status.state !== "ended");
  follow();
  for (const button of document.querySelectorAll("#sessions button")) {
    button.setAttribute("aria-current", String(button.textContent.startsWith(id + " ")));
  }
}

// --- the conversation ---------------------------------------------------------------------

function bubble(kind, text) {
  const item = document.createElement("li");
  item.className = `bubble ${kind}`;
  item.textContent = text;
  $("#conversation").append(item);
  item.scrollIntoView({ block: "end" });
  return item;
}

function turnView(number) {
  if (!state.turns[number]) {
    const chips = document.createElement("li");
    chips.className = "chips";
    $("#conversation").append(chips);
    state.turns[number] = { chips, agent: null, text: "" };
  }
  return state.turns[number];
}

function chipText(event) {
  const team = event.location === "local" ? "local" : event.location;
  let text = `${event.name} · ${team}`;
  if (event.state && event.state !== "running") {
    text += ` · ${event.state}`;
    if (event.duration_ms !== undefined) text += ` · ${Math.round(event.duration_ms)} ms`;
    if (event.error) text += ` · ${event.error}`;
  }
  return text;
}

function chip(turn, event) {
  let el = document.querySelector(`.chip[data-call-id="${CSS.escape(event.call_id)}"]`);
  if (!el) {
    el = document.createElement("span");
    el.className = "chip";
    el.dataset.callId = event.call_id;
    el.dataset.team = event.location;
    turnView(turn).chips.append(el);
  }
  el.dataset.state = event.state || "running";
  el.textContent = chipText(event);
  return el;
}

function usageLine(usage) {
  if (!usage || !usage.requests) return "";
  return `${usage.requests} model call(s), ${usage.input_tokens} tokens in, ${usage.output_tokens} out`;
}

function finishTurn(turn, event) {
  const view = turnView(turn);
  const agent = view.agent || bubble("agent", "");
  view.agent = agent;
  agent.classList.add("reply");
  agent.classList.toggle("failed", !event.ok);
  agent.textContent = event.text;
  const usage = usageLine(event.usage);
  const notes = Object.entries(event.unavailable || {}).map(([team, why]) => `team ${team} unavailable: ${why}`);
  if (usage || notes.length) {
    const line = document.createElement("div");
    line.className = "usage";
    line.textContent = [usage, ...notes].filter(Boolean).join(" · ");
    agent.append(line);
  }
  agent.scrollIntoView({ block: "end" });
}

function renderPastTurn(turn) {
  bubble("user", turn.user);
  for (const call of turn.tools) chip(turn.turn, { ...call, location: call.location });
  finishTurn(turn.turn, { text: turn.reply, ok: turn.ok, usage: turn.usage });
}

function approvalCard(event) {
  const card = document.createElement("li");
  card.className = "approval";
  card.dataset.callId = event.call_id;
  const title = document.createElement("strong");
  title.textContent = `${event.name} (team ${event.location}) needs your approval`;
  const why = document.createElement("div");
  why.textContent = event.reason || "";
  const args = document.createElement("pre");
  args.textContent = JSON.stringify(event.arguments, null, 2);
  const approve = document.createElement("button");
  approve.type = "button";
  approve.className = "approve";
  approve.textContent = "Approve";
  const deny = document.createElement("button");
  deny.type = "button";
  deny.className = "deny";
  deny.textContent = "Deny";
  const key = newKey(); // one decision, however often it is sent
  const decide = async (yes) => {
    // A disabled button drops the focus to the page: hand it to the message box.
    const hadFocus = card.contains(document.activeElement);
    approve.disabled = deny.disabled = true;
    if (hadFocus) $("#message").focus();
    const response = await changing("POST",
      `/api/sessions/${encodeURIComponent(state.session)}/approvals/${encodeURIComponent(event.call_id)}`,
      { approve: yes, note: yes ? "" : "denied in the web chat" }, key);
    if (!response.ok) notice(await detail(response));
  };
  approve.addEventListener("click", () => decide(true));
  deny.addEventListener("click", () => decide(false));
  title.id = `approval-${event.call_id}`;
  card.setAttribute("role", "group");
  card.setAttribute("aria-labelledby", title.id);
  card.append(title, why, args, approve, deny);
  $("#conversation").append(card);
  card.scrollIntoView({ block: "end" });
  // The card takes the focus, unless a message is being typed: an Enter meant
  // for that message must not approve a call. Shift+Tab then reaches the card.
  const box = $("#message");
  if (!(document.activeElement === box && box.value.trim())) approve.focus();
}

function dropApproval(callId) {
  const card = document.querySelector(`.approval[data-call-id="${CSS.escape(callId)}"]`);
  if (!card) return;
  const hadFocus = card.contains(document.activeElement);
  card.remove();
  if (hadFocus) $("#message").focus(); // the keyboard carries on where it types
}

function running(yes) {
  $("#interrupt").hidden = !yes;
}

function handle(event) {
  if (state.seen.has(event.offset)) return;
  state.seen.add(event.offset);
  state.last = Math.max(state.last, event.offset);
  switch (event.kind) {
    case "turn_started":
      bubble("user", event.text || "");
      turnView(event.turn);
      running(true);
      break;
    case "tool_started":
    case "tool_finished":
      chip(event.turn, event);
      if (event.kind === "tool_finished") dropApproval(event.call_id);
      break;
    case "approval_requested":
      chip(event.turn, { ...event, state: "awaiting_approval" });
      approvalCard(event);
      break;
    case "approval_decided":
      dropApproval(event.call_id);
      break;
    case "text_delta": {
      const view = turnView(event.turn);
      if (!view.agent) view.agent = bubble("agent streaming", "");
      view.text += event.delta;
      view.agent.textContent = view.text;
      break;
    }
    case "reply":
      finishTurn(event.turn, event);
      running(false);
      break;
  }
}

// --- following the session, sending messages ----------------------------------------------

async function follow() {
  const session = state.session;
  const controller = new AbortController();
  state.follower = controller;
  let delay = 250;
  while (state.session === session && !controller.signal.aborted) {
    try {
      const response = await fetch(
        `/api/sessions/${encodeURIComponent(session)}/events?after=${state.last}`,
        { headers: { Authorization: `Bearer ${state.token}` }, signal: controller.signal });
      if (response.status === 401) return signedOut();
      if (response.status === 404) return notice(`Session not found: ${session}.`);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      notice("");
      delay = 250;
      for await (const event of sse(response)) handle(event);
    } catch (err) {
      if (controller.signal.aborted) return;
      notice("Connection lost; reconnecting…");
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 5000);
  }
}

// One message, with its keys. Sent again after a dropped connection, it keeps
// them, so the API runs its turn once (and creates its session once).
async function send() {
  const box = $("#message");
  const text = box.value;
  if (!text.trim() || state.pending) return;
  const pending = { text, key: newKey(), sessionKey: state.session ? null : newKey() };
  state.pending = pending;
  box.value = "";
  let response = null;
  try {
    response = await deliver(pending);
  } catch (err) {
    notice(`The message was not sent: ${err.message}`);
  } finally {
    // Accepted (or refused): the next message may go, and is queued behind this turn.
    state.pending = null;
  }
  if (!response) {
    if (!box.value) box.value = text;
    return;
  }
  // The follower renders the turn; this stream is read to its end (the reply).
  try {
    for await (const event of sse(response)) handle(event);
  } catch {
    /* the follower catches up */
  }
}

// The accepted message's response, or null with the reason shown.
async function deliver(pending) {
  // A first visit has no session: its first message opens one.
  if (!state.session && !(await newSession(pending.sessionKey))) return null;
  const response = await changing("POST", `/api/sessions/${encodeURIComponent(state.session)}/messages`,
    { text: pending.text }, pending.key);
  if (!response.ok) {
    notice(await detail(response));
    return null;
  }
  return response;
}

// --- wiring -------------------------------------------------------------------------------

$("#composer").addEventListener("submit", (e) => { e.preventDefault(); send(); });
$("#message").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send(); }
});
$("#new-session").addEventListener("click", () => newSession());

// --- the session list on a phone: a panel opened from the header -------------------------

function closeSessions() {
  if (!document.body.classList.contains("sessions-open")) return;
  document.body.classList.remove("sessions-open");
  $("#sessions-toggle").setAttribute("aria-expanded", "false");
}

$("#sessions-toggle").addEventListener("click", () => {
  const open = document.body.classList.toggle("sessions-open");
  $("#sessions-toggle").setAttribute("aria-expanded", String(open));
  if (open) $("#new-session").focus();
});
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && document.body.classList.contains("sessions-open")) {
    closeSessions();
    $("#sessions-toggle").focus();
  }
});
$("main").addEventListener("click", closeSessions);
$("#interrupt").addEventListener("click", async () => {
  const response = await changing("POST", `/api/sessions/${encodeURIComponent(state.session)}/interrupt`,
    undefined, newKey());
  if (!response.ok) notice(await detail(response));
});

// A phone's box is narrow, and its keyboard has no Shift+Enter to explain.
if (window.matchMedia("(max-width: 700px)").matches) $("#message").placeholder = "Ask something";

(async function start() {
  if (!state.token) return signedOut();
  // Typing can start at once: the first message opens a session if none is chosen.
  $("#message").disabled = false;
  $("#send").disabled = false;
  $("#message").focus();
  try {
    await loadSessions();
    const wanted = decodeURIComponent(window.location.hash.slice(1));
    if (wanted) await select(wanted);
  } catch (err) {
    if (state.token) notice(`Cannot reach the API: ${err.message}`);
  }
})();
