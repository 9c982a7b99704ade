"""Incremental Server-Sent Events decoder: bytes in, complete ``data`` payloads out.

This is the hot path of every stream, so it works on whole buffers: it looks for ``\\n`` with
``bytearray.find`` (a C loop), never walks bytes in Python, and decodes UTF-8 one complete line
at a time, so a character split across two reads is reassembled before it is decoded.

It follows the SSE parsing rules that matter for DeepSeek:

* lines end with LF, CRLF or CR (a CRLF split across two reads counts once);
* a line starting with ``:`` is a comment (``: keep-alive``) and is ignored;
* several ``data:`` lines in one event are joined with ``\\n``; a blank line dispatches;
* ``event:``, ``id:`` and ``retry:`` fields are ignored (DeepSeek sends none);
* ``data: [DONE]`` ends the stream; anything after it is ignored;
* an event still incomplete at EOF is discarded (the caller sees ``done`` is false).
"""

from __future__ import annotations

#: A line longer than this is treated as a broken stream rather than buffered without bound.
MAX_LINE_BYTES = 16 * 1024 * 1024

DONE = "[DONE]"


class LineTooLong(ValueError):
    """The stream sent a line longer than the decoder's limit."""


class SSEDecoder:
    """Feed it the raw bytes of a ``text/event-stream`` body; it returns data payloads."""

    __slots__ = ("_buf", "_cr", "_data", "_scan", "comments", "done", "max_line_bytes")

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._buf = bytearray()
        # Where the search for the next LF resumes: bytes before it hold no LF.
        self._scan = 0
        # The data lines of the event being built; None when the event has no data field yet.
        self._data: list[str] | None = None
        # The previous read ended in CR, so a LF starting this read completes a CRLF.
        self._cr = False
        self.done = False
        self.comments = 0
        self.max_line_bytes = max_line_bytes

    def feed(self, chunk: bytes) -> list[str]:
        """Consume ``chunk`` and return the payloads of the events it completed, in order."""
        if self.done or not chunk:
            return []
        if self._cr:
            self._cr = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]
        if b"\r" in chunk:
            self._cr = chunk[-1] == 0x0D
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buf = self._buf
        buf += chunk
        nl = buf.find(b"\n", self._scan)
        if nl == -1:
            self._scan = len(buf)
            if self._scan > self.max_line_bytes:
                raise LineTooLong(f"SSE line longer than {self.max_line_bytes} bytes")
            return []
        out: list[str] = []
        start = 0
        data = self._data
        while nl != -1:
            if nl == start:
                # Blank line: dispatch the event being built, if it has data.
                if data is not None:
                    payload = data[0] if len(data) == 1 else "\n".join(data)
                    data = None
                    if payload == DONE:
                        self.done = True
                        break
                    if payload:
                        out.append(payload)
            elif buf[start] == 0x3A:  # ":" — a comment such as ": keep-alive"
                self.comments += 1
            elif buf.startswith(b"data: ", start):
                value = buf[start + 6 : nl].decode("utf-8", "replace")
                if data is None:
                    data = [value]
                else:
                    data.append(value)
            else:
                line = buf[start:nl]
                name, colon, value_bytes = line.partition(b":")
                if name == b"data":
                    if value_bytes[:1] == b" ":
                        value_bytes = value_bytes[1:]
                    value = value_bytes.decode("utf-8", "replace") if colon else ""
                    if data is None:
                        data = [value]
                    else:
                        data.append(value)
                # Other fields (event, id, retry) and unknown ones are ignored.
            start = nl + 1
            nl = buf.find(b"\n", start)
        self._data = data
        if self.done:
            buf.clear()
            self._scan = 0
            return out
        del buf[:start]
        self._scan = len(buf)
        if self._scan > self.max_line_bytes:
            raise LineTooLong(f"SSE line longer than {self.max_line_bytes} bytes")
        return out
