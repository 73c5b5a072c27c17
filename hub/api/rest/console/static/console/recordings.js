// The recordings view: the rules (admin), what is being recorded, a path's
// recorded files, and playback of one file or a range as one MP4 in a plain
// <video> (the server answers HTTP Range requests, so the browser seeks).

import { api, accessToken, encodePath } from "./api.js";
import { el, formatBytes, guarded, showMessage, Pager } from "./ui.js";

function mp4Url(path, start, end) {
  const p = path.startsWith("/") ? path : `/${path}`;
  const url = new URL(`/api/v1/recordings${encodePath(p)}/mp4`, location.origin);
  url.searchParams.set("start", start);
  if (end) url.searchParams.set("end", end);
  const token = accessToken();
  if (token) url.searchParams.set("token", token);
  return url.toString();
}

function formatSeconds(s) {
  const n = Number(s) || 0;
  if (n < 60) return `${n.toFixed(1)} s`;
  const m = Math.floor(n / 60);
  return `${m} min ${String(Math.round(n - m * 60)).padStart(2, "0")} s`;
}

function formatAge(seconds) {
  const n = Number(seconds) || 0;
  if (!n) return "";
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["min", 60]]) {
    if (n >= size && n % size === 0) return `${n / size} ${unit}`;
  }
  return `${n} s`;
}

export class RecordingsView {
  constructor(root) {
    this.root = root;
    this.pager = new Pager(50);
    this.path = "";
    this.video = root.querySelector("#rec-video");
    this.title = root.querySelector("#rec-title");
    this.state = root.querySelector("#rec-state");
    this.rangeForm = root.querySelector("#rec-range");
    this.listForm = root.querySelector("#rec-list-form");
    this.ruleForm = root.querySelector("#rec-rule-form");
    this.video.addEventListener("error", () => {
      const e = this.video.error;
      if (e && this.video.getAttribute("src")) this.state.textContent = `video element: ${e.message || "media error " + e.code}`;
    });
    this.rangeForm.addEventListener("submit", (e) => {
      e.preventDefault();
      const f = this.rangeForm.elements;
      this.play(f.path.value.trim(), f.start.value.trim(), f.end.value.trim());
    });
    this.listForm.addEventListener("submit", guarded((e) => {
      e.preventDefault();
      this.path = this.listForm.elements.path.value.trim();
      this.pager.reset();
      return this.listFiles();
    }));
    this.ruleForm.addEventListener("submit", guarded((e) => this.saveRule(e)));
  }

  show() {
    this.refreshRules();
  }

  hide() {
    this.video.pause();
  }

  // -- rules and status -----------------------------------------------------
  async refreshRules() {
    try {
      this.renderRules(await api("GET", "/api/v1/recordings"));
    } catch (err) {
      if (err.status !== 401) showMessage(`recording rules: ${err.status ? err.status + ": " : ""}${err.message}`);
    }
  }

  renderRules(body) {
    const rules = body.rules || [];
    const rows = rules.map((r) => el("tr", { dataset: { pattern: r.pattern } },
      el("td", { "data-label": "Pattern", class: "path" }, r.pattern,
        r.source === "config" ? el("span", { class: "badge", title: "from the configuration file" }, "config") : null),
      el("td", { "data-label": "File", class: "num" }, `${r.segment} s`),
      el("td", { "data-label": "Keep", class: "small" },
        [r.retention.max_age ? `${formatAge(r.retention.max_age)}` : "",
          r.retention.max_bytes ? `${formatBytes(r.retention.max_bytes)} per path` : ""].filter(Boolean).join(", ") || "all"),
      el("td", { class: "actions" }, r.source === "config" ? null
        : el("button", { type: "button", class: "danger small", onclick: guarded(() => this.removeRule(r.pattern)) }, "Delete"))));
    if (!rules.length) rows.push(el("tr", {}, el("td", { colspan: 4, class: "empty" }, "Nothing is recorded.")));
    this.root.querySelector("#rec-rules-body").replaceChildren(...rows);
    const active = (body.recording || []).map((r) => el("tr", { class: "recording", dataset: { path: r.path } },
      el("td", { "data-label": "Path", class: "path" }, el("a", { href: "#recordings", onclick: (e) => { e.preventDefault(); this.pick(r.path); } }, r.path)),
      el("td", { "data-label": "File", class: "mono small" }, r.file || "(first keyframe)"),
      el("td", { "data-label": "Since", class: "small" }, r.file ? r.since.replace("T", " ").replace(/\.\d+Z$/, "Z") : ""),
      el("td", { "data-label": "Rule", class: "small" }, r.pattern)));
    if (!active.length) active.push(el("tr", {}, el("td", { colspan: 4, class: "empty" }, "No stream is being recorded.")));
    this.root.querySelector("#rec-active-body").replaceChildren(...active);
    this.root.querySelector("#rec-counters").textContent =
      `${body.files} files, ${formatBytes(body.bytes)} written since start · ${body.deleted} deleted by retention`
      + (body.errors ? ` · ${body.errors} recordings stopped by write errors (see the log)` : "");
  }

