# `make run` and `make test` work on a fresh machine: they create the virtual
# environment and install what is missing first.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
ARGS ?=

.PHONY: run test test-unit lint sysdeps webdeps bench clean

$(VENV)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@
	touch $(HOT_BUILT)

# The hot path's modules compiled by mypyc (hub/compiled.py, setup.py) sit
# beside their sources and win the import: rebuilt when a source is newer.
HOT_BUILT := hub/.hot-built
HOT_SOURCES := $(shell sed -n 's/^    "\(hub\.[a-z0-9_.]*\)",$$/\1/p' hub/compiled.py | tr . / | sed 's/$$/.py/')
$(HOT_BUILT): $(VENV)/.installed $(HOT_SOURCES) hub/compiled.py setup.py
	$(PY) setup.py -q build_ext --inplace
	touch $@

run: $(HOT_BUILT) webdeps
	$(PY) -m hub --data ./data $(ARGS)

# The console's players (mpegts.js, hls.js) come from the npm registry.
webdeps: node_modules/.installed
node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# System programs the tests drive, installed from Debian's packages when
# missing: gcc (the compiled hot path: setup.py), ffmpeg (pushes and plays),
# chromium (the browser tests), systemd-analyze (the unit file), promtool and
# prometheus (the deploy configs and the metrics test), redis-server (the
# cluster tests); and clients other than FFmpeg's
# (tests/e2e/test_other_clients.py): GStreamer's elements (element:package),
# its RTSP server and webrtcbin for Debian's python3 (a camera, a WHEP
# player) and VLC, without
# recommends (VLC's would pull in a desktop).
SYSDEPS := gcc:gcc ffmpeg:ffmpeg chromium:chromium systemd-analyze:systemd promtool:prometheus redis-server:redis-server
GSTDEPS := rtspsrc:gstreamer1.0-plugins-good rtspclientsink:gstreamer1.0-rtsp x264enc:gstreamer1.0-plugins-ugly \
  rtmp2sink:gstreamer1.0-plugins-bad avdec_h264:gstreamer1.0-libav nicesrc:gstreamer1.0-nice
sysdeps:
	@missing=""; for pair in $(SYSDEPS); do cmd=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	  bare=""; command -v gst-inspect-1.0 >/dev/null 2>&1 || bare=" gstreamer1.0-tools"; \
	  for pair in $(GSTDEPS); do el=$${pair%%:*}; pkg=$${pair##*:}; \
	    gst-inspect-1.0 $$el >/dev/null 2>&1 || bare="$$bare $$pkg"; done; \
	  command -v cvlc >/dev/null 2>&1 || bare="$$bare vlc-bin vlc-plugin-base"; \
	  /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0'); \
	    gi.require_version('GstWebRTC', '1.0')" >/dev/null 2>&1 || \
	    bare="$$bare python3-gi gir1.2-gst-rtsp-server-1.0 gir1.2-gst-plugins-bad-1.0"; \
	  if [ -n "$$missing$$bare" ]; then echo "installing$$missing$$bare (apt-get)"; apt-get update -qq; fi; \
	  if [ -n "$$missing" ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi; \
	  if [ -n "$$bare" ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    $$bare >/dev/null; fi

# One worker per CPU (pytest-xdist), each taking a whole test file, so a
# file's module-wide server is started once.
TEST_WORKERS ?= auto
test: sysdeps $(HOT_BUILT) webdeps
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(ARGS)

# ruff and mypy --strict over the whole package, mypy --strict over the
# benches too (settings in pyproject.toml); ruff over the tests and benches
# for what makes a check mean nothing: undefined or unused names, syntax, a
# comparison whose result is dropped (B015).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check hub
	$(VENV)/bin/ruff check --isolated --target-version py311 --select F,E9,B015 tests bench
	$(VENV)/bin/mypy

test-unit: sysdeps $(HOT_BUILT)
	$(PY) -m pytest -q -m "not e2e" $(ARGS)

bench: sysdeps $(HOT_BUILT)
	$(PY) bench/ring.py
	$(PY) bench/ipc.py

clean:
	rm -rf $(VENV) *.egg-info build $(HOT_BUILT)
	find hub -name '*.so' -delete
