// One <video> element, four ways to fill it: HTTP-FLV and WS-FLV through
// One <video> element, five ways to fill it: HTTP-FLV and WS-FLV through
// mpegts.js, HLS and Low-Latency HLS through hls.js (or the browser's own HLS
// where hls.js cannot run), and WebRTC over WHEP with the browser's own
// RTCPeerConnection (no library). The libraries load on first use, so the
// console works without them and says what is missing instead of failing at
// page load.

const loaded = new Map();

function loadScript(src, globalName) {
  if (window[globalName]) return Promise.resolve(window[globalName]);
  if (!loaded.has(src)) {
    loaded.set(src, new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = src;
      s.onload = () => (window[globalName] ? resolve(window[globalName])
        : reject(new Error(`${src} loaded but defined no ${globalName}`)));
      s.onerror = () => {
        loaded.delete(src);
        reject(new Error(`${src} is missing: run \`npm ci\` in the server's folder (make webdeps)`));
      };
      document.head.appendChild(s);
    }));
  }
  return loaded.get(src);
}

export const KINDS = {
  flv: { label: "HTTP-FLV" },
  wsflv: { label: "WS-FLV" },
  hls: { label: "HLS" },
  ll: { label: "LL-HLS" },
  whep: { label: "WebRTC" },
};

// A WHEP player (RFC 9725's egress twin): a recvonly offer POSTed as
// application/sdp, the answer set, DELETE on the session URL to end. The
// server is ICE-lite and names its own address in the answer, so the offer
// goes out at once: no waiting for candidates, no trickle.
export async function whepPlay(url, video, { onFailed = () => {} } = {}) {
  const pc = new RTCPeerConnection();
  const stream = new MediaStream();
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addTransceiver("audio", { direction: "recvonly" });
  pc.ontrack = (e) => {
    stream.addTrack(e.track);
    video.srcObject = stream;
  };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "failed") onFailed("WebRTC: the connection failed (is the server's UDP port reachable?)");
  };
  let session = null;
  const close = () => {
    pc.close();
    if (session) fetch(session, { method: "DELETE", keepalive: true }).catch(() => {});
    session = null;
  };
  try {
    await pc.setLocalDescription(await pc.createOffer());
    const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/sdp" }, body: pc.localDescription.sdp });
    if (r.status !== 201) {
      let why = `${r.status}`;
      try { why += `: ${(await r.json()).error}`; } catch { /* no JSON body */ }
      throw new Error(`WHEP ${why}`);
    }
    session = new URL(r.headers.get("Location"), url).href;
    await pc.setRemoteDescription({ type: "answer", sdp: await r.text() });
  } catch (err) {
    close();
    throw err;
  }
  return { pc, close };
}

// Player URLs for a stream path on this host; `token` may be empty.
export function streamUrls(path, token, loc = location) {
  const q = token ? `?token=${encodeURIComponent(token)}` : "";
  const p = path.startsWith("/") ? path : `/${path}`;
  const wsScheme = loc.protocol === "https:" ? "wss:" : "ws:";
  const port = loc.port || (loc.protocol === "https:" ? "443" : "80");
  return {
    flv: `${loc.protocol}//${loc.host}/streams${p}.flv${q}`,
    wsflv: `${wsScheme}//${loc.host}/streams${p}.flv${q}`,
    hls: `${loc.protocol}//${loc.host}/streams${p}.m3u8${q}`,
    ll: `${loc.protocol}//${loc.host}/streams${p}.m3u8?variant=ll${q.replace("?", "&")}`,
    whep: `${loc.protocol}//${loc.host}/streams${p}/whep${q}`,
    whip: `${loc.protocol}//${loc.host}/streams${p}/whip`,
    rtsp: `rtsp://${loc.hostname}:${port}${p}`,
    rtspws: `${wsScheme}//${loc.host}/streams${p}${q}`,
    wsp: `${wsScheme}//${loc.host}/streams${p}${q}`,
  };
}

