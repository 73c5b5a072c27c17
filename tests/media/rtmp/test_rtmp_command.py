"""AMF0 commands and data messages: encode -> decode -> the same bytes."""

from __future__ import annotations

import pytest

from hub.media import amf0
from hub.media.rtmp import command as cmd
from hub.media.rtmp.command import Command, DataMessage
from hub.media.rtmp.constants import MAX_AMF_DEPTH, RtmpProtocolError
from rtmp_testkit import DATA, read_messages

ONE = bytes.fromhex("3ff0000000000000")


def test_connect_body_wire_exact() -> None:
    command = Command("connect", 1.0, {"app": "live"})
    wire = (b"\x02\x00\x07connect" + b"\x00" + ONE
            + b"\x03" + b"\x00\x03app" + b"\x02\x00\x04live" + b"\x00\x00\x09")
    assert bytes(command) == wire
    assert Command.parse(wire) == command
    assert bytes(Command.parse(wire)) == wire


def test_on_status_wire_exact() -> None:
    status = cmd.on_status(cmd.PUBLISH_START, "go")
    wire = (b"\x02\x00\x08onStatus" + b"\x00" + bytes(8) + b"\x05"
            + b"\x03" + b"\x00\x05level\x02\x00\x06status"
            + b"\x00\x04code\x02\x00\x17NetStream.Publish.Start"
            + b"\x00\x0bdescription\x02\x00\x02go" + b"\x00\x00\x09")
    assert bytes(status) == wire
    assert Command.parse(wire) == status


@pytest.mark.parametrize("command", [
    cmd.connect_result(1.0),
    cmd.connect_result(1.0, 3.0),
    cmd.error(1.0, cmd.CONNECT_REJECTED, "no"),
    cmd.result(4.0, None, 1.0),
    cmd.result(2.0),
    cmd.on_status(cmd.PLAY_STREAM_NOT_FOUND, "none", "error"),
    Command("publish", 5.0, None, ("cam1", "live")),
    Command("play", 4.0, None, ("cam1", -1000.0, -1.0, True)),
    Command("deleteStream", 7.0, None, (1.0,)),
    Command("createStream", 4.0),
])
def test_commands_roundtrip(command: Command) -> None:
    wire = bytes(command)
    again = Command.parse(wire)
    assert again == command and bytes(again) == wire


def test_connect_result_fields() -> None:
    c = cmd.connect_result(1.0, 0.0)
    assert c.name == "_result" and c.transaction_id == 1.0
    assert c.command_object == {"fmsVer": "FMS/3,0,1,123", "capabilities": 31.0}
    assert c.args == ({"level": "status", "code": "NetConnection.Connect.Success",
                       "description": "Connection succeeded.", "objectEncoding": 0.0},)


def test_ffmpeg_commands_roundtrip_byte_exact() -> None:
    """Every command FFmpeg sent while publishing re-encodes to its own bytes."""
    data = (DATA / "rtmp_ffmpeg_publish.bin").read_bytes()[3073:]
    commands = [m for m in read_messages(data) if m.type_id == 20]
    names = [Command.parse(m.body).name for m in commands]
    assert names == ["connect", "releaseStream", "FCPublish", "createStream", "publish",
                     "FCUnpublish", "deleteStream"]
    for m in commands:
        assert bytes(Command.parse(m.body)) == m.body
    connect = Command.parse(commands[0].body)
    assert connect.transaction_id == 1.0 and connect.args == ()
    assert isinstance(connect.command_object, dict)
    assert connect.object_str("app") == "live" and connect.object_str("type") == "nonprivate"
    assert connect.object_str("flashVer").startswith("FMLE/3.0 (compatible; Lavf")
    assert connect.object_str("tcUrl").startswith("rtmp://127.0.0.1:")
    assert connect.object_str("tcUrl").endswith("/live")
    assert connect.object_str("missing") == ""
    publish = Command.parse(commands[4].body)
    assert (publish.transaction_id, publish.command_object, publish.args) == (5.0, None, ("cam1", "live"))
    assert publish.arg_str(0) == "cam1" and publish.arg_str(5) == ""


def test_set_data_frame_roundtrip() -> None:
    meta = amf0.EcmaArray(width=320.0, height=240.0, videocodecid=7.0, stereo=False)
    data = DataMessage("@setDataFrame", ("onMetaData", meta))
    wire = bytes(data)
    assert wire == amf0.encode("@setDataFrame", "onMetaData", meta)
    again = DataMessage.parse(wire)
    assert again == data and bytes(again) == wire
    assert again.metadata() == {"width": 320.0, "height": 240.0, "videocodecid": 7.0, "stereo": False}
    assert DataMessage("onMetaData", (meta,)).metadata() == dict(meta)
    assert DataMessage("onMetaData").metadata() == {}
    assert DataMessage("|RtmpSampleAccess", (True, True)).metadata() is None


def test_amf3_wrapped_command() -> None:
    inner = bytes(Command("connect", 1.0, {"app": "live"}))
    assert Command.parse(b"\x00" + inner, amf3=True) == Command.parse(inner)
    with pytest.raises(RtmpProtocolError):
        Command.parse(inner, amf3=True)
    with pytest.raises(RtmpProtocolError):
        DataMessage.parse(b"", amf3=True)


def _nested(depth: int) -> amf0.AmfValue:
    value: amf0.AmfValue = 1.0
    for _ in range(depth):
        value = {"a": value}
    return value


def test_depth_cap() -> None:
    ok = amf0.encode("x", 1.0, _nested(MAX_AMF_DEPTH - 1))
    assert Command.parse(ok).name == "x"
    with pytest.raises(RtmpProtocolError, match="too deep"):
        Command.parse(amf0.encode("x", 1.0, _nested(MAX_AMF_DEPTH + 1)))
    # The FLV path keeps its own, deeper limit.
    assert amf0.decode(amf0.encode(_nested(MAX_AMF_DEPTH + 1)))


@pytest.mark.parametrize("wire", [
    b"", amf0.encode("x"), amf0.encode(1.0, 1.0), amf0.encode("x", "1"),
    amf0.encode("x", 1.0)[:-1], b"\x02\x00\x01x\x00" + ONE + b"\x07\x00\x01",
])
def test_malformed_commands(wire: bytes) -> None:
    with pytest.raises(RtmpProtocolError):
        Command.parse(wire)


@pytest.mark.parametrize("wire", [b"", amf0.encode(1.0), b"\x02\x00\x05ab"])
def test_malformed_data(wire: bytes) -> None:
    with pytest.raises(RtmpProtocolError):
        DataMessage.parse(wire)
