"""The data scripts' downloader, against a server on 127.0.0.1 started by the test."""

import hashlib
import io
import re
import threading
import tarfile
import zipfile

import pytest

from data_scripts.download import DamagedArchive, DownloadFailed, Source, UnsafeArchive, extract, fetch
from tests.fileserver import FileServer

PAYLOAD = bytes(range(256)) * 400  # 100 KiB
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def server():
    with FileServer() as s:
        s.files["/a/data.bin"] = PAYLOAD
        yield s


def test_a_download_is_verified_and_renamed_into_place(server, tmp_path):
    path = fetch(Source("data.bin", (server.url + "/a/data.bin",), sha256=SHA), tmp_path, progress=False)
    assert path == tmp_path / "data.bin" and path.read_bytes() == PAYLOAD
    assert not list(tmp_path.glob("*.part"))


def test_mirrors_are_tried_in_turn(server, tmp_path):
    source = Source("data.bin", (server.url + "/missing.bin", server.url + "/a/data.bin"), sha256=SHA)
    assert fetch(source, tmp_path, progress=False).read_bytes() == PAYLOAD
    assert [p for p, _ in server.requests][0] == "/missing.bin"


def test_a_download_cut_off_half_way_leaves_nothing_final_and_resumes(server, tmp_path):
    server.cut["/a/data.bin"] = len(PAYLOAD) // 2
    path = fetch(Source("data.bin", (server.url + "/a/data.bin",), sha256=SHA), tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert server.requests[1] == ("/a/data.bin", f"bytes={len(PAYLOAD) // 2}-")  # the second request resumed


def test_an_interrupted_run_leaves_only_a_partial_file_that_the_next_run_resumes(server, tmp_path):
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD[:1000])
    path = fetch(Source("data.bin", (server.url + "/a/data.bin",), sha256=SHA), tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD and server.requests == [("/a/data.bin", "bytes=1000-")]


def test_a_corrupted_file_fails_its_checksum_and_is_fetched_again(server, tmp_path):
    (tmp_path / "data.bin").write_bytes(b"garbage" + PAYLOAD[7:])
    path = fetch(Source("data.bin", (server.url + "/a/data.bin",), sha256=SHA), tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD and len(server.requests) == 1


def test_a_wrong_download_never_reaches_the_final_path(server, tmp_path):
    server.files["/bad.bin"] = b"not the data"
    with pytest.raises(DownloadFailed) as error:
        fetch(Source("data.bin", (server.url + "/bad.bin",), sha256=SHA), tmp_path, progress=False)
    assert not (tmp_path / "data.bin").exists() and not (tmp_path / "data.bin.part").exists()
    assert "fails its checksum" in str(error.value)


def test_when_every_source_fails_the_message_says_what_to_place_where(server, tmp_path):
    source = Source("data.bin", (server.url + "/gone1", server.url + "/gone2"), sha256=SHA, note="Ask the authors.")
    with pytest.raises(DownloadFailed) as error:
        fetch(source, tmp_path, progress=False)
    message = str(error.value)
    assert str(tmp_path / "data.bin") in message and SHA in message and "by hand" in message
    assert "/gone1" in message and "/gone2" in message and "Ask the authors." in message


def test_md5_and_first_use_checksums(server, tmp_path):
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    assert fetch(Source("data.bin", (server.url + "/a/data.bin",), md5=md5), tmp_path / "m", progress=False).exists()
    trusted = fetch(Source("data.bin", (server.url + "/a/data.bin",)), tmp_path / "t", progress=False)
    assert (tmp_path / "t" / "data.bin.sha256").read_text().strip() == SHA
    trusted.write_bytes(b"changed")  # the recorded checksum now catches the change
    assert fetch(Source("data.bin", (server.url + "/a/data.bin",)), tmp_path / "t", progress=False).read_bytes() == PAYLOAD


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buffer.getvalue()


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize("pack, suffix", [(_zip, "zip"), (_tar, "tar.gz")])
def test_archives_are_extracted_into_the_target(tmp_path, pack, suffix):
    archive = tmp_path / f"a.{suffix}"
    archive.write_bytes(pack({"d/x.txt": b"x", "y.txt": b"y"}))
    extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "d" / "x.txt").read_bytes() == b"x"


@pytest.mark.parametrize("pack, suffix", [(_zip, "zip"), (_tar, "tar.gz")])
@pytest.mark.parametrize("evil", ["../escape.txt", "/tmp/absolute.txt", "d/../../escape.txt"])
def test_an_archive_with_a_path_leaving_the_target_is_refused(tmp_path, pack, suffix, evil):
    archive = tmp_path / f"a.{suffix}"
    archive.write_bytes(pack({"ok.txt": b"fine", evil: b"evil"}))
    with pytest.raises(UnsafeArchive, match="outside"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "escape.txt").exists()


def _tar_with_link(target: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as t:
        info = tarfile.TarInfo("d/x.txt")
        info.size = 1
        t.addfile(info, io.BytesIO(b"x"))
        link = tarfile.TarInfo("d/link")
        link.type, link.linkname = tarfile.SYMTYPE, target
        t.addfile(link)
    return buffer.getvalue()


@pytest.mark.parametrize("target", ["/etc/passwd", "../../outside.txt"])
def test_a_link_in_a_tar_archive_that_points_outside_is_refused(tmp_path, target):
    (tmp_path / "a.tar").write_bytes(_tar_with_link(target))
    with pytest.raises(UnsafeArchive, match=rf"'d/link' is a link to '{re.escape(target)}', which points outside"):
        extract(tmp_path / "a.tar", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_link_in_a_tar_archive_that_points_inside_it_is_extracted(tmp_path):
    (tmp_path / "a.tar").write_bytes(_tar_with_link("x.txt"))
    extract(tmp_path / "a.tar", tmp_path / "out")
    assert (tmp_path / "out" / "d" / "link").read_bytes() == b"x"


ARCHIVE = _tar({f"nyuv2/train/{i}.npy": bytes(range(256)) * 64 for i in range(8)})


def test_without_a_checksum_or_a_length_an_archive_cut_short_is_resumed_until_it_reads_to_its_end(server, tmp_path):
    server.files["/nyu.tar.gz"] = ARCHIVE
    server.no_length.add("/nyu.tar.gz")
    server.cut["/nyu.tar.gz"] = len(ARCHIVE) // 3
    path = fetch(Source("nyu.tar.gz", (server.url + "/nyu.tar.gz",)), tmp_path, progress=False)
    assert path.read_bytes() == ARCHIVE
    assert (tmp_path / "nyu.tar.gz.sha256").read_text().strip() == hashlib.sha256(ARCHIVE).hexdigest()
    assert server.requests[1] == ("/nyu.tar.gz", f"bytes={len(ARCHIVE) // 3}-")


def test_without_a_checksum_or_a_length_an_archive_that_stays_short_is_never_accepted(server, tmp_path):
    server.files["/nyu.tar.gz"] = ARCHIVE[: len(ARCHIVE) // 2]  # the server itself only has half of it
    server.no_length.add("/nyu.tar.gz")
    with pytest.raises(DownloadFailed, match="does not read to its end"):
        fetch(Source("nyu.tar.gz", (server.url + "/nyu.tar.gz",)), tmp_path, progress=False)
    assert not (tmp_path / "nyu.tar.gz").exists() and not (tmp_path / "nyu.tar.gz.sha256").exists()
    assert (tmp_path / "nyu.tar.gz.part").exists()  # kept, for the next run to resume
    server.files["/nyu.tar.gz"] = ARCHIVE  # the server is healthy again: the next run finishes the file
    assert fetch(Source("nyu.tar.gz", (server.url + "/nyu.tar.gz",)), tmp_path, progress=False).read_bytes() == ARCHIVE


def test_a_complete_partial_file_answered_with_416_is_verified_and_used(server, tmp_path):
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD)
    path = fetch(Source("data.bin", (server.url + "/a/data.bin",), sha256=SHA), tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD and server.requests == [("/a/data.bin", f"bytes={len(PAYLOAD)}-")]


def test_two_fetches_of_one_file_at_once_download_it_once(server, tmp_path):
    server.delay = 0.3
    source, results, errors = Source("data.bin", (server.url + "/a/data.bin",), sha256=SHA), [], []

    def fetch_it():
        try:
            results.append(fetch(source, tmp_path, progress=False))
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=fetch_it) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and [p.read_bytes() for p in results] == [PAYLOAD, PAYLOAD]
    assert len(server.requests) == 1


@pytest.mark.parametrize("pack, suffix", [(_zip, "zip"), (_tar, "tar.gz")])
def test_a_truncated_archive_names_itself_and_the_command_that_fetches_it_again(tmp_path, pack, suffix):
    archive = tmp_path / f"a.{suffix}"
    whole = pack({f"d/{i}.bin": bytes(range(256)) * 64 for i in range(4)})
    archive.write_bytes(whole[: len(whole) * 2 // 3])
    with pytest.raises(DamagedArchive, match=rf"{re.escape(str(archive))} is damaged or incomplete .*Delete it and "
                                             r"fetch it again with `python -m data_scripts.nyuv2`"):
        extract(archive, tmp_path / "out", again="python -m data_scripts.nyuv2")
    assert not (tmp_path / "out").exists()
