"""WebRTC media engine (WHEP playback, WHIP ingest), sans-IO.

One UDP port serves every peer of a process: :mod:`.mux` demultiplexes
datagrams (STUN by ICE ufrag, the rest by checked address), :mod:`.peer`
holds one peer's ICE-lite, DTLS-server (:mod:`.dtls`) and SRTP
(:mod:`.srtp`) state, :mod:`.stream_out` packetises each stream once for all
its peers, :mod:`.offer` / :mod:`.answer` do the SDP offer/answer.
See docs/webrtc.md for the design and its measurements.
"""
