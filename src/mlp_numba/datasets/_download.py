"""Downloads into the data cache, through pooch: verified by checksum, written atomically,
with a progress bar; the cache folder comes from platformdirs.

Nothing here runs unless a caller asks for a download (``download=True`` / ``--download``) or
for the default data folder. Both need the ``data`` extra (``pip install 'mlp-numba[data]'``,
which the ``cli`` extra includes); loading files from a folder you name needs nothing more.
"""

from __future__ import annotations

import hashlib
import os
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

from .._progress import plain_bar

#: The project name under which the data cache lives.
APP = "mlp_numba"


def _need(module):
    """Import ``module`` (pooch or platformdirs), or say which extra installs it."""
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(
            f"downloads and the default data folder need {module}: "
            "pip install 'mlp-numba[data]' (or pass the folder that holds the files)"
        ) from None


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
    """The data cache: ``$MLP_NUMBA_DATA``, else the platform's user cache folder for
    ``mlp_numba`` (platformdirs: ``~/.cache/mlp_numba`` on Linux, honouring
    ``XDG_CACHE_HOME``).

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
    return Path(_need("platformdirs").user_cache_dir(APP, appauthor=False))


def fetch(resource, directory, *, progress=True, timeout=60):
    """Download ``resource`` into ``directory`` unless a verified copy is there; return its path.

    Each mirror is tried in turn, by pooch. The bytes go to a temporary file beside the target
    and are renamed into place only when their checksum matches, so an interrupted or corrupted
    download never leaves a file that looks complete.

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
        except (OSError, ValueError) as exc:  # requests' errors are OSErrors
            errors.append(f"{url}: {exc}")
            bad_bytes = bad_bytes or isinstance(exc, ValueError)
    failures = "; ".join(errors)
    raise (ValueError if bad_bytes else OSError)(
        f"could not download {resource.filename}: {failures}"
    )


def _download(url, target, resource, progress, timeout):
    """One mirror: pooch fetches into a temporary name beside ``target`` (its own download
    is atomic too), which is checked and then renamed into place."""
    pooch = _need("pooch")
    bar = plain_bar(f"downloading {resource.filename}", unit="B", enabled=progress)
    downloader = pooch.HTTPDownloader(progressbar=bar if bar is not None else False,
                                      timeout=timeout)  # fmt: skip
    # pooch checks a file's own checksum; that of a gzip file's content is checked here.
    known_hash = f"md5:{resource.md5}" if resource.md5_of == "file" else None
    part = f"{resource.filename}.{uuid.uuid4().hex}.part"
    logger, level = pooch.get_logger(), pooch.get_logger().level
    logger.setLevel("WARNING")  # its line names the temporary file; the bar says enough
    try:
        try:
            pooch.retrieve(url, known_hash=known_hash, fname=part, path=target.parent,
                           downloader=downloader)  # fmt: skip
        except ValueError as exc:  # pooch's checksum mismatch: it kept nothing
            raise ValueError(f"checksum mismatch: {exc}; nothing was kept") from None
        got = _md5_of(target.parent / part, resource.md5_of)
        if got != resource.md5:
            raise ValueError(
                f"checksum mismatch: MD5 of the {resource.md5_of} content is {got}, "
                f"expected {resource.md5}; nothing was kept"
            )
        os.replace(target.parent / part, target)
    finally:
        logger.setLevel(level)
        (target.parent / part).unlink(missing_ok=True)


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
    """The MD5 of the file or of its gunzipped content, or None when it is not valid gzip."""
    digest = _Digest(of)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()
    except ValueError:
        return None
