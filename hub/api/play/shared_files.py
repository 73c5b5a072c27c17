"""Files many clients fetch at once (HLS segments, parts, init segments),
read once while any client still has them queued.

Every request for a file whose identity (inode, size, modification time)
has not changed gets the same buffer, and the transport queues that buffer
itself, not a copy: N clients that read slowly, or not at all, hold one
copy of a segment between them, not N. An entry lives only as long as some
transport still holds its buffer (a weak reference: `array` takes one,
`bytes` does not), so a front at rest keeps nothing, and no file is read
twice while it is being sent.
"""

from __future__ import annotations

import os
import weakref
from array import array
from pathlib import Path

#: The file's identity: (inode, size, modification time in ns).
Ident = tuple[int, int, int]


class SharedFiles:
    __slots__ = ("_files", "reads")

    def __init__(self) -> None:
        self._files: dict[str, tuple[Ident, weakref.ref[array[int]]]] = {}
        self.reads = 0  # files read (the rest were shared)

    def __len__(self) -> int:
        return len(self._files)

    def read(self, path: Path) -> array[int]:
        """The file's bytes, shared with every request still sending them.
        Raises what `open` raises (FileNotFoundError; ValueError for a NUL
        in the name; OSError ENAMETOOLONG...)."""
        key = str(path)
        with open(path, "rb", buffering=0) as f:
            st = os.fstat(f.fileno())
            ident = (st.st_ino, st.st_size, st.st_mtime_ns)
            held = self._files.get(key)
            if held is not None and held[0] == ident:
                buf = held[1]()
                if buf is not None:
                    return buf
            buf = array("B", bytes(1)) * st.st_size
            got = f.readinto(memoryview(buf)) if st.st_size else 0
            if got is not None and got < st.st_size:  # cut short meanwhile
                del buf[got:]
        self.reads += 1
        files = self._files

        def gone(ref: weakref.ref[array[int]]) -> None:  # the last transport let go of it
            held = files.get(key)
            if held is not None and held[1] is ref:
                del files[key]

        files[key] = (ident, weakref.ref(buf, gone))
        return buf
