"""Downloads into the data cache: verified by checksum, written atomically, with progress.

Nothing here runs unless a caller asks for a download (``download=True`` / ``--download``).
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

from .._atomic import atomic_write
from .._progress import progress_bar

_CHUNK = 1 << 16


@dataclass(frozen=True)
class Resource:
    """A file to fetch: its name, the mirrors that serve it, and the MD5 it must have.

    ``md5_of`` says what the checksum covers: ``"file"`` (the bytes as served) or
    ``"gunzipped"`` (the content of a gzip file, which survives recompression by a mirror).
    """

    filename: str
    urls: tuple
    md5: str
    md5_of: str = "file"


def data_home():
    """The data cache: ``$MLP_NUMBA_DATA``, else the platform's user cache dir + ``mlp_numba``.

    Examples
    --------
    >>> import os
    >>> os.environ["MLP_NUMBA_DATA"] = "/tmp/my-data"
    >>> str(data_home())
    '/tmp/my-data'
    >>> del os.environ["MLP_NUMBA_DATA"]
    """
    configured = os.environ.get("MLP_NUMBA_DATA")
    if configured:
        return Path(configured).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
        return base / "mlp_numba" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "mlp_numba"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlp_numba"


def fetch(resource, directory, *, progress=True, timeout=60):
    """Download ``resource`` into ``directory`` unless a verified copy is there; return its path.

    Each mirror is tried in turn. The bytes go to a temporary file beside the target and are
    renamed into place only when their checksum matches, so an interrupted or corrupted download
    never leaves a file that looks complete.

    Raises
    ------
    ValueError
        When a mirror served bytes with the wrong checksum (and no other mirror worked).
    OSError
        When no mirror could be reached.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / resource.filename
    if target.exists() and _md5_of(target, resource.md5_of) == resource.md5:
        return target
    errors, bad_bytes = [], False
    for url in resource.urls:
        try:
            _download(url, target, resource, progress, timeout)
            return target
        except (OSError, ValueError) as exc:  # URLError is an OSError
            errors.append(f"{url}: {exc}")
            bad_bytes = bad_bytes or isinstance(exc, ValueError)
    failures = "; ".join(errors)
    raise (ValueError if bad_bytes else OSError)(
        f"could not download {resource.filename}: {failures}"
    )


def _download(url, target, resource, progress, timeout):
    digest = _Digest(resource.md5_of)
    with urllib.request.urlopen(url, timeout=timeout) as response:
        total = int(response.headers.get("Content-Length") or 0)
        bar = progress_bar(total, f"downloading {resource.filename}", enabled=progress, unit="B")
        with atomic_write(target) as out:
            done = 0
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                bar.update(done)
            bar.close()
            got = digest.hexdigest()
            if got != resource.md5:  # raising here removes the temporary file
                raise ValueError(
                    f"checksum mismatch: MD5 of the {resource.md5_of} content is {got}, "
                    f"expected {resource.md5}; nothing was kept"
                )


class _Digest:
    """MD5 of a byte stream as served, or of its gunzipped content, fed chunk by chunk."""

    def __init__(self, of):
        if of not in ("file", "gunzipped"):
            raise ValueError(f"md5_of must be 'file' or 'gunzipped', got {of!r}")
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if of == "gunzipped" else None

    def update(self, chunk):
        if self.inflate is None:
            self.md5.update(chunk)
            return
        try:
            while chunk:
                self.md5.update(self.inflate.decompress(chunk))
                # A gzip file may hold several members one after the other.
                chunk = self.inflate.unused_data
                if chunk:
                    self.inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        except zlib.error as exc:
            raise ValueError(f"checksum mismatch: not a valid gzip stream ({exc})") from exc

    def hexdigest(self):
        if self.inflate is not None:
            self.md5.update(self.inflate.flush())
        return self.md5.hexdigest()


def _md5_of(path, of):
    digest = _Digest(of)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()
    except ValueError:
        return None
