// One page for every demo (play.html), served at /demos/KIND/ for KIND in
// flv|wsflv|hls|whep|rtsp|wsp|rtspws: the kind is the path's folder.
// Each page shows the URL to copy for this host and a way to pick the stream
// path; the browser-playable ones play it.

import { Player, streamUrls } from "/console/player.js";

const DEMOS = {
  flv: {
    title: "HTTP-FLV",
    intro: "FLV over a long HTTP response, played with mpegts.js through Media Source Extensions. Low latency, no plugin.",
    play: true,
    snippet: (url) => `<script src="/console/vendor/mpegts.js"></script>
<video id="v" muted autoplay playsinline controls></video>
<script>
  const p = mpegts.createPlayer({type: "flv", isLive: true, url: "${url}"});
  p.attachMediaElement(document.getElementById("v"));
  p.load();
  p.play();
</script>`,
  },
  wsflv: {
    title: "WebSocket-FLV",
    intro: "The same FLV stream, each tag a WebSocket message; mpegts.js opens the socket itself when the URL starts with ws://. Also served at ws://HOST/ws/PATH.flv.",
    play: true,
    snippet: (url) => `<script src="/console/vendor/mpegts.js"></script>
<video id="v" muted autoplay playsinline controls></video>
<script>
  const p = mpegts.createPlayer({type: "flv", isLive: true, url: "${url}"});
  p.attachMediaElement(document.getElementById("v"));
  p.load();
  p.play();
</script>`,
  },
  hls: {
    title: "HLS",
    intro: "A live playlist of MPEG-TS segments: hls.js here, the browser's own player on Safari and iOS. Several seconds behind live; the segmenter starts on the first playlist request.",
    play: true,
    snippet: (url) => `<script src="/console/vendor/hls.js"></script>
<video id="v" muted autoplay playsinline controls></video>
<script>
  const v = document.getElementById("v");
  if (Hls.isSupported()) { const h = new Hls(); h.loadSource("${url}"); h.attachMedia(v); }
  else v.src = "${url}";
</script>`,
  },
  whep: {
    title: "WebRTC (WHEP)",
    intro: "Sub-second playback in every browser, phones included, with the browser's own WebRTC: the page POSTs an SDP offer to the WHEP URL and plays what comes back. H.264 is sent as published (no B-frames); Opus and G.711 audio too, AAC is dropped. The server needs its WebRTC UDP port reachable (webrtc.udp_port, webrtc.public_addresses behind a NAT).",
    play: true,
    commands: (url, urls) => [
      ["publish with WHIP (OBS: Settings → Stream → WHIP, Bearer token = a push token)", urls.whip],
    ],
    snippet: (url) => `<video id="v" muted autoplay playsinline controls></video>
<script type="module">
  const pc = new RTCPeerConnection();
  pc.addTransceiver("video", {direction: "recvonly"});
  pc.addTransceiver("audio", {direction: "recvonly"});
  pc.ontrack = (e) => { const v = document.getElementById("v");
    v.srcObject = v.srcObject || new MediaStream(); v.srcObject.addTrack(e.track); };
  await pc.setLocalDescription(await pc.createOffer());
  const r = await fetch("${url}", {method: "POST",
    headers: {"Content-Type": "application/sdp"}, body: pc.localDescription.sdp});
  const session = new URL(r.headers.get("Location"), "${url}");  // DELETE it to stop
  await pc.setRemoteDescription({type: "answer", sdp: await r.text()});
</script>`,
  },
  rtsp: {
    title: "RTSP",
    intro: "Browsers do not speak RTSP: copy the URL into a player. Playing works over TCP (interleaved), UDP and multicast; publishing over TCP and UDP. With auth on, put a user's name and password in the URL.",
    play: false,
    commands: (url) => [
      ["ffplay", `ffplay -rtsp_transport tcp "${url}"`],
      ["VLC", `vlc "${url}"`],
      ["mpv", `mpv --rtsp-transport=tcp "${url}"`],
      ["publish a file with ffmpeg", `ffmpeg -re -stream_loop -1 -i input.mp4 -c copy -f rtsp -rtsp_transport tcp "${url}"`],
    ],
  },
  wsp: {
    title: "WSP (Streamedian)",
    intro: "The Streamedian html5 RTSP player's protocol: a WebSocket with subprotocol \"control\" carries WSP-wrapped RTSP requests and one with subprotocol \"data\" carries the interleaved RTP. Point the Streamedian player's socket at the URL below with the rtsp:// URL as its source.",
    play: false,
    note: "This page gives the URLs only; the server side of WSP is being built. The Streamedian player itself is not bundled.",
    commands: (url, urls) => [
      ["WebSocket (control + data)", url],
      ["RTSP source for the player", urls.rtsp],
    ],
  },
  rtspws: {
    title: "RTSP over WebSocket",
    intro: "Plain RTSP requests and interleaved RTP in WebSocket binary messages, on a WebSocket opened with subprotocol \"rtsp\". For players that tunnel RTSP through WebSocket.",
    play: false,
    note: "This page gives the URL only; the server side is being built. Open it with: new WebSocket(url, \"rtsp\").",
    commands: (url) => [
      ["JavaScript", `const ws = new WebSocket("${url}", "rtsp"); ws.binaryType = "arraybuffer";`],
    ],
  },
};

