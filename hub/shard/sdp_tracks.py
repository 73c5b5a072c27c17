"""A publisher's SDP → the stream's tracks, and the SDP players get back.

The publisher's ANNOUNCE body says what it will send; the shard turns each
RTP media section into a `TrackDesc` (the contract in
`hub.media.stream_desc`): codec from the rtpmap, codec configuration from
the fmtp (H.264 sprop-parameter-sets, H.265 sprop-vps/sps/pps, AAC config),
picture size and frame rate from the SPS, sample rate and channels from the
AudioSpecificConfig. A parameter set that does not parse leaves the track
without it (the in-band ones fix that later) instead of refusing a
publisher whose camera writes odd fmtp.

Players do not see the publisher's controls (`streamid=0`, absolute URLs of
the publisher's host): the SDP we hand out names track N `trackID=N`, which
is what the fronts' SETUP handling expects.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
from dataclasses import dataclass
from typing import Callable

from ..errors import BadRequest, HubError
from ..media.aac import AacConfig
from ..media.rtsp import control_after_query
from ..media.sdp import (PLAYER_CONNECTION, PLAYER_ORIGIN, Sdp, SdpMedia, aac_fmtp, aac_params, format_fmtp, h264_parameter_sets, h265_fmtp,
                         h265_parameter_sets, parse_fmtp)
from ..media.stream_desc import AUDIO_AAC, TrackDesc

log = logging.getLogger("hub.shard.sdp")

__all__ = ["AnnouncedTrack", "SdpFor", "announced_tracks", "published_tracks", "player_sdp", "tracks_sdp",
           "track_for_uri", "describe_video", "with_h264_params", "with_h265_params", "with_aac_config"]

#: The SDP players get for a stream's tracks as they are now.
SdpFor = Callable[[list[TrackDesc]], str]

_RTP_PROTOS = ("RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF", "RTP/AVP/TCP")


@dataclass
class AnnouncedTrack:
    """One RTP media section of the ANNOUNCE, with what SETUP needs."""

    media: SdpMedia
    desc: TrackDesc  # index = position among the announced tracks
    control: str  # the publisher's control ("" when absent)


def announced_tracks(sdp: Sdp) -> list[AnnouncedTrack]:
    """The RTP media sections of `sdp` as tracks; BadRequest when none.

    A section without an rtpmap for a dynamic payload type is skipped (we
    could not say what it carries); so are non-RTP sections.
    """
    out: list[AnnouncedTrack] = []
    for media in sdp.media:
        if media.proto.upper() not in _RTP_PROTOS or not media.formats:
            continue
        rtpmap = media.rtpmap
        if rtpmap is None:
            log.info("skipping %s section: payload type %s without rtpmap", media.media, media.formats[0])
            continue
        desc = TrackDesc(index=len(out), kind=media.media.lower(), codec=rtpmap.encoding_name.upper(),
                         payload_type=rtpmap.payload_type, clock_rate=rtpmap.clock_rate,
                         channels=rtpmap.channels or 0, fmtp=_fmtp_text(media))
        _configure(desc, media.fmtp)
        out.append(AnnouncedTrack(media, desc, media.control or ""))
    if not out:
        raise BadRequest("SDP without any RTP track")
    return out


def _fmtp_text(media: SdpMedia) -> str:
    """The publisher's fmtp parameters for the first format, as written."""
    pt = str(media.payload_type)
    for k, v in media.attributes:
        if k == "fmtp" and v:
            num, _, rest = v.strip().partition(" ")
            if num == pt:
                return rest.strip()
    return ""


def _configure(desc: TrackDesc, fmtp: dict[str, str]) -> None:
    """Fill codec configuration from the fmtp; a bad value is logged, not fatal."""
    try:
        if desc.codec == "H264":
            pair = h264_parameter_sets(fmtp)
            if pair is not None:
                desc.sps, desc.pps = pair
                describe_video(desc)
        elif desc.codec in ("H265", "HEVC"):
            desc.codec = "H265"
            sets = h265_parameter_sets(fmtp)
            if sets is not None:
                desc.vps, desc.sps, desc.pps = sets
                describe_video(desc)
        elif desc.codec == AUDIO_AAC:
            asc = aac_params(fmtp).config
            cfg = AacConfig.parse(asc)
            desc.asc = asc
            desc.sample_rate = cfg.sample_rate
            desc.channels = cfg.channels or desc.channels
    except HubError as exc:
        log.info("track %d (%s): ignoring unusable fmtp: %s", desc.index, desc.codec, exc)
        desc.sps = desc.pps = desc.vps = desc.asc = b""
        desc.width = desc.height = 0
        desc.framerate = 0.0


def describe_video(desc: TrackDesc) -> None:
    """Width, height and frame rate from `desc.sps` (ProtocolError if bad)."""
    if desc.codec == "H264":
        from ..media.h264 import parse_sps as parse_h264_sps

        info = parse_h264_sps(desc.sps)
    else:
        from ..media.h265 import parse_sps as parse_h265_sps

        info = parse_h265_sps(desc.sps)  # type: ignore[assignment]
    desc.width = int(info.width)
    desc.height = int(info.height)
    fps = getattr(info, "fps", None)
    desc.framerate = float(fps) if fps else 0.0