  async saveRule(event) {
    event.preventDefault();
    const f = this.ruleForm.elements;
    const retention = {};
    if (f.max_age.value.trim()) retention.max_age = f.max_age.value.trim();
    if (f.max_bytes.value.trim()) retention.max_bytes = f.max_bytes.value.trim();
    const body = { pattern: f.pattern.value.trim(), format: "fmp4", segment: Number(f.segment.value) || 60, retention };
    await api("POST", "/api/v1/recordings", { body });
    showMessage(`recording rule ${body.pattern} saved`, "ok");
    f.pattern.value = "";
    this.refreshRules();
  }

  async removeRule(pattern) {
    if (!confirm(`Stop recording ${pattern}? Its files are kept.`)) return;
    await api("DELETE", "/api/v1/recordings", { query: { pattern } });
    showMessage(`recording rule ${pattern} deleted`, "ok");
    this.refreshRules();
  }

  // -- a path's files ------------------------------------------------------
  pick(path) {
    this.path = path;
    this.listForm.elements.path.value = path;
    this.rangeForm.elements.path.value = path;
    this.pager.reset();
    guarded(() => this.listFiles())();
  }

  async listFiles() {
    if (!this.path) return;
    const p = this.path.startsWith("/") ? this.path : `/${this.path}`;
    const body = await api("GET", `/api/v1/recordings${encodePath(p)}`,
      { query: { page_size: this.pager.pageSize, page_token: this.pager.token } });
    const files = body.recordings || [];
    this.pager.update(body.total, files.length, body.next_page_token);
    this.root.querySelector("#rec-summary").textContent = `${body.path} · ${body.total} files`;
    const rows = files.map((f) => el("tr", { class: "rec-file", dataset: { name: f.name } },
      el("td", { "data-label": "Start" }, f.start.replace("T", " ").replace("Z", "")),
      el("td", { "data-label": "Duration", class: "num" }, formatSeconds(f.duration)),
      el("td", { "data-label": "Size", class: "num" }, formatBytes(f.size)),
      el("td", { class: "actions" },
        el("button", { type: "button", class: "play", onclick: () => this.play(body.path, f.start, f.end) }, "Play"),
        el("a", { href: mp4Url(body.path, f.start, f.end), download: f.name, class: "small" }, "MP4"))));
    if (!files.length) rows.push(el("tr", {}, el("td", { colspan: 4, class: "empty" }, "No recordings of this path.")));
    this.root.querySelector("#rec-files-body").replaceChildren(...rows);
    this.root.querySelector("#rec-files-pager").replaceChildren(this.pager.controls(() => guarded(() => this.listFiles())()));
    if (files.length) {
      const f = this.rangeForm.elements;
      f.path.value = body.path;
      if (!f.start.value) f.start.value = files[0].start;
      if (!f.end.value) f.end.value = files[files.length - 1].end;
    }
  }

  play(path, start, end) {
    if (!path || !start) {
      showMessage("a path and a start are needed");
      return;
    }
    const f = this.rangeForm.elements;
    f.path.value = path;
    f.start.value = start;
    f.end.value = end || "";
    this.title.textContent = `${path} · ${start}${end ? " → " + end : ""}`;
    this.root.querySelector("#rec-preview").classList.add("live");
    this.video.src = mp4Url(path, start, end);
    this.state.textContent = "one MP4 for the range";
    const p = this.video.play();
    if (p && p.catch) p.catch(() => { /* autoplay refused: the controls still work */ });
  }
}
