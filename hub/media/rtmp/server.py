"""The RTMP server connection: a sans-IO state machine (h11/aioquic style).

``receive_data(data, now)`` only buffers; ``next_event()`` returns the next
event, ``NEED_DATA`` or ``PAUSED``; ``data_to_send()`` returns the bytes the
connection produced on its own (handshake, acknowledgements, ping answers,
``createStream`` results); ``accept_*``/``reject_*`` return the bytes of the
owner's decision (with anything still waiting in front). Time is an
argument: ``get_timer()`` says when to call ``handle_timer(now)``.

States. WAIT_C0C1 -> WAIT_C2 -> WAIT_CONNECT -connect-> CONNECTING (paused)
-accept-> CONNECTED -publish-> PUBLISH_PENDING (paused) -accept-> PUBLISHING,
or -play-> PLAY_PENDING (paused) -accept-> PLAYING. Ending a publish or a
play returns to CONNECTED; a refusal or a timeout ends in CLOSED, after
which the owner writes what it got and closes the socket. Which command is
valid in which state is one table (``_COMMANDS``); a known command in the
wrong state is a protocol error, an unknown one is ignored.

Deadlines: the handshake and ``connect`` must arrive within
``setup_timeout`` of the start, and ``publish``/``play`` within
``setup_timeout`` of our accepting the connect; a publisher that sends no
media for ``idle_timeout`` is timed out. While a decision is pending or a
player plays, no deadline runs (the owner's fan-out bounds slow players).
"""

from __future__ import annotations

import enum
import os
from collections import deque
from typing import Callable, Final

from ...rate import TokenBucket
from . import command as cmd
from .chunk import ChunkReader, ChunkWriter
from .constants import (
    BW_DYNAMIC, CSID_COMMAND, CSID_CONTROL, DEFAULT_WINDOW_ACK_SIZE, MAX_COMMAND_LEN,
    MAX_MESSAGE_LEN, MAX_AGGREGATE_PARTS, MSG_ACK, PLAYER_MAX_BUFFER, MSG_AGGREGATE, MSG_AUDIO, MSG_COMMAND_AMF0,
    MSG_COMMAND_AMF3, MSG_DATA_AMF0, MSG_DATA_AMF3, MSG_SET_PEER_BANDWIDTH, MSG_USER_CONTROL,
    MSG_VIDEO, MSG_WINDOW_ACK_SIZE, OUT_CHUNK_SIZE, STREAM_ID, UC_PING_REQUEST,
    UC_PING_RESPONSE, UC_STREAM_BEGIN, UC_STREAM_EOF, RtmpProtocolError,
)
from .events import (
    NEED_DATA, PAUSED, Connect, DeleteStream, Event, HandshakeDone, Metadata, NextEvent, Play,
    PingResponse, Publish, TimedOut, Unpublish,
)
from .handshake import PACKET_SIZE, Hello, RandomBytes, server_answer
from .media import MediaUnit, parse_media
from .message import (
    Acknowledgement, ControlMessage, RtmpMessage, SetPeerBandwidth, UserControl, WindowAckSize,
    parse_control,
)
from .names import split_query, stream_path

#: Unparsed bytes we hold at most (one whole chunk of the largest message,
#: plus room for what arrives while a decision is pending).
MAX_RECEIVE_BUFFER: Final = MAX_MESSAGE_LEN + (1 << 20)
DEFAULT_SETUP_TIMEOUT: Final = 10.0
#: Messages a peer may send at once, then per second (a token bucket). Each
#: costs the loop a few microseconds however small it is, and a message can
#: be 2 bytes (a fmt 3 header repeating the last one, a 1-byte body): 256 KiB
#: of them took the loop 0.55 s. Publishers send 100-300 a second; an
#: encoder pushing a file without -re, 4096 is 15-40 times real time.
MESSAGE_BURST: Final = 4096
MESSAGE_RATE: Final = 4096.0
#: AMF0 bytes (commands and data messages) a peer may send at once, then per
#: second. Decoding AMF0 costs ~0.4 us a byte at worst (a 64 KiB command of
#: one-byte nulls took 30 ms): with only the message bound, one connection
#: sending such commands back to back held a core. Clients send a few KiB
#: of commands when they start and metadata once; captions or cue points
#: (onTextData, onCuePoint) a few hundred bytes a frame. The burst takes two
#: commands of the largest size at once.
AMF_BURST: Final = 2 * MAX_COMMAND_LEN
AMF_RATE: Final = 16384.0
DEFAULT_IDLE_TIMEOUT: Final = 30.0


