"""Every control-plane method, declared once: name, arguments, who handles it.

Each constant is a `Call` (request), `Note` (notice) or `Hand` (fd hand-off)
of its arguments' TypedDict, a `Call` also of its result
(`Call[PathArgs, dict[str, Any]]("open_stream", PathArgs, "shard")`),
addressed to the processes that handle it. Each process has one dispatch
table (`hub.ipc.dispatch.Dispatch`) that handles exactly the methods
addressed to it: `hub.supervisor.links.SUPERVISOR`,
`hub.shard.main.SHARD`, `hub.api.links.FRONT`; tests/ipc/test_messages.py
holds them to that, to every handler taking its method's arguments and
returning its declared result, and to every method having a sender. Send
with `IpcChannel.call` (which returns the declared result) / `tell` /
`hub.ipc.handoff.send_socket`.

A result with fixed keys is a TypedDict of this module (`TokenPair`,
`WhipAnswer`, ...); one whose shape is its producer's and open (a stream's
info, counters, a report) is `dict[str, Any]` or a list of them. Nothing
checks an answer at run time: mypy holds each handler to its method's
result, and each caller to the same. The envelope around a method is
`hub.ipc.envelope`'s.
"""

from __future__ import annotations

from typing import Any, Final, NotRequired, TypeAlias, TypedDict

from .methods import Call, Hand, Method, Note

# Several label values in one key of a metrics report.
LABEL_SEP = "\t"

# Key of the bytes a front already read from a socket it hands over.
ALREADY_READ = "already_read"


class NoArgs(TypedDict):
    """A method without arguments."""


# -- supervisor -> every child ------------------------------------------------------
class StatsArgs(TypedDict):
    extra: bool  # add per-process rss, cpu, gc (`extra=1` of /api/v1/runtime)


class ReloadArgs(TypedDict):
    config: dict[str, Any]  # Config.to_dict(): the new configuration


class StoreArgs(TypedDict, total=False):
    """The stores' tables in wire form (the changed ones; all in a snapshot)."""
    users: dict[str, Any]
    routes: dict[str, Any]
    record: dict[str, Any]
    key: bytes                   # the token signing key
    relay_user: list[str]        # a cluster's: other nodes pull as this user


class ChildReport(TypedDict, total=False):
    """What a child answers to `metrics` (added up by hub.supervisor.tally).

    `c` counters and `g` gauges: {key: number} or {key: {label value(s): number}}
    (several label values joined by LABEL_SEP); `p`: {path: [bytes in, bytes out]};
    `h`: {IPC method: [count per bucket, +Inf count, sum of seconds]}
    (hub.ipc.latency)."""

    c: dict[str, Any]
    g: dict[str, Any]
    p: dict[str, list[float]]
    h: dict[str, list[float]]


class MetricsText(TypedDict):
    """The supervisor's answer to `scrape`: the tree's /metrics exposition."""
    body: bytes
    type: str  # its Content-Type


PING: Final = Call[NoArgs, str]("ping", NoArgs, "shard", "front")  # heartbeat: "pong"
STATS: Final = Call[StatsArgs, dict[str, Any]]("stats", StatsArgs, "shard", "front")  # counters for /api/v1/runtime
METRICS: Final = Call[NoArgs, ChildReport]("metrics", NoArgs, "shard", "front")  # its counters (hub.supervisor.tally)
SCRAPE: Final = Call[NoArgs, MetricsText]("scrape", NoArgs, "supervisor")  # front -> supervisor: the tree's /metrics
DRAIN: Final = Call[NoArgs, bool]("drain", NoArgs, "shard", "front")  # stop taking connections and sessions
RELOAD: Final = Call[ReloadArgs, bool]("reload", ReloadArgs, "shard", "front")  # the reloadable keys changed
STORE_CHANGED: Final = Call[StoreArgs, bool]("store_changed", StoreArgs, "shard", "front")  # users/routes/rules changed


# -- supervisor -> fronts, front -> supervisor: players across fronts ------------------
class KickArgs(TypedDict):
    cid: int


