"""Request bodies under limits: bytes read (413 past the limit), multipart fields checked, pixels counted.

Nothing here decodes an image for use; that is :func:`siedob.edit.inputs.decode_scene`'s job, with the
CLI's checks and messages. Here only the header is read (Pillow, lazily) to refuse oversized images
before any decoder allocates them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

from PIL import Image
from starlette.datastructures import UploadFile
from starlette.requests import Request

#: Default request size limit (bytes) and image size limit (pixels).
MAX_BYTES = 32 * 1024 * 1024
MAX_PIXELS = 2048 * 2048
#: Fields a multipart request may have at most.
MAX_FIELDS = 64


class ApiError(Exception):
    """An HTTP error answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Limits:
    """Upload limits of a server."""

    max_bytes: int = MAX_BYTES
    max_pixels: int = MAX_PIXELS


@dataclass
class Form:
    """A parsed multipart body: file fields (repeatable, in order) and text fields."""

    files: Dict[str, List[bytes]]
    text: Dict[str, str]
    filenames: Dict[str, List[str]] = field(default_factory=dict)

    def file(self, key: str) -> bytes:
        """The single upload of a required field."""
        if key in self.text:
            raise ApiError(400, f"field {key!r} must be a file upload, got a text value")
        if key not in self.files:
            raise ApiError(400, f"missing field {key!r}")
        if len(self.files[key]) != 1:
            raise ApiError(400, f"field {key!r} given {len(self.files[key])} times; expected once")
        return self.files[key][0]

    def optional_file(self, key: str):
        """The single upload of an optional field, or None."""
        return self.file(key) if key in self.files or key in self.text else None

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        """An optional integer text field in ``low..high``."""
        value = self.text.get(key)
        if value is None:
            if key in self.files:
                raise ApiError(400, f"field {key!r} must be a text value, got a file")
            return default
        try:
            n = int(value)
        except ValueError:
            raise ApiError(400, f"field {key!r} must be an integer, got {value[:40]!r}") from None
        if not low <= n <= high:
            raise ApiError(400, f"field {key!r} must lie in {low}..{high}, got {n}")
        return n


async def read_form(request: Request, limits: Limits, allowed: Sequence[str], prefixes: Sequence[str] = ()) -> Form:
    """Read at most ``limits.max_bytes`` of body and parse it as multipart; unknown fields are an error."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(400, "expected a multipart/form-data body")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_bytes:
        raise ApiError(413, f"request of {int(declared)} bytes exceeds the upload limit of {limits.max_bytes} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_bytes:
            raise ApiError(413, f"request exceeds the upload limit of {limits.max_bytes} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)

    async def replay() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=MAX_FIELDS, max_fields=MAX_FIELDS)
    except Exception as exc:  # the multipart parser's own errors: a malformed body
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ApiError(400, f"malformed multipart body ({reason})") from None
    files: Dict[str, List[bytes]] = {}
    filenames: Dict[str, List[str]] = {}
    text: Dict[str, str] = {}
    for key, value in form.multi_items():
        if key not in allowed and not any(key.startswith(p) for p in prefixes):
            raise ApiError(400, f"unknown field {key[:40]!r}; expected {', '.join(allowed)}")
        if isinstance(value, UploadFile):
            files.setdefault(key, []).append(await value.read())
            filenames.setdefault(key, []).append(value.filename or "")
        else:
            text[key] = value
    await form.close()
    return Form(files, text, filenames)


def image_size(data: bytes) -> Tuple[int, int]:
    """(width, height) from an image's header; (0, 0) when Pillow does not know the format."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except Image.DecompressionBombError:
        return (Image.MAX_IMAGE_PIXELS, 2)
    except Exception:  # not an image Pillow reads: the decoder then reports it with the CLI's message
        return (0, 0)


def check_pixels(name: str, data: bytes, limits: Limits) -> None:
    """413 when an upload's header declares more than ``limits.max_pixels`` pixels."""
    w, h = image_size(data)
    if w * h > limits.max_pixels:
        raise ApiError(413, f"{name}: a {w}×{h} image exceeds the limit of {limits.max_pixels} pixels")