class RtmpState(enum.Enum):
    WAIT_C0C1 = "wait_c0c1"
    WAIT_C2 = "wait_c2"
    WAIT_CONNECT = "wait_connect"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    PUBLISH_PENDING = "publish_pending"
    PUBLISHING = "publishing"
    PLAY_PENDING = "play_pending"
    PLAYING = "playing"
    CLOSED = "closed"


S = RtmpState
_PAUSED = frozenset((S.CONNECTING, S.PUBLISH_PENDING, S.PLAY_PENDING))
_AFTER_CONNECT = frozenset((S.CONNECTED, S.PUBLISHING, S.PLAYING))

Handler = Callable[["RtmpServerConnection", RtmpMessage, cmd.Command], "Event | None"]


class RtmpServerConnection:
    """One RTMP connection, server side. Not thread-safe; no I/O."""

    def __init__(self, now: float, *, setup_timeout: float = DEFAULT_SETUP_TIMEOUT,
                 idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
                 window_ack_size: int = DEFAULT_WINDOW_ACK_SIZE,
                 random_bytes: RandomBytes = os.urandom) -> None:
        self.state = S.WAIT_C0C1
        self.setup_timeout = setup_timeout
        self.idle_timeout = idle_timeout
        self.window_ack_size = window_ack_size
        self._random = random_bytes
        self._now = now
        self._deadline: float | None = now + setup_timeout
        self._max_buffer = MAX_RECEIVE_BUFFER  # a player's is PLAYER_MAX_BUFFER
        self._hs = bytearray()
        self._reader = ChunkReader()
        self._writer = ChunkWriter()
        self._out: list[bytes] = []
        self._events: deque[Event] = deque()
        self._c1: Hello | None = None
        self._tid = 0.0  # transaction id of the command awaiting a decision
        self._object_encoding = 0.0
        self._app = ""
        self._app_query: dict[str, str] = {}
        self._path = ""
        #: Bytes received after the handshake (what acknowledgements count).
        self.bytes_received = 0
        self._acked = 0
        #: The peer's acknowledgement window (from its Window Ack Size), if any.
        self.peer_window: int | None = None
        #: Last sequence number the peer acknowledged.
        self.peer_acked = 0
        self.messages = 0
        self.ignored = 0
        self._messages = TokenBucket(MESSAGE_BURST, MESSAGE_RATE, now)
        self._amf = TokenBucket(AMF_BURST, AMF_RATE, now)

    # --- input ---------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.state is S.CLOSED

    def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> None:
        """Buffer bytes from the peer (nothing is parsed until ``next_event``)."""
        self._now = now
        if self.state is S.CLOSED or not data:
            return
        if self.state in (S.WAIT_C0C1, S.WAIT_C2):
            self._hs += data
            if len(self._hs) > MAX_RECEIVE_BUFFER:
                raise RtmpProtocolError("RTMP: too much data during the handshake")
            return
        self._reader.feed(data)
        self.bytes_received += len(data)
        if self._reader.buffered > self._max_buffer:
            raise RtmpProtocolError("RTMP: receive buffer over its limit")
        self._maybe_ack()

    def next_event(self) -> NextEvent:
        """The next event, or NEED_DATA, or PAUSED while a decision is pending."""
        while True:
            if self._events:
                return self._events.popleft()
            state = self.state
            if state is S.CLOSED:
                return NEED_DATA
            if state in _PAUSED:
                return PAUSED
            if state is S.WAIT_C0C1:
                if len(self._hs) < 1 + PACKET_SIZE:
                    return NEED_DATA
                answer, self._c1 = server_answer(bytes(self._hs[:1 + PACKET_SIZE]), self._random)
                del self._hs[:1 + PACKET_SIZE]
                self._out.append(answer)
                self.state = S.WAIT_C2
                continue
            if state is S.WAIT_C2:
                if len(self._hs) < PACKET_SIZE:
                    return NEED_DATA
                rest = bytes(self._hs[PACKET_SIZE:])
                self._hs = bytearray()
                self.state = S.WAIT_CONNECT
                if rest:
                    self._reader.feed(rest)
                    self.bytes_received += len(rest)
                    self._maybe_ack()
                assert self._c1 is not None
                return HandshakeDone(self._c1.scheme, self._c1.version)
            msg = self._reader.next_message()
            if msg is None:
                return NEED_DATA
            self.messages += 1
            self._spend_token()
            event = self._dispatch(msg)
            if event is not None:
                return event

    def _spend_token(self) -> None:
        """One message's token, or RtmpProtocolError past the peer's rate."""
        if not self._messages.take(self._now):
            raise RtmpProtocolError(f"RTMP: more than {MESSAGE_RATE:.0f} messages a second")

    def _spend_amf(self, size: int) -> None:
        """``size`` bytes of AMF0 to decode, or RtmpProtocolError past the
        peer's AMF budget (the bucket is left as it was)."""
        if self._amf.available(self._now) < size:
            raise RtmpProtocolError(f"RTMP: more than {AMF_RATE:.0f} bytes of commands and data a second")
        self._amf.spend(size)

    # --- time ------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """When ``handle_timer`` should next be called (None: no deadline)."""
        return self._deadline

    def handle_timer(self, now: float) -> None:
        self._now = now
        if self._deadline is None or now < self._deadline or self.state is S.CLOSED:
            return
        reason = ("no media" if self.state is S.PUBLISHING
                  else f"no progress in state {self.state.value}")
        self.state = S.CLOSED
        self._deadline = None
        self._events.append(TimedOut(reason))

    # --- output ------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Bytes produced since the last call (handshake, acks, automatic answers)."""
        out = b"".join(self._out)
        self._out.clear()
        return out

    def _flush_with(self, *parts: bytes) -> bytes:
        self._out.extend(parts)
        return self.data_to_send()

    def _control(self, message: ControlMessage) -> bytes:
        return self._writer.write(CSID_CONTROL, message.type_id, 0, 0, bytes(message))

    def _command(self, command: cmd.Command, stream_id: int = 0) -> bytes:
        return self._writer.write(CSID_COMMAND, MSG_COMMAND_AMF0, stream_id, 0, bytes(command))

    def _stream_status(self, code: str, description: str, level: str = "status") -> bytes:
        return self._command(cmd.on_status(code, description, level), STREAM_ID)

    def ping(self, now: float) -> bytes:
        """A Ping Request; the answer comes back as a PingResponse event."""
        ts = int(now * 1000) & 0xFFFFFFFF
        return self._flush_with(self._control(UserControl.of(UC_PING_REQUEST, ts)))

    # --- decisions -----------------------------------------------------------------

    def _expect(self, state: RtmpState, what: str) -> None:
        if self.state is not state:
            raise RuntimeError(f"{what} in state {self.state.value}")

    def accept_connect(self) -> bytes:
        """Window, peer bandwidth, our chunk size (the same for every connection,
        see ``play.py``) and NetConnection.Connect.Success."""
        self._expect(S.CONNECTING, "accept_connect")
        self.state = S.CONNECTED
        self._deadline = self._now + self.setup_timeout
        return self._flush_with(
            self._control(WindowAckSize(self.window_ack_size)),
            self._control(SetPeerBandwidth(self.window_ack_size, BW_DYNAMIC)),
            self._writer.set_chunk_size(OUT_CHUNK_SIZE),
            self._command(cmd.connect_result(self._tid, self._object_encoding)),
        )

    def reject_connect(self, description: str = "Connection rejected.") -> bytes:
        """``_error`` with NetConnection.Connect.Rejected; the connection is closed."""
        self._expect(S.CONNECTING, "reject_connect")
        self._close()
        return self._flush_with(self._command(cmd.error(self._tid, cmd.CONNECT_REJECTED,
                                                        description)))

    def accept_publish(self) -> bytes:
        self._expect(S.PUBLISH_PENDING, "accept_publish")
        self.state = S.PUBLISHING
        self._deadline = self._now + self.idle_timeout
        return self._flush_with(self._stream_status(cmd.PUBLISH_START,
                                                    f"{self._path} is now published."))

    def reject_publish(self, description: str = "Stream name refused.",
                       code: str = cmd.PUBLISH_BAD_NAME) -> bytes:
        """onStatus error (NetStream.Publish.BadName); the connection is closed."""
        self._expect(S.PUBLISH_PENDING, "reject_publish")
        self._close()
        return self._flush_with(self._stream_status(code, description, "error"))

    def accept_play(self) -> bytes:
        """Stream Begin, Play.Reset, Play.Start and |RtmpSampleAccess; after these
        the owner writes the stream's shared play-mux bytes."""
        self._expect(S.PLAY_PENDING, "accept_play")
        self.state = S.PLAYING
        self._deadline = None
        access = cmd.DataMessage("|RtmpSampleAccess", (True, True))
        return self._flush_with(
            self._control(UserControl.of(UC_STREAM_BEGIN, STREAM_ID)),
            self._stream_status(cmd.PLAY_RESET, f"Playing and resetting {self._path}."),
            self._stream_status(cmd.PLAY_START, f"Started playing {self._path}."),
            self._writer.write(CSID_COMMAND, MSG_DATA_AMF0, STREAM_ID, 0, bytes(access)),
        )

    def reject_play(self, description: str = "Stream not found.",
                    code: str = cmd.PLAY_STREAM_NOT_FOUND) -> bytes:
        """onStatus error (NetStream.Play.StreamNotFound); the connection is closed."""
        self._expect(S.PLAY_PENDING, "reject_play")
        self._close()
        return self._flush_with(self._stream_status(code, description, "error"))

    def play_not_found(self) -> bytes:
        return self.reject_play()

    def end_play(self, description: str = "Stream ended.") -> bytes:
        """The played stream ended (its publisher left): Stream EOF and
        NetStream.Play.UnpublishNotify, which players take as the end."""
        self._expect(S.PLAYING, "end_play")
        self.state = S.CONNECTED
        self._deadline = self._now + self.setup_timeout
        return self._flush_with(
            self._control(UserControl.of(UC_STREAM_EOF, STREAM_ID)),
            self._stream_status(cmd.PLAY_UNPUBLISH_NOTIFY, description),
        )

    def _close(self) -> None:
        self.state = S.CLOSED
        self._deadline = None

    # --- incoming messages ------------------------------------------------------------

    def _maybe_ack(self) -> None:
        window = self.peer_window
        if window is not None and self.bytes_received - self._acked >= window:
            self._acked = self.bytes_received
            self._out.append(self._control(Acknowledgement(self.bytes_received)))

    def _dispatch(self, msg: RtmpMessage) -> Event | None:
        t = msg.type_id
        if t in (MSG_AUDIO, MSG_VIDEO):
            return self._on_media(t, msg.timestamp, msg.body)
        if t in (MSG_COMMAND_AMF0, MSG_COMMAND_AMF3):
            self._spend_amf(len(msg.body))
            return self._on_command(msg, cmd.Command.parse(msg.body, t == MSG_COMMAND_AMF3))
        if t in (MSG_DATA_AMF0, MSG_DATA_AMF3):
            self._spend_amf(len(msg.body))
            return self._on_data(cmd.DataMessage.parse(msg.body, t == MSG_DATA_AMF3))
        if t == MSG_AGGREGATE:
            return self._on_aggregate(msg)
        if t == MSG_USER_CONTROL:
            return self._on_user_control(UserControl.parse(msg.body))
        if t == MSG_ACK:
            self.peer_acked = Acknowledgement.parse(msg.body).sequence
        elif t == MSG_WINDOW_ACK_SIZE:
            self.peer_window = WindowAckSize.parse(msg.body).size
            self._maybe_ack()
        elif t == MSG_SET_PEER_BANDWIDTH:
            bw = SetPeerBandwidth.parse(msg.body)
            if bw.size != self.window_ack_size:
                self.window_ack_size = bw.size
                self._out.append(self._control(WindowAckSize(bw.size)))
        elif t in (1, 2):
            parse_control(t, msg.body)  # already applied by the chunk reader
        else:
            self.ignored += 1  # shared objects, unknown types
        return None

    def _on_user_control(self, uc: UserControl) -> Event | None:
        if uc.event == UC_PING_REQUEST:
            self._out.append(self._control(UserControl(UC_PING_RESPONSE, uc.data)))
        elif uc.event == UC_PING_RESPONSE:
            return PingResponse(uc.value)
        return None  # Set Buffer Length and the rest need nothing from us

    def _on_media(self, type_id: int, timestamp: int, body: bytes | bytearray | memoryview
                  ) -> MediaUnit | None:
        if self.state is not S.PUBLISHING:
            self.ignored += 1
            return None
        self._deadline = self._now + self.idle_timeout
        unit = parse_media(type_id, timestamp, body)
        if unit is None:
            self.ignored += 1
        return unit

    def _on_data(self, data: cmd.DataMessage) -> Event | None:
        values = data.metadata()
        if values is None or self.state is not S.PUBLISHING:
            self.ignored += 1
            return None
        return Metadata(values)

    def _on_aggregate(self, msg: RtmpMessage) -> Event | None:
        """Split an aggregate message (FLV tags back to back) into its parts; the
        first part's timestamp is re-based on the aggregate's. Its data parts
        together are held to one data message's cap (``MAX_COMMAND_LEN``):
        the aggregate itself may be a media message's size, and decoding
        megabytes of AMF0 stalls the loop for seconds."""
        body = memoryview(msg.body)
        pos, base, parts, data_bytes = 0, None, 0, 0
        while pos < len(body):
            if len(body) - pos < 11:
                raise RtmpProtocolError("RTMP: truncated aggregate part header")
            parts += 1
            if parts > MAX_AGGREGATE_PARTS:
                raise RtmpProtocolError("RTMP: too many aggregate parts")
            t = body[pos]
            size = body[pos + 1] << 16 | body[pos + 2] << 8 | body[pos + 3]
            ts = (body[pos + 4] << 16 | body[pos + 5] << 8 | body[pos + 6]) | body[pos + 7] << 24
            end = pos + 11 + size
            if end + 4 > len(body):
                raise RtmpProtocolError("RTMP: aggregate part past the end")
            base = ts if base is None else base
            part = body[pos + 11:end]
            ts = (msg.timestamp + ts - base) & 0xFFFFFFFF
            event: Event | None = None
            if t in (MSG_AUDIO, MSG_VIDEO):
                event = self._on_media(t, ts, part)
            elif t == MSG_DATA_AMF0:
                data_bytes += size
                if data_bytes > MAX_COMMAND_LEN:
                    raise RtmpProtocolError("RTMP: aggregate data parts over the data message limit")
                self._spend_amf(size)
                event = self._on_data(cmd.DataMessage.parse(bytes(part)))
            if event is not None:
                self._events.append(event)
            pos = end + 4
        return None

    # --- commands -----------------------------------------------------------------

    def _on_command(self, msg: RtmpMessage, command: cmd.Command) -> Event | None:
        entry = _COMMANDS.get(command.name)
        if entry is None:
            self.ignored += 1  # getStreamLength, _checkbw, FCSubscribe, pause...
            return None
        states, handler = entry
        if self.state not in states:
            raise RtmpProtocolError(f"RTMP: {command.name} in state {self.state.value}")
        return handler(self, msg, command)

    def _on_connect(self, msg: RtmpMessage, command: cmd.Command) -> Event | None:
        props = command.command_object
        if not isinstance(props, dict):
            raise RtmpProtocolError("RTMP: connect without a command object")
        app, query = split_query(command.object_str("app"))
        encoding = props.get("objectEncoding")
        self._object_encoding = encoding if isinstance(encoding, float) else 0.0
        self._app, self._app_query, self._tid = app, query, command.transaction_id
        self.state = S.CONNECTING
        self._deadline = None
        return Connect(app, command.object_str("tcUrl"), query, command.object_str("flashVer"),
                       dict(props))

    def _on_simple_result(self, msg: RtmpMessage, command: cmd.Command) -> Event | None:
        # releaseStream, FCPublish: nothing to do but say so.
        if command.transaction_id:
            self._out.append(self._command(cmd.result(command.transaction_id)))
        return None

    def _on_create_stream(self, msg: RtmpMessage, command: cmd.Command) -> Event | None:
        self._out.append(self._command(cmd.result(command.transaction_id, None, float(STREAM_ID))))
        return None

    def _stream_request(self, msg: RtmpMessage, command: cmd.Command
                        ) -> tuple[str, str, dict[str, str]]:
        if msg.stream_id != STREAM_ID:
            raise RtmpProtocolError(f"RTMP: {command.name} on stream {msg.stream_id}")
        stream, query = split_query(command.arg_str(0))
        path = stream_path(self._app, stream)
        self._path, self._tid = path, command.transaction_id
        return path, stream, {**self._app_query, **query}

    def _on_publish(self, msg: RtmpMessage, command: cmd.Command) -> Event | None:
        path, stream, query = self._stream_request(msg, command)
        self.state = S.PUBLISH_PENDING
        self._deadline = None
        return Publish(path, self._app, stream, query, command.arg_str(1) or "live")

    def _on_play(self, msg: RtmpMessage, command: cmd.Command) -> Event | None:
        path, stream, query = self._stream_request(msg, command)
        start = command.args[1] if len(command.args) > 1 else -2.0
        self.state = S.PLAY_PENDING
        self._deadline = None
        self._reader.limit_to_player()
        self._max_buffer = PLAYER_MAX_BUFFER
        return Play(path, self._app, stream, query, start if isinstance(start, float) else -2.0)

    def _on_unpublish(self, msg: RtmpMessage, command: cmd.Command) -> Event | None:
        """FCUnpublish, or deleteStream/closeStream: ends a publish or a play."""
        if command.transaction_id and command.name == "FCUnpublish":
            self._out.append(self._command(cmd.result(command.transaction_id)))
        if self.state is S.PUBLISHING:
            self.state = S.CONNECTED
            self._deadline = self._now + self.setup_timeout
            self._out.append(self._stream_status(cmd.UNPUBLISH_SUCCESS,
                                                 f"{self._path} is now unpublished."))
            return Unpublish(self._path)
        if command.name == "FCUnpublish":
            return None
        if self.state is S.PLAYING:
            self.state = S.CONNECTED
            self._deadline = self._now + self.setup_timeout
        sid = command.args[0] if command.args else None
        return DeleteStream(int(sid) if isinstance(sid, float) and 0 <= sid < 2 ** 32
                            else STREAM_ID)


_COMMANDS: dict[str, tuple[frozenset[RtmpState], Handler]] = {
    "connect": (frozenset((S.WAIT_CONNECT,)), RtmpServerConnection._on_connect),
    "releaseStream": (_AFTER_CONNECT, RtmpServerConnection._on_simple_result),
    "FCPublish": (_AFTER_CONNECT, RtmpServerConnection._on_simple_result),
    "createStream": (_AFTER_CONNECT, RtmpServerConnection._on_create_stream),
    "publish": (frozenset((S.CONNECTED,)), RtmpServerConnection._on_publish),
    "play": (frozenset((S.CONNECTED,)), RtmpServerConnection._on_play),
    "FCUnpublish": (_AFTER_CONNECT, RtmpServerConnection._on_unpublish),
    "deleteStream": (_AFTER_CONNECT, RtmpServerConnection._on_unpublish),
    "closeStream": (_AFTER_CONNECT, RtmpServerConnection._on_unpublish),
}

__all__ = ["RtmpServerConnection", "RtmpState", "NEED_DATA", "PAUSED"]
