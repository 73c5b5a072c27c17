"""AMF0 commands and data messages (RTMP spec 7.1.1, 7.2).

A command message body is AMF0: the command name, a transaction id, a command
object (or null) and the arguments. A data message (``@setDataFrame``,
``onMetaData``) is a name and values. The AMF3 variants (types 15 and 17)
start with a format byte 0 and are AMF0 after it, which is all that RTMP
clients put there in practice.

Bodies are capped (``MAX_COMMAND_LEN``, checked by the chunk reader) and so is
nesting (``MAX_AMF_DEPTH``); anything else malformed raises
:class:`RtmpProtocolError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from hub.errors import ProtocolError
from hub.media import amf0

from .constants import MAX_AMF_DEPTH, RtmpProtocolError

# Status codes we send (onStatus / _error info objects).
CONNECT_SUCCESS: Final = "NetConnection.Connect.Success"
CONNECT_REJECTED: Final = "NetConnection.Connect.Rejected"
PUBLISH_START: Final = "NetStream.Publish.Start"
PUBLISH_BAD_NAME: Final = "NetStream.Publish.BadName"
UNPUBLISH_SUCCESS: Final = "NetStream.Unpublish.Success"
PLAY_RESET: Final = "NetStream.Play.Reset"
PLAY_START: Final = "NetStream.Play.Start"
PLAY_STREAM_NOT_FOUND: Final = "NetStream.Play.StreamNotFound"
PLAY_FAILED: Final = "NetStream.Play.Failed"
PLAY_UNPUBLISH_NOTIFY: Final = "NetStream.Play.UnpublishNotify"
DATA_START: Final = "NetStream.Data.Start"

#: What we say we are in connect's answer (the value FMS and nginx-rtmp send).
FMS_VERSION: Final = "FMS/3,0,1,123"
CAPABILITIES: Final = 31.0


def _decode(body: bytes | bytearray, amf3: bool) -> list[amf0.AmfValue]:
    data = memoryview(body)
    if amf3:
        if not data or data[0] != 0:
            raise RtmpProtocolError("RTMP: AMF3 message without the AMF0 format byte")
        data = data[1:]
    try:
        return amf0.decode(data, max_depth=MAX_AMF_DEPTH)
    except RtmpProtocolError:
        raise
    except ProtocolError as exc:
        raise RtmpProtocolError(f"RTMP: {exc.message}") from exc


@dataclass(frozen=True, slots=True)
class Command:
    """One command or response (``connect``, ``publish``, ``_result``, ``onStatus``...)."""

    name: str
    transaction_id: float
    command_object: amf0.AmfValue = None
    args: tuple[amf0.AmfValue, ...] = ()

    @classmethod
    def parse(cls, body: bytes | bytearray, amf3: bool = False) -> Command:
        values = _decode(body, amf3)
        if len(values) < 2 or not isinstance(values[0], str):
            raise RtmpProtocolError("RTMP: command without name and transaction id")
        tid = values[1]
        if not isinstance(tid, float):
            raise RtmpProtocolError("RTMP: command transaction id is not a number")
        obj = values[2] if len(values) > 2 else None
        return cls(values[0], tid, obj, tuple(values[3:]))

    def __bytes__(self) -> bytes:
        return amf0.encode(self.name, self.transaction_id, self.command_object, *self.args)

    def arg_str(self, index: int) -> str:
        """Argument ``index`` as a string ('' if missing or not a string)."""
        if index < len(self.args):
            value = self.args[index]
            if isinstance(value, str):
                return value
        return ""

    def object_str(self, key: str) -> str:
        """A string property of the command object ('' if missing)."""
        obj = self.command_object
        if isinstance(obj, dict):
            value = obj.get(key)
            if isinstance(value, str):
                return value
        return ""


@dataclass(frozen=True, slots=True)
class DataMessage:
    """A data message: ``@setDataFrame("onMetaData", {...})`` or ``onMetaData({...})``."""

    name: str
    values: tuple[amf0.AmfValue, ...] = field(default=())

    @classmethod
    def parse(cls, body: bytes | bytearray, amf3: bool = False) -> DataMessage:
        values = _decode(body, amf3)
        if not values or not isinstance(values[0], str):
            raise RtmpProtocolError("RTMP: data message without a name")
        return cls(values[0], tuple(values[1:]))

    def __bytes__(self) -> bytes:
        return amf0.encode(self.name, *self.values)

    def metadata(self) -> dict[str, amf0.AmfValue] | None:
        """The onMetaData properties, for either form; None for other messages."""
        values = self.values
        if self.name == "@setDataFrame" and values and values[0] == "onMetaData":
            values = values[1:]
        elif self.name != "onMetaData":
            return None
        if values and isinstance(values[0], dict):
            return dict(values[0])
        return {}


def status_info(level: str, code: str, description: str, **extra: amf0.AmfValue
                ) -> dict[str, amf0.AmfValue]:
    info: dict[str, amf0.AmfValue] = {"level": level, "code": code, "description": description}
    info.update(extra)
    return info


def result(transaction_id: float, command_object: amf0.AmfValue = None,
           *args: amf0.AmfValue) -> Command:
    return Command("_result", transaction_id, command_object, args)


def error(transaction_id: float, code: str, description: str) -> Command:
    return Command("_error", transaction_id, None, (status_info("error", code, description),))


def on_status(code: str, description: str, level: str = "status",
              **extra: amf0.AmfValue) -> Command:
    return Command("onStatus", 0.0, None, (status_info(level, code, description, **extra),))


def connect_result(transaction_id: float, object_encoding: float = 0.0) -> Command:
    return result(transaction_id, {"fmsVer": FMS_VERSION, "capabilities": CAPABILITIES},
                  status_info("status", CONNECT_SUCCESS, "Connection succeeded.",
                              objectEncoding=object_encoding))
