"""Files people send with a case: which ones are accepted, and their download with a size limit.

Teams gives a pre-authenticated `downloadUrl` for a file uploaded in the personal chat
(`application/vnd.microsoft.teams.file.download.info`), and a `contentUrl` for an image pasted
into the chat (which needs the bot's token in production: pass it as `token`).
"""
from __future__ import annotations

import enum
import ipaddress
import logging
import mimetypes
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urljoin, urlsplit

import aiohttp

log = logging.getLogger("seatdesk.attachments")

MAX_BYTES = 10 * 1024 * 1024
TIMEOUT_SECONDS = 10
MAX_REDIRECTS = 3
FILENAME_MAX = 255

# Extension → the content type Seatdesk stores (never the sender's word for it).
ALLOWED: dict[str, str] = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "webp": "image/webp",
    "heic": "image/heic",
    "pdf": "application/pdf",
    "txt": "text/plain",
    "log": "text/plain",
    "csv": "text/csv",
    "json": "application/json",
    "xml": "application/xml",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "doc": "application/msword",
    "xls": "application/vnd.ms-excel",
    "ppt": "application/vnd.ms-powerpoint",
    "msg": "application/vnd.ms-outlook",
    "eml": "message/rfc822",
    "zip": "application/zip",
}
_IMAGE_TYPES = {v: k for k, v in ALLOWED.items() if v.startswith("image/")}


class Refusal(str, enum.Enum):
    TYPE = "type"
    TOO_BIG = "too_big"
    DOWNLOAD = "download"
    URL = "url"


@dataclass(frozen=True)
class Downloaded:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Refused:
    filename: str
    why: Refusal


def safe_filename(name: str) -> str:
    """The last path part, without control characters, at most 255 characters (keeping the extension)."""
    base = PurePosixPath((name or "").replace("\\", "/")).name
    base = "".join(ch for ch in base if ch.isprintable() and ch not in '<>:"|?*').strip(" .")
    if len(base) > FILENAME_MAX:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: FILENAME_MAX - len(ext) - 1] + "." + ext) if dot and len(ext) < 10 else base[:FILENAME_MAX]
    return base or "file"


def accepted_type(filename: str, declared: str = "") -> str | None:
    """The content type to store when the file is of an allowed kind, else None.

    A pasted image has a name like 'image' and a declared image/* type; everything else is
    judged by its extension (Teams' fileType), so an .exe renamed nothing else gets through."""
    ext = filename.rpartition(".")[2].lower() if "." in filename else ""
    if ext in ALLOWED:
        return ALLOWED[ext]
    if not ext and declared.lower() in _IMAGE_TYPES:
        return declared.lower()
    if not ext and declared.lower() in ALLOWED:
        return ALLOWED[declared.lower()]
    return None


def with_extension(filename: str, content_type: str) -> str:
    if "." in filename:
        return filename
    ext = _IMAGE_TYPES.get(content_type) or (mimetypes.guess_extension(content_type) or "").lstrip(".")
    return f"{filename}.{ext}" if ext else filename


def _url_allowed(url: str) -> bool:
    """HTTPS anywhere; plain HTTP only to this machine (tests and local development)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    if parts.scheme == "http" and parts.hostname:
        if parts.hostname == "localhost":
            return True
        try:
            return ipaddress.ip_address(parts.hostname).is_loopback
        except ValueError:
            return False
    return False


async def download(
    url: str,
    filename: str,
    declared_type: str = "",
    *,
    token: str | None = None,
    max_bytes: int = MAX_BYTES,
    timeout: float = TIMEOUT_SECONDS,
) -> Downloaded | Refused:
    """Fetch one file, refusing a type that is not allowed before downloading and stopping at `max_bytes`."""
    name = safe_filename(filename)
    content_type = accepted_type(name, declared_type)
    if content_type is None:
        return Refused(name, Refusal.TYPE)
    name = with_extension(name, content_type)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            for _hop in range(MAX_REDIRECTS + 1):
                if not _url_allowed(url):
                    return Refused(name, Refusal.URL)
                async with session.get(url, headers=headers, allow_redirects=False) as response:
                    if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                        url = urljoin(url, response.headers["Location"])
                        headers = {}  # never send the bot's token to where a redirect points
                        continue
                    if response.status != 200:
                        log.info("download of %s answered HTTP %s", name, response.status)
                        return Refused(name, Refusal.DOWNLOAD)
                    if response.content_length is not None and response.content_length > max_bytes:
                        return Refused(name, Refusal.TOO_BIG)
                    chunks, size = [], 0
                    async for chunk in response.content.iter_chunked(64 * 1024):
                        size += len(chunk)
                        if size > max_bytes:
                            return Refused(name, Refusal.TOO_BIG)
                        chunks.append(chunk)
                    return Downloaded(name, content_type, b"".join(chunks))
            return Refused(name, Refusal.DOWNLOAD)
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        log.info("download of %s failed: %s", name, type(error).__name__)
        return Refused(name, Refusal.DOWNLOAD)
