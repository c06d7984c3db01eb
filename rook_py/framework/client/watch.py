"""A watch stream: newline-delimited JSON ``WatchEvent`` frames over a chunked HTTP response.

The official client's ``watch.Watch`` waits on the socket with no read timeout, so a peer that
vanishes without a FIN (NAT drop, partitioned node) hangs the caller forever. Here the socket read
timeout is always set: a stream that stays silent for longer than ``read_timeout`` raises
``errors.TransportError``, and the reflector re-opens the watch. Healthy idle watches stay
under the limit because the server closes the stream at ``timeoutSeconds`` and sends bookmarks.

Framing follows the apiserver's JSON watch encoding (k8s.io/apimachinery/pkg/watch/streamwatcher.go
with the JSON framer): one ``{"type": ..., "object": ...}`` document per line.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import urllib3

from rook_py.framework.client import errors

JSON = dict[str, Any]

__all__ = ["WatchStream"]

_READ_SIZE = 64 * 1024


class WatchStream:
    """Iterate to receive ``{"type": ADDED|MODIFIED|DELETED|BOOKMARK, "object": JSON}``.

    An ``ERROR`` event raises the typed error built from its ``metav1.Status`` (410 ->
    ``Expired``/``Gone``). The stream ends (iteration stops) when the server closes it cleanly.
    ``close()`` may be called from any thread; it unblocks a reader waiting on the socket and
    the iteration then ends quietly rather than raising.
    """

    def __init__(self, response: Any, *, description: str = "watch") -> None:
        self._resp = response
        self._description = description
        self._closed = threading.Event()
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def _chunks(self) -> Iterator[bytes]:
        resp = self._resp
        if resp.chunked and resp.supports_chunked_reads():
            # One yield per HTTP chunk as it arrives: no waiting for a fixed-size buffer to fill.
            yield from resp.read_chunked(decode_content=True)
            return
        while True:
            data = resp.read1(_READ_SIZE)
            if not data:
                return
            yield data

    def __iter__(self) -> Iterator[JSON]:
        buf = b""
        try:
            for chunk in self._chunks():
                if self._closed.is_set():
                    return
                buf = buf + chunk if buf else chunk
                start = 0
                while True:
                    end = buf.find(b"\n", start)
                    if end < 0:
                        break
                    line = buf[start:end]
                    start = end + 1
                    if line.strip():
                        yield self._decode(line)
                buf = buf[start:]
            if buf.strip() and not self._closed.is_set():
                yield self._decode(buf)
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            if self._closed.is_set():
                return
            if isinstance(exc, json.JSONDecodeError):
                raise errors.TransportError(f"{self._description}: undecodable frame: {exc}") from exc
            raise errors.TransportError(f"{self._description}: stream broken: {exc}") from exc
        except AttributeError:
            # close() from another thread makes urllib3 drop its file object under a reader
            # blocked in read(); that is our own shutdown, not a broken stream.
            if self._closed.is_set():
                return
            raise
        finally:
            self.close()

    def _decode(self, line: bytes) -> JSON:
        event: JSON = json.loads(line)
        if event.get("type") == "ERROR":
            status = event.get("object") or {}
            raise errors.from_status(status, int(status.get("code") or 500))
        return event

    def close(self) -> None:
        """Stop the stream; idempotent and safe from another thread."""
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
        resp = self._resp
        # ValueError/RuntimeError: urllib3 refuses once the response finished and released its
        # connection, which is fine -- there is no reader left to wake.
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            # shutdown() wakes a reader blocked in recv() on another thread; close() alone
            # would not (urllib3 >= 2.3).
            shutdown = getattr(resp, "shutdown", None)
            if shutdown is not None:
                shutdown()
        with contextlib.suppress(OSError):
            resp.close()
        with contextlib.suppress(OSError):
            # The connection is closed above, so the pool gets back a dead slot it will
            # reconnect, never a half-read stream.
            resp.release_conn()

    def __enter__(self) -> WatchStream:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