const SESSION_KEY = "hub.session";
const $ = (sel) => document.querySelector(sel);

function sessionToken() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    return s ? s.access_token : "";
  } catch {
    return "";
  }
}

function canonical(path) {
  let p = path.trim().toLowerCase();
  if (!p.startsWith("/")) p = `/${p}`;
  return p.replace(/\/+/g, "/").replace(/(.)\/$/, "$1");
}

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const t = document.createElement("textarea");
    t.value = text;
    document.body.append(t);
    t.select();
    document.execCommand("copy");
    t.remove();
  }
  const old = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = old; }, 1200);
}

function copyRow(label, text) {
  const row = document.createElement("div");
  row.className = "copy-row";
  const name = document.createElement("span");
  name.className = "dim small";
  name.textContent = label;
  const field = document.createElement("input");
  field.readOnly = true;
  field.value = text;
  field.className = "mono";
  field.addEventListener("focus", () => field.select());
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = "Copy";
  button.addEventListener("click", () => copy(field.value, button));
  row.append(name, field, button);
  return row;
}

async function fillLivePaths(token) {
  try {
    const q = token ? `&token=${encodeURIComponent(token)}` : "";
    const r = await fetch(`/api/v1/streams?page_size=100${q}`);
    if (!r.ok) return;
    const body = await r.json();
    const list = $("#live-paths");
    list.replaceChildren(...(body.streams || []).map((s) => {
      const o = document.createElement("option");
      o.value = s.path;
      return o;
    }));
  } catch {
    /* the path stays free text */
  }
}

function main() {
  const kind = location.pathname.split("/").filter(Boolean)[1] || "";
  const demo = DEMOS[kind];
  document.title = `hub · ${demo.title} demo`;
  $("#title").textContent = demo.title;
  $("#intro").textContent = demo.intro;
  if (demo.note) {
    $("#note").textContent = demo.note;
    $("#note").hidden = false;
  }
  const params = new URLSearchParams(location.search);
  const pathInput = $("#path");
  const tokenInput = $("#token");
  pathInput.value = params.get("path") || localStorage.getItem("hub.demo.path") || "/live/test";
  tokenInput.value = params.get("token") || sessionToken();
  $("#token-field").hidden = kind === "rtsp";
  fillLivePaths(tokenInput.value);

  const player = demo.play ? new Player($("#video"), {
    onError: (m) => { $("#state").textContent = m; $("#state").classList.add("error"); },
    onState: (s) => { $("#state").textContent = s; $("#state").classList.remove("error"); },
  }) : null;
  $("#player").hidden = !demo.play;
  $("#go").textContent = demo.play ? "Play" : "Show URLs";

  function update() {
    const path = canonical(pathInput.value || "/");
    const urls = streamUrls(path, tokenInput.value.trim());
    const url = urls[kind];
    const box = $("#urls");
    const rows = [copyRow("URL", url)];
    for (const [label, text] of demo.commands ? demo.commands(url, urls) : []) rows.push(copyRow(label, text));
    box.replaceChildren(...rows);
    if (demo.snippet) $("#snippet").textContent = demo.snippet(url);
    $("#snippet-box").hidden = !demo.snippet;
    return url;
  }

  pathInput.addEventListener("input", update);
  tokenInput.addEventListener("input", update);
  $("#pick").addEventListener("submit", (e) => {
    e.preventDefault();
    localStorage.setItem("hub.demo.path", canonical(pathInput.value));
    const url = update();
    if (player) player.play(kind, url);
  });
  if (player) $("#stop").addEventListener("click", () => player.stop());
  update();
  if (player && params.get("autoplay") === "1") player.play(kind, update());
}

main();
