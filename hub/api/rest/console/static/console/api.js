// The REST API client: tokens in sessionStorage, sent as `Authorization:
// Bearer` (not `?token=`, which proxies and browser history keep; media URLs
// still carry it: players cannot send headers), one refresh on a 401, back to
// the login form otherwise.

const KEY = "hub.session";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || "null");
  } catch {
    return null;
  }
}

function saveSession(value) {
  if (value) sessionStorage.setItem(KEY, JSON.stringify(value));
  else sessionStorage.removeItem(KEY);
}

export function accessToken() {
  const s = session();
  return s ? s.access_token : "";
}

// Called when the session is gone for good (refresh refused): the app shows
// the login form. Set by main.js.
let onSessionLost = () => {};
export function setSessionLostHandler(fn) {
  onSessionLost = fn;
}

async function readError(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    if (body && typeof body.error === "string") return body.error;
  } catch {
    /* not JSON: fall through */
  }
  return text.trim() || `${response.status} ${response.statusText}`;
}

async function parseBody(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export async function login(username, password) {
  const r = await fetch("/api/v1/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  if (!r.ok) throw new ApiError(r.status, await readError(r));
  const body = await r.json();
  saveSession({ user: username.trim().toLowerCase(), ...body });
  return body;
}

export function logout() {
  saveSession(null);
}

// One refresh at a time: parallel 401s (the streams poll and a click) share it.
let refreshing = null;

async function refresh() {
  const s = session();
  if (!s || !s.refresh_token) return false;
  if (!refreshing) {
    refreshing = (async () => {
      const r = await fetch("/api/v1/refreshtoken", { headers: { Authorization: `Bearer ${s.refresh_token}` } });
      if (!r.ok) return false;
      const body = await r.json();
      saveSession({ ...s, ...body });
      return true;
    })().catch(() => false).finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

function buildUrl(path, query) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, String(v));
  }
  return url;
}

// api("GET", "/api/v1/streams", {query: {c: 1}}) -> parsed JSON body.
// Throws ApiError with the server's `{"error": ...}` message on failure.
export async function api(method, path, { query, body } = {}) {
  for (let attempt = 0; ; attempt++) {
    const init = { method, headers: {} };
    const token = accessToken();
    if (token) init.headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const r = await fetch(buildUrl(path, query), init);
    if (r.status === 401 && attempt === 0 && (await refresh())) continue;
    if (r.status === 401) {
      const message = await readError(r);
      logout();
      onSessionLost(message);
      throw new ApiError(401, message);
    }
    if (!r.ok) throw new ApiError(r.status, await readError(r));
    return parseBody(r);
  }
}

// Path segments encoded one by one, so `/live/a b` stays a nested path.
export function encodePath(path) {
  return path.split("/").map(encodeURIComponent).join("/");
}
