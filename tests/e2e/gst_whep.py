"""A WHEP player for the tests on GStreamer's webrtcbin (libnice for ICE,
GStreamer's own DTLS and SRTP: a WebRTC stack that is neither Chromium's
nor aiortc's). It offers to receive H.264 (packetization-mode 1), POSTs
the offer once ICE gathering is done (no trickle), applies the answer and
decodes. Run by Debian's python3 (its gi bindings):

    /usr/bin/python3 tests/e2e/gst_whep.py WHEP_URL FRAMES

Prints "FRAMES SIZE,..." (decoded frames, their sizes in bytes) and exits
once FRAMES were decoded or 20 s passed; an HTTP error is printed as
"error STATUS BODY"."""
import sys
import threading
import urllib.error
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

Gst.init(None)
url, want = sys.argv[1], int(sys.argv[2])
loop = GLib.MainLoop()
frames: list = []
pipe = Gst.Pipeline.new("player")
webrtc = Gst.ElementFactory.make("webrtcbin", "webrtc")
webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
pipe.add(webrtc)
ICE = webrtc.get_property("ice-agent")  # held: gi would drop webrtcbin's agent
ICE.emit("add-local-ip-address", "127.0.0.1")  # libnice leaves loopback out
CAPS = Gst.Caps.from_string(  # held too: the transceiver keeps a pointer to them
    "application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000,"
    "packetization-mode=(string)1,profile-level-id=(string)42e01f")
webrtc.emit("add-transceiver", GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY, CAPS)
posted = []


def on_pad(_webrtc, pad):
    if pad.get_direction() != Gst.PadDirection.SRC:
        return
    decode = Gst.parse_bin_from_description(
        "rtph264depay ! h264parse ! avdec_h264 ! fakesink name=out signal-handoffs=true", True)
    pipe.add(decode)
    decode.sync_state_with_parent()
    pad.link(decode.get_static_pad("sink"))

    def handoff(_sink, buf, _pad):
        frames.append(buf.get_size())
        if len(frames) >= want:
            GLib.idle_add(loop.quit)
    decode.get_by_name("out").connect("handoff", handoff)


def answered(text):
    _res, sdp = GstSdp.SDPMessage.new_from_text(text)
    webrtc.emit("set-remote-description",
                GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, sdp), None)


def post(offer):
    req = urllib.request.Request(url, data=offer.encode(), method="POST",
                                 headers={"Content-Type": "application/sdp"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            GLib.idle_add(answered, r.read().decode())
    except urllib.error.HTTPError as e:
        print("error", e.code, e.read().decode(errors="replace"), flush=True)
        GLib.idle_add(loop.quit)


def on_gathering(*_args):
    if webrtc.get_property("ice-gathering-state") != GstWebRTC.WebRTCICEGatheringState.COMPLETE or posted:
        return
    posted.append(True)
    offer = webrtc.get_property("local-description").sdp.as_text()
    threading.Thread(target=post, args=(offer,), daemon=True).start()


def on_offer(promise, _data):
    reply = promise.get_reply()  # held while its value is read (gi)
    offer = reply.get_value("offer")
    if offer is not None:
        webrtc.emit("set-local-description", offer, None)


webrtc.connect("pad-added", on_pad)
webrtc.connect("notify::ice-gathering-state", on_gathering)
webrtc.connect("on-negotiation-needed",
               lambda _w: webrtc.emit("create-offer", None, Gst.Promise.new_with_change_func(on_offer, None)))
pipe.set_state(Gst.State.PLAYING)
GLib.timeout_add_seconds(20, loop.quit)
loop.run()
pipe.set_state(Gst.State.NULL)
print(len(frames), ",".join(str(n) for n in sorted(set(frames))), flush=True)