class ConsumersArgs(TypedDict):
    paths: NotRequired[list[str]]  # only these streams' players (a listing's page); every stream without it
    detail: NotRequired[bool]  # each player's `info()` (default); False: `{"id"}` only, to count them


FrontConsumersArgs = TypedDict("FrontConsumersArgs", {  # a front leaves itself out
    "except": int, "paths": NotRequired[list[str]], "detail": NotRequired[bool]})
KickConsumerArgs = TypedDict("KickConsumerArgs", {"cid": int, "except": int})

#: A front's players by stream path (each a consumer's `info()`).
Consumers: TypeAlias = dict[str, list[dict[str, Any]]]

CONSUMERS: Final = Call[ConsumersArgs, Consumers]("consumers", ConsumersArgs, "front")  # the front's players by path
KICK: Final = Call[KickArgs, bool]("kick", KickArgs, "front")  # close the player `cid` if here: True if it was
FRONT_CONSUMERS: Final = Call[FrontConsumersArgs, list[Consumers]](
    "front_consumers", FrontConsumersArgs, "supervisor")  # every other front's
KICK_CONSUMER: Final = Call[KickConsumerArgs, bool]("kick_consumer", KickConsumerArgs, "supervisor")  # on any front


# -- front (and supervisor) -> shard: streams -------------------------------------------
class PathArgs(TypedDict):
    path: str


class HlsOpenArgs(TypedDict):
    path: str
    variant: NotRequired[str]  # "ts" (default), "fmp4", "ll" (subscribes the front)


class DeleteStreamArgs(TypedDict):
    path: str
    stream_id: NotRequired[int | None]  # a cluster's: this stream, not a newer one of the path


class StreamIdArgs(TypedDict):
    stream_id: int


class HlsPathArgs(TypedDict):
    p: str


class HlsFolder(TypedDict):
    """`hls_open`'s answer: the variant's folder (and for "ll", its state)."""
    folder: str
    st: NotRequired[list[Any]]  # "ll": LlState as a list (hub.shard.hls_fmp4.ll_wire)
    n: NotRequired[int]         # "ll": the next part's number


OPEN_STREAM: Final = Call[PathArgs, dict[str, Any]]("open_stream", PathArgs, "shard")  # the ring's wire description
DESCRIBE: Final = Call[StreamIdArgs, dict[str, Any]]("describe", StreamIdArgs, "shard")  # a stream's current description
HLS_OPEN: Final = Call[HlsOpenArgs, HlsFolder]("hls_open", HlsOpenArgs, "shard")  # start/keep a segmenter
LIST_STREAMS: Final = Call[NoArgs, list[dict[str, Any]]]("list_streams", NoArgs, "shard")  # the shard's streams (API)
STREAM_INFO: Final = Call[PathArgs, dict[str, Any]]("stream_info", PathArgs, "shard")  # one stream (API); NotFound
DELETE_STREAM: Final = Call[DeleteStreamArgs, bool]("delete_stream", DeleteStreamArgs, "shard")  # close it (API, cluster)
RECORD_STATUS: Final = Call[NoArgs, dict[str, Any]]("record_status", NoArgs, "shard")  # the shard's recorders
RELEASE_STREAM: Final = Note("release_stream", StreamIdArgs, "shard")      # the front's last player left
REQUEST_KEYFRAME: Final = Note("request_keyframe", StreamIdArgs, "shard")  # a WebRTC player's PLI
HLS_TOUCH: Final = Note("hls_touch", HlsPathArgs, "shard")        # LL players still ask


class FrontArgs(TypedDict):
    index: int


FRONT_HELLO: Final = Note("front_hello", FrontArgs, "shard")  # which front this link is (WHEP session routing)


# -- shard -> front: what its streams do ----------------------------------------------
class WakeArgs(TypedDict):
    s: dict[int, int]  # stream id -> write sequence, coalesced per loop pass


class HlsPartArgs(TypedDict):
    p: str
    st: list[Any]  # LlState as a list (hub.shard.hls_fmp4.ll_wire)
    n: int         # the next part's number


