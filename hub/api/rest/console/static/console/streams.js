// The streams view: the live table (polled), preview buttons into the one
// preview <video>, the consumers expander with Kick, and Stop.

import { api, accessToken, encodePath } from "./api.js";
import { el, formatBytes, formatSince, guarded, showMessage, Pager } from "./ui.js";
import { KINDS, Player, streamUrls } from "./player.js";

const POLL_MS = 3000;

export class StreamsView {
  constructor(root) {
    this.root = root;
    this.expanded = new Set();
    this.pager = new Pager(50);
    this.timer = null;
    this.seq = 0;
    this.active = false;
    this.tbody = root.querySelector("#streams-body");
    this.pagerBox = root.querySelector("#streams-pager");
    this.summary = root.querySelector("#streams-summary");
    const video = root.querySelector("#preview-video");
    this.previewTitle = root.querySelector("#preview-title");
    this.previewState = root.querySelector("#preview-state");
    this.player = new Player(video, {
      onError: (m) => { showMessage(m); this.previewState.textContent = m; },
      onState: (s) => { this.previewState.textContent = s; },
    });
    root.querySelector("#preview-stop").addEventListener("click", () => {
      this.player.stop();
      this.previewTitle.textContent = "Nothing playing";
      root.querySelector("#preview").classList.remove("live");
    });
    root.querySelector("#streams-refresh").addEventListener("click", () => this.refresh());
  }

  show() {
    this.active = true;
    this.refresh();
  }

  hide() {
    this.active = false;
    clearTimeout(this.timer);
  }

  stopAll() {
    this.hide();
    this.player.stop();
  }

  async refresh() {
    clearTimeout(this.timer);
    // A click may refresh while a poll is in flight: only the latest call
    // renders and schedules the next poll, so polls never multiply.
    const seq = ++this.seq;
    try {
      const body = await api("GET", "/api/v1/streams",
        { query: { c: 1, page_size: this.pager.pageSize, page_token: this.pager.token } });
      if (seq === this.seq) this.render(body);
    } catch (err) {
      if (seq === this.seq && err.status !== 401) showMessage(`streams: ${err.status ? err.status + ": " : ""}${err.message}`);
    }
    if (seq === this.seq && this.active && accessToken()) this.timer = setTimeout(() => this.refresh(), POLL_MS);
  }

  render(body) {
    const streams = body.streams || [];
    this.pager.update(body.total, streams.length, body.next_page_token);
    const rows = [];
    for (const s of streams) {
      rows.push(this.row(s));
      if (this.expanded.has(s.path)) rows.push(this.consumersRow(s));
    }
    if (!streams.length) {
      rows.push(el("tr", {}, el("td", { colspan: 7, class: "empty" },
        "No live streams. Push one with ", el("code", {}, `ffmpeg -re -i FILE -c copy -f rtsp ${streamUrls("/live/test", "").rtsp}`))));
    }
    this.tbody.replaceChildren(...rows);
    const players = streams.reduce((n, s) => n + (s.cc || 0), 0);
    this.summary.textContent = `${body.total ?? streams.length} live · ${players} players`;
    this.pagerBox.replaceChildren(this.pager.controls(() => this.refresh()));
  }

  row(s) {
    const v = s.video;
    const a = s.audio;
    const cs = s.cs || [];
    const out = cs.reduce((n, c) => n + ((c.flow && c.flow.outbytes) || 0), 0);
    const video = v ? [el("b", { class: "codec" }, v.codec),
      el("span", { class: "dim" }, ` ${v.width}x${v.height}${v.framerate ? ` @${+Number(v.framerate).toFixed(2)} fps` : ""}`)] : "—";
    const audio = a ? [el("b", { class: "codec" }, a.codec),
      el("span", { class: "dim" }, ` ${a.samplerate} Hz${a.channels ? ` · ${a.channels} ch` : ""}`)] : "—";
    const open = this.expanded.has(s.path);
    return el("tr", { class: "stream", dataset: { path: s.path } },
      el("td", { "data-label": "Path" }, el("span", { class: "path" }, s.path),
        el("div", { class: "dim small" }, `up ${formatSince(s.start_on)}`)),
      el("td", { "data-label": "Source", class: "addr" }, s.addr || "—"),
      el("td", { "data-label": "Video", class: "video" }, video),
      el("td", { "data-label": "Audio", class: "audio" }, audio),
      el("td", { "data-label": "Players", class: "num cc" }, String(s.cc ?? 0)),
      el("td", { "data-label": "Flow", class: "num flow" },
        el("div", { title: "bytes received from the source" }, `in ${formatBytes(s.size)}`),
        el("div", { class: "dim", title: "bytes sent to all players" }, `out ${formatBytes(out)}`)),
      el("td", { class: "actions" },
        el("div", { class: "btn-group", role: "group", "aria-label": "Preview" },
          ...Object.entries(KINDS).map(([kind, k]) => el("button", {
            type: "button", class: "play", dataset: { play: kind },
            title: `Preview over ${k.label}`, onclick: () => this.preview(s.path, kind),
          }, k.label))),
        el("button", { type: "button", class: "ghost consumers-toggle", "aria-expanded": String(open),
          onclick: () => { open ? this.expanded.delete(s.path) : this.expanded.add(s.path); this.refresh(); } },
          `${open ? "▾" : "▸"} Consumers (${s.cc ?? 0})`),
        el("button", { type: "button", class: "danger stop", onclick: guarded(() => this.stopStream(s.path)) }, "Stop")));
  }

  consumersRow(s) {
    const cs = s.cs || [];
    const inner = cs.length ? el("table", { class: "consumers" },
      el("thead", {}, el("tr", {}, ...["ID", "Since", "Type", "Connection", "In", "Out", ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...cs.map((c) => el("tr", { dataset: { cid: c.id } },
        el("td", { class: "mono" }, String(c.id)),
        el("td", {}, formatSince(c.start_on)),
        el("td", {}, c.packet_type || ""),
        el("td", { class: "mono small" }, c.extra || ""),
        el("td", { class: "num" }, formatBytes(c.flow ? c.flow.inbytes : 0)),
        el("td", { class: "num" }, formatBytes(c.flow ? c.flow.outbytes : 0)),
        el("td", {}, el("button", { type: "button", class: "danger small kick",
          onclick: guarded(() => this.kick(s.path, c.id)) }, "Kick"))))))
      : el("p", { class: "dim" }, "No players on this stream.");
    return el("tr", { class: "consumers-row" }, el("td", { colspan: 7 }, inner));
  }

  preview(path, kind) {
    const url = streamUrls(path, accessToken())[kind];
    this.previewTitle.textContent = `${path} · ${KINDS[kind].label}`;
    this.root.querySelector("#preview").classList.add("live");
    this.root.querySelector("#preview").scrollIntoView({ block: "nearest", behavior: "smooth" });
    this.player.play(kind, url);
  }

  async stopStream(path) {
    if (!confirm(`Stop ${path}? Its source and all its players are disconnected.`)) return;
    await api("DELETE", `/api/v1/streams${encodePath(path)}`);
    showMessage(`${path} stopped`, "ok");
    this.refresh();
  }

  async kick(path, cid) {
    await api("DELETE", `/api/v1/streams${encodePath(path)}:consumer`, { query: { cid } });
    showMessage(`player ${cid} of ${path} disconnected`, "ok");
    this.refresh();
  }
}
