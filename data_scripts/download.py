"""Safe downloads for the data scripts: mirrors tried in turn, resumable, checksummed, atomic, safely extracted.

A file is written as ``<name>.part`` and renamed to ``<name>`` only once it is complete and its checksum matches,
so an interrupted or corrupted download never sits at the final path. A ``.part`` file left by an interrupted
run is resumed with an HTTP Range request. When every mirror fails, ``DownloadFailed`` says which file to put
where by hand.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    """A file to fetch: its name, the URLs of its mirrors, and its published checksum.

    ``sha256`` is preferred; ``md5`` is used for files whose only published checksum is MD5. A file with no
    published checksum is trusted on first download: its SHA-256 is recorded beside it (``<name>.sha256``) and
    checked from then on.
    """

    name: str
    urls: tuple[str, ...]
    sha256: str | None = None
    md5: str | None = None
    note: str = ""


class DownloadFailed(RuntimeError):
    """Every mirror failed; the message says how to place the file by hand."""


class UnsafeArchive(ValueError):
    """An archive member would land outside the extraction folder."""


def digest(path: Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def verified(source: Source, path: Path) -> bool:
    """Does ``path`` hold the file ``source`` describes?"""
    if source.sha256:
        return digest(path, "sha256") == source.sha256
    if source.md5:
        return digest(path, "md5") == source.md5
    recorded = path.with_name(path.name + ".sha256")
    return not recorded.exists() or recorded.read_text().strip() == digest(path, "sha256")


def _download(url: str, partial: Path, progress: bool, timeout: float) -> None:
    """Fetch ``url`` into ``partial``, continuing from its current size when the server honours Range."""
    start = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        resumed = start > 0 and response.status == 206
        mode = "ab" if resumed else "wb"
        length = response.headers.get("Content-Length")
        total = (int(length) + (start if resumed else 0)) if length else None
        with open(partial, mode) as f, tqdm(
            total=total, initial=start if resumed else 0, unit="B", unit_scale=True, desc=partial.name[:-5],
            disable=not progress, leave=False,
        ) as bar:
            received = 0
            for chunk in iter(lambda: response.read(CHUNK), b""):
                f.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if length is not None and received < int(length):
            raise urllib.error.ContentTooShortError(f"got {received} of {length} bytes", None)


def fetch(source: Source, folder: Path, progress: bool = True, timeout: float = 60.0) -> Path:
    """Make sure ``folder/source.name`` exists and is verified, downloading it if needed; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / source.name
    if final.exists():
        if verified(source, final):
            return final
        print(f"{final} fails its checksum; fetching it again.")
        final.unlink()
    partial = folder / f"{source.name}.part"
    errors = []
    for url in source.urls:
        for _ in range(2):  # the second try resumes a download cut off half-way
            try:
                _download(url, partial, progress, timeout)
                break
            except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
                errors.append(f"{url}: {error}")
        else:
            continue
        if verified(source, partial):
            if not source.sha256 and not source.md5:
                final.with_name(final.name + ".sha256").write_text(digest(partial) + "\n")
            os.replace(partial, final)
            return final
        errors.append(f"{url}: the downloaded file fails its checksum")
        partial.unlink()
    expected = f"SHA-256 {source.sha256}" if source.sha256 else f"MD5 {source.md5}" if source.md5 else "no published checksum"
    raise DownloadFailed(
        f"Could not download {source.name} from any of its {len(source.urls)} source(s):\n  "
        + "\n  ".join(errors)
        + f"\nDownload it by hand ({expected}) and place it at\n    {final}\nthen run this command again."
        + (f"\n{source.note}" if source.note else "")
    )


def _inside(folder: Path, member: str) -> bool:
    target = (folder / member).resolve()
    return target == folder or folder in target.parents


def extract(archive: Path, folder: Path) -> None:
    """Extract a .zip or .tar(.gz) into ``folder``, refusing any member whose path would leave it (absolute
    paths, ``..``, links). Extraction goes to a temporary folder that is renamed into place when complete."""
    folder = folder.resolve()
    staging = folder.with_name(folder.name + ".extracting")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                for name in z.namelist():
                    if not _inside(staging, name):
                        raise UnsafeArchive(f"{archive.name}: member {name!r} would be written outside {folder}.")
                z.extractall(staging)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                for member in t.getmembers():
                    if member.issym() or member.islnk() or not _inside(staging, member.name):
                        raise UnsafeArchive(f"{archive.name}: member {member.name!r} would be written outside {folder}.")
                t.extractall(staging, filter="data")
        else:
            raise ValueError(f"{archive} is neither a zip nor a tar archive.")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(staging, folder)
