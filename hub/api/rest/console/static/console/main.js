// The console's entry: login form, tabs (#streams, #users, #routes, #recordings), header.

import { login, logout, session, setSessionLostHandler } from "./api.js";
import { clearMessage, guarded, showMessage } from "./ui.js";
import { StreamsView } from "./streams.js";
import { UsersView } from "./users.js";
import { RoutesView } from "./routes.js";
import { RecordingsView } from "./recordings.js";

const $ = (sel) => document.querySelector(sel);

const views = {
  streams: new StreamsView($("#view-streams")),
  users: new UsersView($("#view-users")),
  routes: new RoutesView($("#view-routes")),
  recordings: new RecordingsView($("#view-recordings")),
};
let current = null;

function currentTab() {
  const name = location.hash.replace(/^#/, "");
  return views[name] ? name : "streams";
}

function showTab(name) {
  if (current && current !== name) views[current].hide();
  current = name;
  for (const [key, view] of Object.entries(views)) {
    view.root.hidden = key !== name;
    document.querySelector(`nav a[data-tab="${key}"]`).setAttribute("aria-current", key === name ? "page" : "false");
  }
  views[name].show();
}

function showApp() {
  const s = session();
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#who").textContent = s ? s.user : "";
  showTab(currentTab());
}

function showLogin(reason) {
  for (const view of Object.values(views)) view.hide();
  views.streams.stopAll();
  current = null;
  $("#app").hidden = true;
  $("#login").hidden = false;
  if (reason) showMessage(reason);
  $("#login-user").focus();
}

setSessionLostHandler((message) => showLogin(`Signed out: ${message}`));

$("#login-form").addEventListener("submit", guarded(async (e) => {
  e.preventDefault();
  const form = e.target;
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    await login(form.elements.username.value, form.elements.password.value);
  } finally {
    button.disabled = false;
  }
  form.elements.password.value = "";
  clearMessage();
  showApp();
}));

$("#logout").addEventListener("click", () => {
  logout();
  showLogin();
});

$("#message").addEventListener("click", clearMessage);

window.addEventListener("hashchange", () => {
  if (session()) showTab(currentTab());
});

async function loadServerInfo() {
  try {
    const r = await fetch("/api/v1/server");
    if (!r.ok) return;
    const info = await r.json();
    $("#server").textContent = `${info.name || "hub"} ${info.version || ""}`.trim();
    $("#server").title = `${info.os || ""}/${info.arch || ""}, up since ${info.start_on || "?"}`;
  } catch {
    /* the header simply stays plain */
  }
}

loadServerInfo();
if (session()) showApp();
else showLogin();
