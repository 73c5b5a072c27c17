"""Headless Chromium as a WHEP player of the engine; prints one JSON result.

Run by test_webrtc_chromium.py inside a network namespace that has only a
loopback interface (`unshare -n`): Chromium gathers candidates on every
interface it sees, and there it sees only 127.0.0.1, so every datagram of
the session stays on loopback. Not a test module itself.

    python chromium_whep.py CHROMIUM_PATH PROFILE FRAMES
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.async_api import async_playwright

import webrtc_glue
from hub.media.access_unit import avcc_split
from hub.media.webrtc.answer import whep_answer
from hub.media.webrtc.mux import WebRtcMux
from hub.media.webrtc.offer import parse_offer
from hub.media.webrtc.peer import PeerConnected
from hub.media.webrtc.stream_out import WebRtcStreamOut

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--autoplay-policy=no-user-gesture-required", "--allow-loopback-in-peer-connection",
        "--disable-features=WebRtcHideLocalIpsWithMdns"]

PAGE_OFFER = """async () => {
    const pc = new RTCPeerConnection(); window.pc = pc;
    pc.addTransceiver('video', {direction: 'recvonly'});
    pc.addTransceiver('audio', {direction: 'recvonly'});
    pc.ontrack = e => { if (e.track.kind == 'video')
        document.getElementById('v').srcObject = new MediaStream([e.track]); };
    await pc.setLocalDescription(await pc.createOffer());
    return pc.localDescription.sdp; }"""
PAGE_VIDEO = "() => { const v = document.getElementById('v'); return [v.currentTime, v.videoWidth, v.videoHeight]; }"
PAGE_STATS = """async () => { const r = []; (await window.pc.getStats()).forEach(x => {
    if (x.type == 'inbound-rtp') r.push({kind: x.kind, framesDecoded: x.framesDecoded,
        packetsLost: x.packetsLost, pliCount: x.pliCount, frameWidth: x.frameWidth}); }); return r; }"""


async def main(chromium: str, profile: str, frames: int) -> dict[str, Any]:
    webrtc_glue.PROFILE = profile
    units = webrtc_glue.h264_access_units(Path(tempfile.mkdtemp()), frames=frames)
    desc = webrtc_glue.h264_desc(units)
    mux = WebRtcMux()
    glue = await webrtc_glue.UdpGlue.start(mux)
    out = WebRtcStreamOut(desc)
    result: dict[str, Any] = {"samples": []}
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium, args=ARGS)
            page = await browser.new_page()
            await page.set_content("<video id=v autoplay muted playsinline></video>")
            result["offer"] = offer_sdp = await page.evaluate(PAGE_OFFER)
            offer = parse_offer(offer_sdp)
            local = webrtc_glue.local_params(glue.port)
            answer = whep_answer(offer, desc.tracks, out.ssrcs, local)
            result["payload_type"] = answer.send_tracks[0].payload_type
            peer = webrtc_glue.make_peer(offer, local, send=answer.send_tracks, source=out)
            mux.add(peer)
            await page.evaluate("async (sdp) => window.pc.setRemoteDescription({type: 'answer', sdp})", answer.sdp)
            deadline = time.monotonic() + 15
            while not isinstance(await asyncio.wait_for(glue.events.get(), deadline - time.monotonic()),
                                 PeerConnected):
                pass
            assert peer.srtp is not None
            result["srtp"] = peer.srtp.profile.openssl_name.decode()
            for i, au in enumerate(units):
                key = any(n[0] & 0x1F == 5 for n in avcc_split(au))
                glue.send(peer.send_rtp(0, out.packetize(0, au, i * 3600, keyframe=key, now=time.time())))
                await asyncio.sleep(0.04)
                if i % 25 == 24:
                    result["samples"].append(await page.evaluate(PAGE_VIDEO))
            await asyncio.sleep(0.3)
            result["inbound"] = await page.evaluate(PAGE_STATS)
            result["units"] = out.units
            result["rtp_out"] = peer.stats.rtp_out
            await browser.close()
    finally:
        await glue.close()
    return result


if __name__ == "__main__":
    print(json.dumps(asyncio.run(asyncio.wait_for(main(sys.argv[1], sys.argv[2], int(sys.argv[3])), 90))))
