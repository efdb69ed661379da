"""Reading records for reductions: the event reader, tuned for throughput.

:class:`FastReader` is an :class:`~minectl_py.events.reader.EventReader` that

* decompresses gzip files in a ``gzip -dc`` child process, so decompression runs on
  another core while Python parses (falls back to the in-process reader without ``gzip``);
* decodes straight into :class:`~minectl_py.reduce.record.Rec` (a chunk of lines at a time);
* skips JSON parsing of lines that contain none of the reduction's ``prefilters`` (e.g.
  ``b'"poll"'``): such lines cannot be records the reduction uses. Lines that pass the
  prefilter and are bad are counted and reported like any bad record.

Accepted input forms are the reader's: fluentd prefix or not, RS or not, CRLF or LF,
gzip (multi-member) or plain, files, globs or ``-`` for stdin.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from minectl_py.events.reader import (
    CHUNK,
    BadRecord,
    EventReader,
    GzipStream,
    classify,
    open_binary,
    printable,
    strip_prefix,
)
from minectl_py.reduce.record import DecodeError, ValidationError, decode, decode_lines, from_dict, time_ms

GZIP = shutil.which("gzip")
#: the fluentd prefix ``<time>\t<tag>\t`` at the start of a line (never on a line that starts with ``{``)
#: (searched after a newline: much faster than a MULTILINE ``^``)
_PREFIX = re.compile(rb"\n[^\t\n{\x1e]*\t[^\t\n]*\t")
_LEAD_RS = re.compile(rb"\n[\x1e \t]+")


def prefilters_for(cmds: Iterable[str]) -> tuple[bytes, ...] | None:
    """Byte strings one of which every record of these types contains (None: read all).

    Poll records are most of any log: when they are wanted, whole chunks are decoded in one
    call instead, which is faster than looking at each line."""
    if not cmds or "poll" in cmds:
        return None
    return tuple(sorted({f'"{c}"'.encode() for c in cmds}))


class FastReader(EventReader):
    def __init__(
        self,
        paths: Iterable[str],
        *,
        prefilters: tuple[bytes, ...] | None = None,
        on_invalid: Callable[[str], None] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(paths, **kw)
        if self.where is not None:
            raise ValueError("FastReader has no 'where' filter")
        self.prefilters = prefilters
        self.on_invalid = on_invalid or (lambda msg: None)
        self._filtered = bool(self.types or self.since_ms is not None or self.until_ms is not None)

    def __iter__(self) -> Iterator[Any]:
        for batch in self.batches():
            yield from batch

    def batches(self) -> Iterator[list[Any]]:
        """Records in lists (one per chunk of input): no per-record generator overhead."""
        for path in self.paths:
            name = "<stdin>" if path == "-" else path
            self.stats.sources.append(name)
            if path != "-" and GZIP and not env_no_child() and _is_gzip(path):
                yield from self._read_gzip_child(path, name)
                continue
            stream = open_binary(path)
            try:
                yield from self.read_stream(stream, name)
            finally:
                if path != "-":
                    stream.close()

    def _read_gzip_child(self, path: str, name: str) -> Iterator[list[Any]]:
        proc = subprocess.Popen(
            [GZIP, "-dc", "--", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=CHUNK
        )
        assert proc.stdout is not None and proc.stderr is not None
        try:
            yield from self.read_stream(proc.stdout, name)
        finally:
            proc.stdout.close()
            err = proc.stderr.read().decode("utf-8", "replace").strip()
            proc.stderr.close()
            rc = proc.wait()
        if rc not in (0, 2):  # 2: warnings only (e.g. trailing garbage/zero padding)
            self._bad(BadRecord(name, self.pos.line + 1, "truncated or corrupt gzip data", printable(err.encode())))

    def read_stream(self, stream: Any, name: str, first_line: int = 1) -> Iterator[list[Any]]:
        """Yield lists of :class:`~minectl_py.reduce.record.Rec` records of one stream."""
        pos = self.pos
        pos.source = name
        base = first_line - 1  # line number of the chunk's first line, minus one
        rest = b""
        whole = self.prefilters is None
        while True:
            buf = stream.read(CHUNK)
            if not buf:
                break
            if rest:
                buf = rest + buf
            cut = buf.rfind(b"\n") + 1
            if not cut:
                rest = buf
                continue
            rest = buf[cut:]
            chunk = buf[:cut]
            n = chunk.count(b"\n")
            recs = self._chunk_fast(chunk) if whole else None
            if recs is None:
                yield self._chunk_lines(chunk, base)
            else:
                self.stats.records += len(recs)
                pos.line = base + n
                yield self._filter(recs)
            base += n
        if rest:
            if rest[-1:] == b"\r":
                rest = rest[:-1]
            text = strip_prefix(rest)
            pres = self.prefilters
            if text.strip(b" \t") and (pres is None or any(p in rest for p in pres)):
                yield self._filter(self._decode([text], [base + 1], False))
            base += 1
        pos.line = base
        if isinstance(stream, GzipStream) and stream.truncated:
            self._bad(BadRecord(name, base + 1, "truncated or corrupt gzip data", ""))

    def _chunk_fast(self, chunk: bytes) -> list[Any] | None:
        """Every record of a chunk of whole lines in one call; None if any line needs care."""
        chunk = b"\n" + chunk
        if b"\t" in chunk:
            chunk = _PREFIX.sub(b"\n", chunk)
        if b"\x1e" in chunk:
            chunk = _LEAD_RS.sub(b"\n", chunk)
            if b"\x1e" in chunk:
                return None  # several records on one line
        try:
            return decode_lines(chunk)
        except DecodeError:
            return None

    def _chunk_lines(self, chunk: bytes, base: int) -> list[Any]:
        pres = self.prefilters
        p1 = pres[0] if pres and len(pres) == 1 else None
        texts: list[bytes] = []
        nos: list[int] = []
        for i, ln in enumerate(chunk.split(b"\n")):
            if p1 is not None:
                if p1 not in ln:
                    continue
            elif pres is not None and not any(p in ln for p in pres):
                continue
            if ln[-1:] == b"\r":
                ln = ln[:-1]
            if ln[:1] != b"{":
                ln = strip_prefix(ln)
                if not ln.strip(b" \t"):
                    continue
            texts.append(ln)
            nos.append(base + i + 1)
        return self._filter(self._decode(texts, nos, True)) if texts else []

    def _filter(self, recs: list[Any]) -> list[Any]:
        if not self._filtered:
            return recs
        kept = [r for r in recs if self._keep(r)]
        self.stats.skipped += len(recs) - len(kept)
        return kept

    def _decode(self, texts: list[bytes], nos: list[int], complete: bool) -> list[Any]:
        recs: list[Any] | None = None
        if complete and not any(b"\x1e" in t for t in texts):
            try:
                recs = decode_lines(b"\n".join(texts))
            except DecodeError:
                recs = None
            if recs is not None and len(recs) != len(texts):
                recs = None
            if recs is not None:
                self.stats.records += len(recs)
        if recs is None:
            recs = []
            for t, no in zip(texts, nos, strict=True):
                parts = [p.strip(b" \t") for p in t.split(b"\x1e")] if b"\x1e" in t else [t]
                for p in parts:
                    if p:
                        r = self._one(p, no, complete)
                        if r is not None:
                            recs.append(r)
        self.pos.line = nos[-1]
        return recs

    def _one(self, text: bytes, lineno: int, complete: bool) -> Any:
        try:
            rec = decode(text)
        except ValidationError as e:
            obj, reason = classify(text)
            if obj is None:
                self._bad(BadRecord(self.pos.source, lineno, reason or "bad", printable(text)))
            else:
                self.stats.records += 1
                self.on_invalid(f"{self.pos.source}:{lineno}: {e}")
            return None
        except DecodeError:
            obj, reason = classify(text)
            if obj is None and not complete and reason == "not JSON":
                reason = "truncated last line"
            if obj is None:
                self._bad(BadRecord(self.pos.source, lineno, reason or "bad", printable(text)))
                return None
            try:  # valid for the standard parser (e.g. a number too big for msgspec)
                rec = from_dict(obj)
            except (ValidationError, TypeError) as e:
                self.stats.records += 1
                self.on_invalid(f"{self.pos.source}:{lineno}: {e}")
                return None
        self.stats.records += 1
        return rec

    def _keep(self, rec: Any) -> bool:
        if self.types is not None and rec.cmd not in self.types:
            return False
        if self.since_ms is not None or self.until_ms is not None:
            t = time_ms(rec)
            if t is None:
                return False
            if self.since_ms is not None and t < self.since_ms:
                return False
            if self.until_ms is not None and t >= self.until_ms:
                return False
        return True


def _is_gzip(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"\x1f\x8b"
    except OSError:
        return False


def env_no_child() -> bool:
    """``MINECTL_REDUCE_NO_GZIP_CHILD=1`` decompresses in-process (for comparisons)."""
    return os.environ.get("MINECTL_REDUCE_NO_GZIP_CHILD") == "1"
