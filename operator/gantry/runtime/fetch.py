"""Turn a model URI into a local file the loader can open.

Local paths and ``file://`` are used in place; ``http(s)://`` is streamed to a
temporary directory with a time and size bound. Object stores (``s3://``,
``gs://``) are deliberately not fetched here: in a cluster the operator's init
container copies them into the pod's model repository and the runtime is handed
that local path (``GANTRY_MODEL_REPOSITORY``), so the runtime image needs no
cloud SDKs and no cloud credentials.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

import httpx

from gantry.runtime.errors import ModelFetchError

__all__ = ["MAX_DOWNLOAD_BYTES", "model_file_candidates", "resolve_model_file"]

_LOG = logging.getLogger(__name__)

#: Refuse downloads larger than this; a model server's disk is not unbounded.
MAX_DOWNLOAD_BYTES = 64 * 2**30
_CHUNK = 4 * 2**20

# What each object-store scheme would need, named in the error so the fix is obvious.
_STORE_CLIENTS = {
    "s3": "boto3",
    "gs": "google-cloud-storage",
    "gcs": "google-cloud-storage",
    "az": "azure-storage-blob",
    "abfs": "azure-storage-blob",
}

_FILE_NAMES = ("model.pt", "model.pth", "model.ts")


def model_file_candidates(directory: Path, version: int) -> list[Path]:
    """Where a model directory may hold the file, in search order.

    Triton's repository layout (``<dir>/<version>/model.pt``) first, so the
    runtime can serve the same directory the operator mounts for tritonserver.
    """
    return [directory / str(version) / n for n in _FILE_NAMES] + [
        directory / n for n in _FILE_NAMES
    ]


def _local_file(path: Path, version: int) -> Path:
    if path.is_file():
        return path
    if path.is_dir():
        for candidate in model_file_candidates(path, version):
            if candidate.is_file():
                return candidate
        looked = ", ".join(str(c.relative_to(path)) for c in model_file_candidates(path, version))
        raise ModelFetchError(f"model directory {path} holds none of: {looked}")
    raise ModelFetchError(f"model path {path} does not exist")


def _download(url: str, dest_dir: Path, *, timeout_s: float, max_bytes: int) -> Path:
    name = PurePosixPath(unquote(urlsplit(url).path)).name or "model.pt"
    dest = dest_dir / name
    deadline = time.monotonic() + timeout_s
    written = 0
    _LOG.info("downloading model from %s", url)
    timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 30.0))
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=True) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != httpx.codes.OK:
                raise ModelFetchError(f"download of {url} failed: HTTP {response.status_code}")
            with dest.open("wb") as out:
                for chunk in response.iter_bytes(_CHUNK):
                    written += len(chunk)
                    if written > max_bytes:
                        raise ModelFetchError(f"download of {url} exceeds {max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise ModelFetchError(f"download of {url} took longer than {timeout_s:g}s")
                    out.write(chunk)
    except httpx.HTTPError as exc:
        raise ModelFetchError(f"download of {url} failed: {type(exc).__name__}: {exc}") from exc
    _LOG.info("downloaded %d bytes to %s", written, dest)
    return dest


def resolve_model_file(
    uri: str,
    *,
    version: int,
    download_dir: Path,
    timeout_s: float,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
) -> Path:
    """Return a local model file for ``uri``, downloading it when remote.

    Args:
        uri: a path, ``file://`` URI, ``http(s)://`` URL, or a directory in
            Triton's layout.
        version: the model version, used to search a directory.
        download_dir: an existing directory for downloads (the caller owns it).
        timeout_s: bound on the whole download.
        max_bytes: bound on the download size.

    Raises:
        ModelFetchError: the file does not exist, the download failed, or the
            scheme needs a client this runtime does not ship.
    """
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme in ("", "file"):
        path = Path(unquote(parts.path)) if scheme == "file" else Path(uri)
        return _local_file(path.expanduser(), version)
    if scheme in ("http", "https"):
        return _download(uri, download_dir, timeout_s=timeout_s, max_bytes=max_bytes)
    if scheme in _STORE_CLIENTS:
        raise ModelFetchError(
            f"{scheme}:// model URIs need the optional {_STORE_CLIENTS[scheme]} client, which "
            "the Gantry runtime does not ship; in a cluster the operator's init container "
            "fetches the model and the runtime reads GANTRY_MODEL_REPOSITORY instead"
        )
    raise ModelFetchError(f"unsupported model URI scheme {scheme!r} in {uri!r}")