WAKE: Final = Note("wake", WakeArgs, "front")                     # rings written
STREAM_ENDED: Final = Note("stream_ended", StreamIdArgs, "front")
HLS_PART: Final = Note("hls_part", HlsPartArgs, "front")          # a LL part is out
HLS_GONE: Final = Note("hls_gone", HlsPathArgs, "front")          # the fMP4 segmenter stopped


# -- publishers: front -> shard -------------------------------------------------------
class HandoffArgs(TypedDict):
    path: str
    peer: str          # host:port of the publisher
    user: str          # who authenticated ("" without auth)
    already_read: NotRequired[bytes]  # ALREADY_READ: set by send_socket


class WhipOfferArgs(TypedDict):
    path: str
    sdp: bytes
    client: str  # host:port
    host: str    # the address the client reached (ICE candidates)
    user: str


class SessionOpArgs(TypedDict):
    id: str
    path: str
    op: str                # "delete" | "patch"
    if_match: str | None
    ufrag: NotRequired[str | None]  # a PATCH's ICE restart
    front: NotRequired[int]  # a WHEP session's: the front its id names (the shard asks that one only)


class WhipAnswer(TypedDict):
    """A WHIP publisher's session: the answer to its offer."""
    id: str
    sdp: str
    etag: str


HANDOFF_RTSP: Final = Hand("handoff_rtsp", HandoffArgs, "shard")  # an RTSP publisher's TCP socket
HANDOFF_RTMP: Final = Hand("handoff_rtmp", HandoffArgs, "shard")  # an RTMP publisher's, at `publish`
WHIP_OFFER: Final = Call[WhipOfferArgs, WhipAnswer]("whip_offer", WhipOfferArgs, "shard")
# A session's DELETE/PATCH: None if not held here, else what hub.media.webrtc.trickle.answer_session_op says.
WHIP_SESSION: Final = Call[SessionOpArgs, str | None]("whip_session", SessionOpArgs, "shard")
# A WHEP session's DELETE/PATCH at a front that does not hold it: to the shard, which asks the other fronts.
WEBRTC_SESSION: Final = Call[SessionOpArgs, str | None]("webrtc_session", SessionOpArgs, "shard", "front")


# -- child -> supervisor --------------------------------------------------------------
class AdmissionArgs(TypedDict):
    kind: str  # "player" | "publisher"
    path: str
    ip: str
    holder: NotRequired[str]  # who releases it (a publisher's shard), if not the sender
    viewer: NotRequired[str]  # an HLS viewer's key: one grant however many fronts ask


class RuntimeArgs(TypedDict):
    extra: bool


class LoginArgs(TypedDict):
    username: str
    password: str


class RefreshArgs(TypedDict):
    token: str


# A store write's deadline (time.monotonic()) is set by FrontContext.store_write.
class UsersUpsertArgs(TypedDict):
    user: dict[str, Any]
    update_password: bool
    deadline: NotRequired[float]


class UsersDeleteArgs(TypedDict):
    name: str
    deadline: NotRequired[float]


class RoutesUpsertArgs(TypedDict):
    route: dict[str, Any]
    deadline: NotRequired[float]


class RecordUpsertArgs(TypedDict):
    rule: dict[str, Any]
    deadline: NotRequired[float]


class PatternArgs(TypedDict):
    pattern: str
    deadline: NotRequired[float]


class Health(TypedDict):
    """`/healthz`: the tree answers; how many children are up."""
    status: str  # "ok"
    children: int
    of: int
    draining: bool


class Readiness(TypedDict):
    """`/readyz`: every child up and serving, no drain."""
    ready: bool
    draining: bool
    children: dict[str, bool]  # child name -> up and serving


class TokenPair(TypedDict):
    """A login's or a refresh's tokens (the API answers them as they are)."""
    access_token: str
    refresh_token: str


