"""WebRTC in the front: WHEP players on this front's UDP port, and the
HTTP signalling of WHEP and WHIP (WHIP publishers live in the owning
shard, `hub.shard.whip`). Design and figures: docs/webrtc.md.

- `whep`: the WHEP fan-out of one stream (one packetisation, SRTP per
  player) and its sessions;
- `service`: this front's WebRTC state: the UDP port, the DTLS certificate,
  the sessions, their bounds;
- `routes`: the HTTP endpoints (Starlette).
"""
