from __future__ import annotations

from typing import Iterator

import pytest

from .fakes import Stream


@pytest.fixture
def stream() -> Iterator[Stream]:
    s = Stream()
    yield s
    s.remove()