def with_h264_params(desc: TrackDesc, sps: bytes, pps: bytes) -> TrackDesc:
    """A copy of `desc` with new in-band SPS/PPS, its fmtp rewritten to match."""
    params = parse_fmtp(desc.fmtp)
    params.setdefault("packetization-mode", "1")
    if len(sps) >= 4:  # profile_idc, constraint flags, level_idc
        params["profile-level-id"] = sps[1:4].hex().upper()
    params["sprop-parameter-sets"] = f"{_b64(sps)},{_b64(pps)}"
    new = dataclasses.replace(desc, sps=sps, pps=pps, fmtp=format_fmtp(params))
    _video_or_keep(new, desc)
    return new


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def with_h265_params(desc: TrackDesc, vps: bytes, sps: bytes, pps: bytes) -> TrackDesc:
    """A copy of `desc` with new in-band VPS/SPS/PPS, its fmtp rewritten to match."""
    params = parse_fmtp(desc.fmtp)
    params.update(parse_fmtp(h265_fmtp(vps, sps, pps)))
    new = dataclasses.replace(desc, vps=vps, sps=sps, pps=pps, fmtp=format_fmtp(params))
    _video_or_keep(new, desc)
    return new


def with_aac_config(desc: TrackDesc, asc: bytes) -> TrackDesc:
    """A copy of `desc` with a new AudioSpecificConfig, its fmtp's config
    rewritten to match (ProtocolError when `asc` does not parse)."""
    cfg = AacConfig.parse(asc)
    params = parse_fmtp(desc.fmtp or aac_fmtp(asc))
    params["config"] = asc.hex().upper()
    return dataclasses.replace(desc, asc=bytes(asc), sample_rate=cfg.sample_rate,
                               channels=cfg.channels or desc.channels, fmtp=format_fmtp(params))


def _video_or_keep(new: TrackDesc, old: TrackDesc) -> None:
    try:
        describe_video(new)
    except HubError as exc:
        log.info("track %d: in-band SPS does not parse (%s); keeping the old size", new.index, exc)
        new.width, new.height, new.framerate = old.width, old.height, old.framerate


def track_for_uri(tracks: list[AnnouncedTrack], uri: str) -> AnnouncedTrack:
    """The track a publisher's SETUP names.

    Publishers resolve our copy of their control against the request URL
    (`rtsp://h/live/x/streamid=0`), or send it absolute; some send the bare
    stream URL when there is a single track; FFmpeg appends it to a URL's
    query (`rtsp://h/live/x?k=v/streamid=0`). BadRequest when nothing fits.
    """
    path, _, query = uri.partition("?")
    for target in (path.rstrip("/"), control_after_query(path, query)):
        if target is None:
            continue
        for t in tracks:
            control = t.control.rstrip("/")
            if not control or control == "*":
                continue
            if "://" in control[:16]:
                if control.split("?", 1)[0] == target:
                    return t
            elif target == control or target.endswith("/" + control.lstrip("/")):
                return t
    if len(tracks) == 1:
        return tracks[0]
    raise BadRequest(f"SETUP for a track the ANNOUNCE did not describe: {uri[:120]!r}")


def player_sdp(sdp: Sdp, chosen: list[tuple[AnnouncedTrack, TrackDesc]]) -> str:
    """The SDP for players: the chosen sections in order, track N controlled
    by `trackID=N`, one payload type each, fmtp from the (possibly updated)
    TrackDesc. Session-level control and connection go (they named the
    publisher's side); unknown lines stay."""
    out = Sdp(version=sdp.version, origin=PLAYER_ORIGIN, session_name=sdp.session_name or "Stream",
              connection=PLAYER_CONNECTION, timing="0 0", bandwidth=list(sdp.bandwidth),
              attributes=[(k, v) for k, v in sdp.attributes if k not in ("control", "range")],
              extra=list(sdp.extra))
    for i, (announced, desc) in enumerate(chosen):
        src = announced.media
        pt = str(desc.payload_type)
        attrs: list[tuple[str, str | None]] = []
        for k, v in src.attributes:
            if k in ("control", "rtcp-mux"):
                continue
            if k in ("rtpmap", "fmtp") and (v or "").strip().partition(" ")[0] != pt:
                continue  # another format's line: the track carries only the first
            if k == "fmtp":
                continue  # written below from the TrackDesc
            attrs.append((k, v))
        if desc.fmtp:
            idx = next((j + 1 for j, (k, _) in enumerate(attrs) if k == "rtpmap"), len(attrs))
            attrs.insert(idx, ("fmtp", f"{pt} {desc.fmtp}"))
        attrs.append(("control", f"trackID={i}"))
        out.media.append(SdpMedia(media=src.media, port=0, proto="RTP/AVP", formats=[pt],
                                  bandwidth=list(src.bandwidth), attributes=attrs, extra=list(src.extra)))
    return str(out)


def published_tracks(sdp: Sdp, chosen: list[AnnouncedTrack]) -> tuple[list[TrackDesc], SdpFor]:
    """The announced tracks a source publishes (those it set up, in SDP
    order), numbered 0..n-1 as ring tracks, and the player SDP of any later
    version of them (after in-band parameter changes)."""
    tracks = [dataclasses.replace(t.desc, index=i) for i, t in enumerate(chosen)]
    return tracks, lambda current: player_sdp(sdp, list(zip(chosen, current)))


def tracks_sdp(tracks: list[TrackDesc]) -> str:
    """The player SDP of tracks that came without an SDP (RTMP, WHIP): one
    section per track, written as `player_sdp` writes an announced one."""
    chosen: list[tuple[AnnouncedTrack, TrackDesc]] = []
    for t in tracks:
        rtpmap = f"{t.payload_type} {t.codec}/{t.clock_rate}"
        if t.kind == "audio" and t.channels:
            rtpmap += f"/{t.channels}"
        media = SdpMedia(media=t.kind, formats=[str(t.payload_type)], attributes=[("rtpmap", rtpmap)])
        chosen.append((AnnouncedTrack(media, t, ""), t))
    return player_sdp(Sdp(), chosen)
