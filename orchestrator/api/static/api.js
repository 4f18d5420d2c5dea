// The web chat's requests: sign-in, the API's calls with their bearer token and
// Idempotency-Key, resending a change while the connection is down, and reading
// a server-sent event stream. Loaded before app.js, which uses these names.
"use strict";

const $ = (selector) => document.querySelector(selector);
const state = { token: null, session: null, seen: new Set(), last: -1, follower: null, turns: {}, pending: null };

// --- sign-in ---------------------------------------------------------------------------

(function signIn() {
  const url = new URL(window.location.href);
  const token = url.searchParams.get("token");
  if (token) {
    localStorage.setItem("mesh-token", token);
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  state.token = localStorage.getItem("mesh-token");
})();

function notice(text) {
  const el = $("#notice");
  el.textContent = text || "";
  el.hidden = !text;
}

function signedOut() {
  notice("Not signed in: open the sign-in URL that scripts/demo prints (it carries your token).");
  $("#message").disabled = true;
  $("#send").disabled = true;
}

class SignedOut extends Error {}

// A fresh Idempotency-Key. crypto.randomUUID exists only on https and
// localhost pages; getRandomValues exists everywhere.
function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

async function api(method, path, body, key) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (key) headers["Idempotency-Key"] = key;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) {
    signedOut();
    throw new SignedOut("not signed in");
  }
  return response;
}

// A request that changes something is sent again, with the same key, while
// the connection is down or a proxy answers that the API is unreachable: the
// API runs a key's request once and answers a repeat with the first outcome.
const RETRIED = new Set([502, 503, 504]);

async function changing(method, path, body, key) {
  let delay = 250;
  for (let attempt = 1; ; attempt++) {
    try {
      const response = await api(method, path, body, key);
      if (!RETRIED.has(response.status) || attempt >= 8) {
        if (attempt > 1) notice("");
        return response;
      }
    } catch (err) {
      if (err instanceof SignedOut || attempt >= 8) throw err;
    }
    notice("Connection lost; sending again…");
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 5000);
  }
}

async function detail(response) {
  try {
    const body = await response.json();
    return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch {
    return `HTTP ${response.status}`;
  }
}

// --- server-sent events -------------------------------------------------------------------

async function* sse(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6));
      if (data.length) yield JSON.parse(data.join("\n"));
    }
  }
}