export class Player {
  constructor(video, { onError = () => {}, onState = () => {} } = {}) {
    this.video = video;
    this.onError = onError;
    this.onState = onState;
    this.impl = null;
    this.generation = 0;
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    video.addEventListener("error", () => {
      const e = video.error;
      if (e && this.impl) this.onError(`video element: ${e.message || "media error " + e.code}`);
    });
  }

  get playing() {
    return this.impl !== null;
  }

  async play(kind, url) {
    this.stop();
    const generation = ++this.generation;
    this.onState(`loading ${KINDS[kind] ? KINDS[kind].label : kind}…`);
    try {
      if (kind === "flv" || kind === "wsflv") await this.playFlv(url, generation);
      else if (kind === "hls" || kind === "ll") await this.playHls(url, generation, kind === "ll");
      else if (kind === "whep") await this.playWhep(url, generation);
      else throw new Error(`cannot play ${kind} in the browser`);
    } catch (err) {
      if (generation === this.generation) {
        this.stop();
        this.onError(err.message || String(err));
      }
      return;
    }
    if (generation === this.generation) this.onState(`${KINDS[kind].label}: ${url.replace(/token=[^&]+/, "token=…")}`);
  }

  async playFlv(url, generation) {
    const mpegts = await loadScript("/console/vendor/mpegts.js", "mpegts");
    if (generation !== this.generation) return;
    if (!mpegts.getFeatureList().mseLivePlayback) throw new Error("this browser has no MediaSource: FLV cannot play here");
    const player = mpegts.createPlayer(
      { type: "flv", isLive: true, url },
      { enableWorker: false, enableStashBuffer: false, liveBufferLatencyChasing: true, lazyLoad: false },
    );
    player.on(mpegts.Events.ERROR, (type, detail, info) => {
      if (generation === this.generation) this.onError(`FLV: ${type} ${detail}${info && info.msg ? ": " + info.msg : ""}`);
    });
    player.attachMediaElement(this.video);
    player.load();
    this.impl = {
      destroy: () => {
        try { player.pause(); player.unload(); player.detachMediaElement(); } catch { /* already torn down */ }
        player.destroy();
      },
    };
    this.start();
  }

  async playHls(url, generation, lowLatency = false) {
    let Hls = null;
    try {
      Hls = await loadScript("/console/vendor/hls.js", "Hls");
    } catch (err) {
      if (!this.video.canPlayType("application/vnd.apple.mpegurl")) throw err;
    }
    if (generation !== this.generation) return;
    if (Hls && Hls.isSupported()) {
      // LL-HLS: hls.js follows PART-HOLD-BACK and blocks on playlist reloads; a
      // player that joined behind (at the keyframe before the live edge) catches
      // up by playing at up to 1.2x.
      const hls = new Hls(lowLatency ? { lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.2 }
        : { liveSyncDurationCount: 2, lowLatencyMode: false });
      hls.on(Hls.Events.ERROR, (_event, data) => {
        if (data.fatal && generation === this.generation) this.onError(`HLS: ${data.type} ${data.details}`);
      });
      hls.loadSource(url);
      hls.attachMedia(this.video);
      this.impl = { destroy: () => hls.destroy() };
    } else {
      this.video.src = url; // Safari, iOS: the browser plays HLS itself.
      this.impl = { destroy: () => {} };
    }
    this.start();
  }

  async playWhep(url, generation) {
    if (!window.RTCPeerConnection) throw new Error("this browser has no WebRTC");
    const session = await whepPlay(url, this.video, {
      onFailed: (m) => { if (generation === this.generation) this.onError(m); },
    });
    if (generation !== this.generation) {
      session.close();
      return;
    }
    this.impl = { destroy: () => session.close() };
    this.start();
  }

  start() {
    const p = this.video.play();
    if (p && p.catch) p.catch(() => { /* autoplay refused: the controls still work */ });
  }

  stop() {
    this.generation++;
    if (this.impl) {
      const impl = this.impl;
      this.impl = null;
      impl.destroy();
    }
    this.video.pause();
    this.video.srcObject = null;
    this.video.removeAttribute("src");
    this.video.load();
    this.onState("stopped");
  }
}
