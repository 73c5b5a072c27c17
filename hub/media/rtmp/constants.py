"""RTMP wire constants, our hard limits, and the protocol error.

Every limit a peer could push us past is a named constant here, so one file
says how much a single RTMP connection may make us hold.
"""

from __future__ import annotations

from hub.errors import ProtocolError


class RtmpProtocolError(ProtocolError):
    """The peer sent RTMP bytes that do not parse or break one of our limits.

    The connection that raised it is closed; nothing else is affected.
    """


# --- message type ids (RTMP spec 5.4, 7.1) ----------------------------------
MSG_SET_CHUNK_SIZE = 1
MSG_ABORT = 2
MSG_ACK = 3
MSG_USER_CONTROL = 4
MSG_WINDOW_ACK_SIZE = 5
MSG_SET_PEER_BANDWIDTH = 6
MSG_AUDIO = 8
MSG_VIDEO = 9
MSG_DATA_AMF3 = 15
MSG_SHARED_OBJECT_AMF3 = 16
MSG_COMMAND_AMF3 = 17
MSG_DATA_AMF0 = 18
MSG_SHARED_OBJECT_AMF0 = 19
MSG_COMMAND_AMF0 = 20
MSG_AGGREGATE = 22

#: Protocol control messages: chunk stream 2, message stream 0 (spec 5.4).
CONTROL_TYPES = frozenset((MSG_SET_CHUNK_SIZE, MSG_ABORT, MSG_ACK, MSG_USER_CONTROL,
                           MSG_WINDOW_ACK_SIZE, MSG_SET_PEER_BANDWIDTH))
COMMAND_TYPES = frozenset((MSG_DATA_AMF3, MSG_SHARED_OBJECT_AMF3, MSG_COMMAND_AMF3,
                           MSG_DATA_AMF0, MSG_SHARED_OBJECT_AMF0, MSG_COMMAND_AMF0))

# --- user control event types (spec 7.1.7) ----------------------------------
UC_STREAM_BEGIN = 0
UC_STREAM_EOF = 1
UC_STREAM_DRY = 2
UC_SET_BUFFER_LENGTH = 3
UC_STREAM_IS_RECORDED = 4
UC_PING_REQUEST = 6
UC_PING_RESPONSE = 7

# --- Set Peer Bandwidth limit types ------------------------------------------
BW_HARD = 0
BW_SOFT = 1
BW_DYNAMIC = 2

# --- chunk streams -------------------------------------------------------------
CSID_CONTROL = 2
#: Our commands and their answers (what FFmpeg and nginx-rtmp use too).
CSID_COMMAND = 3
#: Fixed chunk streams of the shared play mux (see ``play.py``).
CSID_AUDIO = 4
CSID_DATA = 5
CSID_VIDEO = 6
MIN_CSID = 2
MAX_CSID = 65599  # 64 + 255 + 255 * 256: the 3-byte basic header's reach

DEFAULT_CHUNK_SIZE = 128
#: Largest Set Chunk Size value the spec allows (31 bits).
SPEC_MAX_CHUNK_SIZE = 0x7FFFFFFF
#: Timestamps at or above this go into the 4-byte extended timestamp field.
EXTENDED_TIMESTAMP = 0xFFFFFF

# --- our limits ----------------------------------------------------------------
#: Largest chunk size a peer may set. It is already twice the largest message
#: we accept (so every accepted message fits one chunk of this size); a larger
#: value could mean nothing more and is treated as a broken peer.
MAX_CHUNK_SIZE = 1 << 24
#: Smallest chunk size a peer may set: the default, which no encoder lowers.
#: Every chunk costs us a header's parsing in Python: at 1 byte a chunk a
#: 1 MiB frame took the loop 1.6 s (783 ns a byte; 2 ns at 4096).
MIN_CHUNK_SIZE = 128
#: Largest message body: a 4K intra frame stays well under it.
MAX_MESSAGE_LEN = 8 << 20
#: Largest AMF command or data message (connect, publish, onMetaData...).
MAX_COMMAND_LEN = 64 << 10
#: Nesting of AMF0 values inside one command (connect's object is depth 1).
MAX_AMF_DEPTH = 8
#: Chunk streams with state at once (FFmpeg uses 5, OBS 6).
MAX_CHUNK_STREAMS = 64
#: Declared bytes of all messages under reassembly at once: a peer that starts
#: many large messages on many chunk streams cannot make us hold more.
MAX_PENDING_BYTES = 16 << 20
#: A player (once it asked to `play`) sends commands and control messages,
#: never media: its messages are held to a command's size, its unfinished
#: ones to PLAYER_MAX_PENDING bytes and its unparsed bytes to
#: PLAYER_MAX_BUFFER. With a publisher's bounds a player held up to ~25 MiB
#: of media nobody reads (9 MiB unparsed, 16 MiB under reassembly).
PLAYER_MAX_PENDING = 256 << 10
PLAYER_MAX_BUFFER = 1 << 20
#: Sub-messages in one aggregate message.
MAX_AGGREGATE_PARTS = 1024
#: Parameter sets (VPS, SPS, PPS, SEI...) one decoder configuration record
#: (avcC, hvcC) may list, all arrays together: real ones list 2 to 5. An hvcC
#: declares up to 255 arrays of 65,535 each, and an 8 MiB one of empty
#: entries (4 million) took the loop 3.4 s to read.
MAX_RECORD_NALS = 64

#: Our window and the peer's bandwidth we announce at connect (as SRS/nginx).
DEFAULT_WINDOW_ACK_SIZE = 2_500_000
#: Chunk size we send with, set at connect for every connection alike, so the
#: play mux's bytes are the same for every player.
OUT_CHUNK_SIZE = 4096
#: The only message stream we hand out; every player gets media on it.
STREAM_ID = 1
