"""The data scripts' downloader, against a server on 127.0.0.1 started by the test."""

import hashlib
import io
import tarfile
import zipfile

import pytest

from data_scripts.download import DownloadFailed, Source, UnsafeArchive, extract, fetch
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


def test_a_link_in_a_tar_archive_is_refused(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as t:
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(link)
    (tmp_path / "a.tar").write_bytes(buffer.getvalue())
    with pytest.raises(UnsafeArchive):
        extract(tmp_path / "a.tar", tmp_path / "out")
