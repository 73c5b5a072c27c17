from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Table tests hash many passwords; tests/auth covers the real cost."""
    monkeypatch.setattr("hub.auth.passwords.SCRYPT_N", 2**8)
