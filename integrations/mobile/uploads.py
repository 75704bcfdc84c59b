"""Files sent with a report: checked by their content (not their name), counted, and stored.

A file's type is what its first bytes say (magic numbers), or UTF-8 text;
the name and Content-Type the client gave only tell JSON from plain text. The
stored type is the sniffed one, and a name whose extension says otherwise is
given the right one (`photo.png` holding text is stored as `photo.txt`), so no
agent's computer opens it as something it is not.

Zip and other containers are refused: their content cannot be checked here.
"""

from __future__ import annotations

import codecs
import hashlib
from dataclasses import dataclass

from integrations.errors import Rejected
from integrations.mobile.limits import size_text
from integrations.queue.attachments import AttachmentStore, Readable
from integrations.report import AttachmentRef

# Enough to recognise every accepted format, and the start of a JSON document.
HEAD_BYTES = 64
READ_CHUNK = 256 * 1024


@dataclass(frozen=True)
class Kind:
    """An accepted file type: the stored content type, a label for people, its extensions."""

    content_type: str
    label: str
    extensions: tuple[str, ...]

    @property
    def is_text(self) -> bool:
        """Text kinds are checked to be UTF-8 all the way through."""
        return self.content_type.startswith(("text/", "application/json"))


PNG = Kind("image/png", "PNG", (".png",))
JPEG = Kind("image/jpeg", "JPEG", (".jpg", ".jpeg"))
GIF = Kind("image/gif", "GIF", (".gif",))
WEBP = Kind("image/webp", "WebP", (".webp",))
HEIC = Kind("image/heic", "HEIC", (".heic",))
HEIF = Kind("image/heif", "HEIF", (".heif", ".heic"))
MP4 = Kind("video/mp4", "MP4", (".mp4", ".m4v"))
QUICKTIME = Kind("video/quicktime", "QuickTime", (".mov",))
TEXT = Kind("text/plain; charset=utf-8", "UTF-8 text", (".txt", ".log"))
JSON = Kind("application/json", "JSON", (".json",))

ACCEPTED = "PNG, JPEG, GIF, WebP, HEIC/HEIF images; MP4 and QuickTime videos; UTF-8 text and JSON"

# ISO base media files (`....ftyp<brand>`): the brand says which kind.
_FTYP_BRANDS = {
    **dict.fromkeys((b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis"), HEIC),
    **dict.fromkeys((b"mif1", b"msf1"), HEIF),
    **dict.fromkeys(
        (b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V "), MP4
    ),
    b"qt  ": QUICKTIME,
}


def sniff(head: bytes, declared_name: str = "", declared_type: str = "") -> Kind | None:
    """The kind the first bytes show; None when they match nothing (text is checked later)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(head[8:12])
    if b"\x00" in head:
        return None
    declared_json = declared_name.lower().endswith(".json") or "json" in declared_type.lower()
    if declared_json and head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"["):
        return JSON
    return TEXT


def safe_filename(name: str | None, index: int, kind: Kind) -> str:
    """A plain file name: no folders or control characters, with an extension that fits `kind`."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip().strip(".")[:120]
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    stem = stem.strip() or f"attachment-{index}"
    if f".{ext.lower()}" not in kind.extensions:
        ext = kind.extensions[0][1:]
    return f"{stem}.{ext}"


class CheckedFile:
    """Reads a file once, refusing it as soon as it is too large or not the text it claims."""

    def __init__(self, stream: Readable, name: str, *, limit: int) -> None:
        self.stream = stream
        self.name = name
        self.limit = limit
        head = _read_at_least(stream, HEAD_BYTES)
        if not head:
            raise Rejected(422, f"attachment {name!r} is empty")
        self.head = head
        self.size = 0
        self.sha256 = hashlib.sha256()
        self._pending = head
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._done = False
        self.kind: Kind | None = None

    def classify(self, declared_type: str) -> Kind:
        """The file's kind by content; 415 naming what is accepted when it is none of them."""
        kind = sniff(self.head, self.name, declared_type)
        if kind is None:
            raise Rejected(
                415,
                f"attachment {self.name!r} is not an accepted type (checked by its content); "
                f"accepted are {ACCEPTED}",
            )
        self.kind = kind
        return kind

    def read(self, size: int = -1, /) -> bytes:
        """The next bytes, checked; b"" at the end (after the last check passed)."""
        if self._done:
            return b""
        if self._pending:
            chunk, self._pending = self._pending, b""
        else:
            chunk = self.stream.read(READ_CHUNK if size < 0 else size)
        if not chunk:
            self._finish()
            return b""
        self.size += len(chunk)
        if self.size > self.limit:
            raise Rejected(
                413,
                f"attachment {self.name!r} is larger than {size_text(self.limit)}, "
                "the limit per file",
            )
        if self.kind is not None and self.kind.is_text:
            self._check_text(chunk)
        self.sha256.update(chunk)
        return chunk

    def drain(self) -> None:
        """Read to the end without keeping anything (checks and the digest still run)."""
        while self.read(READ_CHUNK):
            pass

    def _check_text(self, chunk: bytes) -> None:
        try:
            self._decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            at = self.size - len(chunk) + exc.start
            raise Rejected(415, self._not_text(f"invalid UTF-8 at byte {at}")) from None
        if b"\x00" in chunk:
            raise Rejected(415, self._not_text("it contains NUL bytes"))

    def _finish(self) -> None:
        if self.kind is not None and self.kind.is_text:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                raise Rejected(415, self._not_text("it ends inside a UTF-8 character")) from None
        self._done = True

    def _not_text(self, why: str) -> str:
        return (
            f"attachment {self.name!r} is not an accepted type (checked by its content): "
            f"not an image or video format, and not UTF-8 text ({why}); accepted are {ACCEPTED}"
        )


def _read_at_least(stream: Readable, n: int) -> bytes:
    # A stream may return fewer bytes than asked before its end (a socket, a pipe).
    parts = []
    got = 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


@dataclass(frozen=True)
class Incoming:
    """One file part of the request, as the client named and typed it."""

    stream: Readable
    filename: str | None
    content_type: str


@dataclass(frozen=True)
class Checked:
    """A file that passed the checks: where it is stored (None when only fingerprinted)."""

    ref: AttachmentRef | None
    fingerprint: str


def check_and_store(
    files: list[Incoming], store: AttachmentStore | None, *, file_bytes: int
) -> list[Checked]:
    """Check every file by content and stream it into `store` (or only hash it when None).

    A refusal deletes what this call already stored, so nothing half-accepted waits.
    """
    done: list[Checked] = []
    try:
        for index, incoming in enumerate(files, start=1):
            shown = incoming.filename or f"attachment-{index}"
            checked = CheckedFile(incoming.stream, shown, limit=file_bytes)
            kind = checked.classify(incoming.content_type)
            filename = safe_filename(incoming.filename, index, kind)
            ref = None
            if store is not None:
                ref = store.put(checked, filename, kind.content_type)
            else:
                checked.drain()
            digest = checked.sha256.hexdigest()
            done.append(Checked(ref=ref, fingerprint=f"{filename}:{kind.content_type}:{digest}"))
    except BaseException:
        if store is not None:
            discard(store, [c.ref for c in done if c.ref is not None])
        raise
    return done


def discard(store: AttachmentStore, refs: list[AttachmentRef]) -> None:
    """Delete stored files, best effort: when Redis fails too, their TTL removes them."""
    for ref in refs:
        try:
            store.delete(ref.key)
        except Exception:  # noqa: S112 - the error being handled is the one to report
            continue
