"""A camera for the tests: GStreamer's RTSP server (gst-rtsp-server, the
library many cameras' and encoders' firmware is built on), 640x360 at 25 fps
H.264 + AAC or H.265 + G.711 A-law at rtsp://127.0.0.1:PORT/stream1,
behind Digest auth when given a user. Run by Debian's python3 (its gi
bindings), not the venv's:

    /usr/bin/python3 tests/e2e/gst_camera.py h264|h265 USER PASSWORD   # "" "": no auth

Prints its port, then serves until killed."""
import sys
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstRtsp", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

Gst.init(None)
codec, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
video = {"h264": "x264enc tune=zerolatency speed-preset=veryfast key-int-max=25 bitrate=600 ! rtph264pay name=pay0 pt=96",
         "h265": "x265enc tune=zerolatency speed-preset=ultrafast key-int-max=25 bitrate=600 ! rtph265pay name=pay0 pt=96"}[codec]
audio = {"h264": "audioconvert ! voaacenc ! rtpmp4gpay name=pay1 pt=97",
         "h265": "audio/x-raw,rate=8000,channels=1 ! alawenc ! rtppcmapay name=pay1 pt=8"}[codec]
launch = (f"( videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=25/1 ! {video} "
          f"audiotestsrc is-live=true ! {audio} )")
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service("0")
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(launch)
factory.set_shared(True)
server.get_mount_points().add_factory("/stream1", factory)
if user:
    auth = GstRtspServer.RTSPAuth()
    auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
    auth.add_digest(user, password, token)
    server.set_auth(auth)
    perms = GstRtspServer.RTSPPermissions()
    perms.add_permission_for_role("viewer", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
    perms.add_permission_for_role("viewer", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
    factory.set_permissions(perms)
server.attach(None)
print(server.get_bound_port(), flush=True)
GLib.MainLoop().run()
