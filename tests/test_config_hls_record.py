"""Config keys of fMP4 HLS and recording: hls.variant, record, recordings."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from hub.config import Config, ConfigError, load_config


def _load(tmp_path: Path, raw: dict[str, Any], env: dict[str, str] | None = None) -> Config:
    f = tmp_path / "config.json"
    f.write_text(json.dumps(raw))
    return load_config(["--config", str(f), "--data", str(tmp_path / "data")], env or {})


def test_defaults(tmp_path: Path) -> None:
    c = load_config(["--data", str(tmp_path)], {})
    assert c.hls.variant == "ts" and c.record == [] and c.recordings == ""
    assert c.recordings_path == tmp_path / "recordings"


def test_from_file_and_env(tmp_path: Path) -> None:
    c = _load(tmp_path, {"hls": {"variant": "LL"}, "recordings": "/srv/rec",
                         "record": [{"pattern": "cams/", "segment": "2m", "retention": {"max_bytes": "1G"}}]})
    assert c.hls.variant == "ll" and c.recordings_path == Path("/srv/rec")
    assert c.record == [{"pattern": "/cams/", "format": "fmp4", "segment": 120.0,
                         "retention": {"max_age": 0.0, "max_bytes": 1 << 30}}]
    c = _load(tmp_path, {}, {"HUB_HLS_VARIANT": "fmp4", "HUB_RECORDINGS": "/x"})
    assert c.hls.variant == "fmp4" and c.recordings == "/x"
    # What a child gets back from the supervisor's JSON is the same configuration.
    assert Config.from_dict(json.loads(json.dumps(c.to_dict()))) == c


@pytest.mark.parametrize("raw, key", [
    ({"hls": {"variant": "dash"}}, "hls.variant"),
    ({"hls": {"parts": 3}}, "hls.parts"),
    ({"hls": "ll"}, "hls"),
    ({"record": {"pattern": "/a"}}, "record"),
    ({"record": [{"pattern": "/a", "segment": 0}]}, "record[0]"),
    ({"record": [{"pattern": "/a"}, {"pattern": "/b", "format": "ts"}]}, "record[1]"),
    ({"recordings": 5}, "recordings"),
])
def test_bad_values_name_the_key(tmp_path: Path, raw: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)}[:. ]"):
        _load(tmp_path, raw)
