"""Safe downloads for the data scripts: mirrors tried in turn, resumable, checksummed, atomic, safely extracted.

A file is written as ``<name>.part`` and renamed to ``<name>`` only once it is complete and its checksum matches,
so an interrupted or corrupted download never sits at the final path; a file without a published checksum must
prove it is whole first (see ``fetch``). A ``.part`` file left by an interrupted
run is resumed with an HTTP Range request. When every mirror fails, ``DownloadFailed`` says which file to put
where by hand.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

try:
    import fcntl
except ImportError:  # Windows: no lock; two processes on one file there may each download it
    fcntl = None

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


class DamagedArchive(ValueError):
    """An archive is truncated or corrupt; the message names it and the command that fetches it again."""


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


class Incomplete(OSError):
    """A download ended before the file was whole; the ``.part`` file is kept, and the next try resumes it."""


def reads_to_its_end(path: Path) -> bool:
    """Is ``path`` a whole zip (every member's CRC checks) or tar archive (every member reads to its end)?"""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                return z.testzip() is None
        with tarfile.open(path) as t:
            for member in t:
                if member.isfile():
                    with t.extractfile(member) as f:
                        while f.read(CHUNK):
                            pass
            return True
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, zlib.error):
        return False


def _download(url: str, partial: Path, progress: bool, timeout: float) -> bool:
    """Fetch ``url`` into ``partial``, continuing from its current size when the server honours Range. Returns
    whether the server said how long the file is (and all of it arrived); a ``.part`` that the server answers with
    416 (nothing left in that range) is taken as complete, to be verified like any other."""
    start = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and start:
            return False
        raise
    with response:
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
            raise Incomplete(f"got {received} of {length} bytes")
    return length is not None


@contextlib.contextmanager
def _locked(path: Path):
    """Hold an exclusive lock on ``path`` (created if needed): a second process fetching the same file waits here,
    then finds the first one's file in place."""
    with open(path, "a") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


def fetch(source: Source, folder: Path, progress: bool = True, timeout: float = 60.0) -> Path:
    """Make sure ``folder/source.name`` exists and is verified, downloading it if needed; returns its path.

    A file without a published checksum is accepted only when it is provably whole: the server gave its length
    and all of it arrived, or, without one, it is an archive that reads to its end. Only then is its SHA-256
    recorded. One process at a time fetches a file (a lock beside it); a second one waits and uses its result."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / source.name
    with _locked(folder / f"{source.name}.lock"):
        return _fetch_locked(source, final, progress, timeout)


def _fetch_locked(source: Source, final: Path, progress: bool, timeout: float) -> Path:
    if final.exists():
        if verified(source, final):
            return final
        print(f"{final} fails its checksum; fetching it again.")
        final.unlink()
    partial = final.with_name(f"{source.name}.part")
    trusted_on_first_use = not source.sha256 and not source.md5
    errors = []
    for url in source.urls:
        for _ in range(3):  # later tries resume a download cut off half-way
            try:
                told_length = _download(url, partial, progress, timeout)
                if trusted_on_first_use and not told_length and not reads_to_its_end(partial):
                    raise Incomplete("the server gave no length and the archive does not read to its end")
                break
            except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
                errors.append(f"{url}: {error}")
        else:
            continue
        if verified(source, partial):
            if trusted_on_first_use:
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


def _link_target(member: tarfile.TarInfo) -> str:
    """Where a tar link points, as a path inside the archive: a symbolic link from its own folder, a hard link
    from the archive's root."""
    return os.path.join(os.path.dirname(member.name), member.linkname) if member.issym() else member.linkname


def extract(archive: Path, folder: Path, again: str | None = None) -> None:
    """Extract a .zip or .tar(.gz) into ``folder``, refusing any member whose path would leave it (absolute
    paths, ``..``, links that point outside). Extraction goes to a temporary folder that is renamed into place when
    complete. A damaged or incomplete archive is an error that names it and ``again``, the command that fetches it
    anew once it is deleted."""
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
                    if not _inside(staging, member.name):
                        raise UnsafeArchive(f"{archive.name}: member {member.name!r} would be written outside {folder}.")
                    if (member.issym() or member.islnk()) and (os.path.isabs(member.linkname)
                                                               or not _inside(staging, _link_target(member))):
                        raise UnsafeArchive(f"{archive.name}: member {member.name!r} is a link to "
                                            f"{member.linkname!r}, which points outside {folder}.")
                t.extractall(staging, filter="data")
        else:
            raise tarfile.ReadError("it reads as neither a zip nor a tar archive")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise DamagedArchive(f"{archive} is damaged or incomplete ({type(error).__name__}: {error}). Delete it and "
                             f"fetch it again{f' with `{again}`' if again else ''}.") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(staging, folder)
