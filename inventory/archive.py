"""Keep the raw AWS answers behind a collection run, and their SHA-256."""

import gzip
import hashlib
import io
import json
import threading
from datetime import date, datetime


def _plain(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"cannot keep a {type(value).__name__} in a run archive")


class Recorder:
    """Writes one JSON line per answer, compressed as it goes; safe to share between threads."""

    def __init__(self):
        self._buffer = io.BytesIO()
        self._gzip = gzip.GzipFile(fileobj=self._buffer, mode="wb", mtime=0)
        self._digest = hashlib.sha256()
        self._size = 0
        self._lock = threading.Lock()

    def add(self, entry: dict) -> None:
        line = json.dumps(entry, sort_keys=True, default=_plain, separators=(",", ":")) + "\n"
        data = line.encode()
        with self._lock:
            self._gzip.write(data)
            self._digest.update(data)
            self._size += len(data)

    def finish(self) -> tuple[bytes, str, int]:
        """The compressed lines, the SHA-256 of the uncompressed lines, and their size."""
        with self._lock:
            if not self._gzip.closed:
                self._gzip.close()
            return self._buffer.getvalue(), self._digest.hexdigest(), self._size