SERVING: Final = Note("serving", NoArgs, "supervisor")            # listening / serving, stores loaded
ADMIT: Final = Call[AdmissionArgs, bool]("admit", AdmissionArgs, "supervisor")  # may a session start? True; LimitReached
ADMITTED: Final = Note("admitted", AdmissionArgs, "supervisor")   # one started (no limit set)
RELEASE: Final = Note("release", AdmissionArgs, "supervisor")     # one ended
HEALTH: Final = Call[NoArgs, Health]("health", NoArgs, "supervisor")  # does the tree answer
READY: Final = Call[NoArgs, Readiness]("ready", NoArgs, "supervisor")  # every child up, no drain
RUNTIME: Final = Call[RuntimeArgs, dict[str, Any]]("runtime", RuntimeArgs, "supervisor")  # /api/v1/runtime
SERVER_INFO: Final = Call[NoArgs, dict[str, Any]]("server_info", NoArgs, "supervisor")  # /api/v1/server
STORE_SNAPSHOT: Final = Call[NoArgs, StoreArgs]("store_snapshot", NoArgs, "supervisor")  # all tables
LOGIN: Final = Call[LoginArgs, TokenPair]("login", LoginArgs, "supervisor")  # Forbidden
REFRESH: Final = Call[RefreshArgs, TokenPair]("refresh", RefreshArgs, "supervisor")
# A store write answers the name or pattern it wrote, or True for a delete.
USERS_UPSERT: Final = Call[UsersUpsertArgs, str]("users_upsert", UsersUpsertArgs, "supervisor")
USERS_DELETE: Final = Call[UsersDeleteArgs, bool]("users_delete", UsersDeleteArgs, "supervisor")
ROUTES_UPSERT: Final = Call[RoutesUpsertArgs, str]("routes_upsert", RoutesUpsertArgs, "supervisor")
ROUTES_DELETE: Final = Call[PatternArgs, bool]("routes_delete", PatternArgs, "supervisor")
RECORD_RULES: Final = Call[NoArgs, list[dict[str, Any]]]("record_rules", NoArgs, "supervisor")
RECORD_UPSERT: Final = Call[RecordUpsertArgs, str]("record_upsert", RecordUpsertArgs, "supervisor")
RECORD_DELETE: Final = Call[PatternArgs, bool]("record_delete", PatternArgs, "supervisor")


# -- a cluster's nodes (hub.cluster; only with --cluster) ----------------------------
class LocateArgs(TypedDict):
    path: str
    routed: bool  # a route applies here: pull it here unless another node has it


class ClusterStreamArgs(TypedDict):
    up: bool
    path: str
    sid: int
    kind: NotRequired[str]         # "publish" | "pull" | "relay" (when up)
    codecs: NotRequired[list[str]]
    start_on: NotRequired[Any]
    t: NotRequired[float]          # time.time() it went live


class ClusterKickArgs(TypedDict):
    node: str
    cid: int


class Located(TypedDict, total=False):
    """Where to pull a path from: both keys when another node holds it, else none."""
    relay: str  # an RTSP URL on that node
    node: str


CLUSTER_LOCATE: Final = Call[LocateArgs, Located]("cluster_locate", LocateArgs, "supervisor")
CLUSTER_STREAM: Final = Note("cluster_stream", ClusterStreamArgs, "supervisor")  # a shard's went live/ended
# The other nodes' streams: [{node, streams, consumers}].
CLUSTER_STREAMS: Final = Call[NoArgs, list[dict[str, Any]]]("cluster_streams", NoArgs, "supervisor")
CLUSTER_NODES: Final = Call[NoArgs, dict[str, Any]]("cluster_nodes", NoArgs, "supervisor")  # GET /api/v1/cluster
CLUSTER_DELETE: Final = Call[PathArgs, bool]("cluster_delete", PathArgs, "supervisor")  # True: sent to its owner
CLUSTER_KICK: Final = Call[ClusterKickArgs, bool]("cluster_kick", ClusterKickArgs, "supervisor")  # a player on another node


def declared() -> dict[str, Method[Any]]:
    """Every method of this module by name (tests, docs)."""
    out: dict[str, Method[Any]] = {}
    for value in globals().values():
        if isinstance(value, Method):
            if value.name in out:
                raise ValueError(f"method {value.name!r} declared twice")
            out[value.name] = value
    return out
