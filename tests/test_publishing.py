"""Publishing the book from its repository: the workflows linted and audited, every URL derived from where the book
lives, the site pushed to a local bare repository standing in for GitHub, and the wheel of the site installed into a
fresh environment by the reader editions' own install cell, from a real HTTP server on 127.0.0.1."""

import json
import os
import re
import subprocess
import sys
import time
import venv
import zipfile
from pathlib import Path

import nbformat
import pytest
from packaging.requirements import Requirement

from mtlutils import config, experiments

from tests.conftest import FORK
from tests.fileserver import FileServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book"))
import build  # noqa: E402
import publish  # noqa: E402
import reader  # noqa: E402
import urls  # noqa: E402

BIN = Path(sys.executable).parent
WORKFLOWS = ROOT / ".github" / "workflows"
DEFAULT = "mtl-book/multi-task-optimization"  # the repository of _config.yml
COLAB = re.compile(r"https://colab\.research\.google\.com/github/([^/\"']+/[^/\"']+)/blob/([^/\"']+)/([^\"'#?]+)")
UNSAFE = """on: pull_request_target
jobs:
  greet:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          ref: ${{ github.event.pull_request.head.sha }}
      - run: echo "${{ github.event.pull_request.title }}"
"""


def lint(*paths):
    return subprocess.run([BIN / "actionlint", "-shellcheck", BIN / "shellcheck", *paths], capture_output=True,
                          text=True, cwd=ROOT)


def audit(folder):
    return subprocess.run([BIN / "zizmor", "--offline", "--persona=pedantic", folder], capture_output=True,
                          text=True, cwd=ROOT)


def test_the_workflows_test_build_and_publish_and_have_no_finding():
    test, book = (WORKFLOWS / "test.yml").read_text(), (WORKFLOWS / "book.yml").read_text()
    assert "run: make test" in test and "run: make book" in book and "book/publish.py" in book
    assert all(re.fullmatch(r"[0-9a-f]{40}", sha) for sha in re.findall(r"uses: [\w./-]+@(\S+)", test + book))
    linted = lint(*sorted(WORKFLOWS.glob("*.yml")))
    assert linted.returncode == 0, linted.stdout + linted.stderr
    audited = audit(WORKFLOWS)
    assert audited.returncode == 0 and "No findings" in audited.stdout, audited.stdout + audited.stderr


def test_the_linters_find_what_is_wrong_in_a_workflow(tmp_path):
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    unsafe = tmp_path / ".github" / "workflows" / "unsafe.yml"
    unsafe.write_text(UNSAFE)
    linted = lint(unsafe)
    assert linted.returncode != 0 and "potentially untrusted" in linted.stdout
    audited = audit(unsafe.parent)
    assert audited.returncode != 0
    assert all(f"[{finding}]" in audited.stdout for finding in ("template-injection", "unpinned-uses",
                                                                 "dangerous-triggers"))


def test_every_url_follows_where_the_book_lives(monkeypatch):
    assert urls.repository() == DEFAULT
    monkeypatch.setenv("BOOK_REPOSITORY", "Someone/notes")
    assert urls.site_url() == "https://someone.github.io/notes/"
    config = urls.jupyter_book_config()
    cell = reader.reader_edition(nbformat.v4.new_notebook()).cells[0].source
    derived = [urls.repository_url(), urls.references_url(), urls.colab_url("01_x.ipynb"), urls.wheel_url(),
               urls.runs_url(), config["repository"]["url"], config["html"]["baseurl"]]
    assert all(re.search(r"[Ss]omeone", url) and "mtl-book" not in url for url in derived)
    assert repr(urls.wheel_url()) in cell and repr(urls.runs_url()) in cell
    monkeypatch.setenv("BOOK_REPOSITORY", "Someone/someone.github.io")  # the owner's own site
    assert urls.site_url() == "https://someone.github.io/"
    assert urls.wheel_url().startswith("https://someone.github.io/_")
    for bad in ("someone", "a/b/c", "https://github.com/a/b", "a/b.git"):
        monkeypatch.setenv("BOOK_REPOSITORY", bad)
        with pytest.raises(ValueError, match=r"BOOK_REPOSITORY gives .* give it as owner/name"):
            urls.repository()


def site_files(html: Path) -> list[Path]:
    return [path for path in html.rglob("*") if path.is_file() and path.suffix in (".html", ".ipynb", ".js", ".txt")]


@pytest.mark.xdist_group("smoke-book")
def test_a_book_built_for_another_repository_names_only_that_one(smoke_book):
    html = smoke_book.parent
    naming_default = [p for p in site_files(html) if DEFAULT in p.read_text() or "mtl-book.github.io" in p.read_text()]
    assert naming_default == []
    intro = (html / "book" / "intro.html").read_text()
    assert f'href="https://github.com/{FORK}"' in intro and f'href="{urls.site_url(FORK)}book/intro.html"' in intro
    for source in build.NOTEBOOKS:
        first = nbformat.read(html / urls.NOTEBOOKS_DIR / f"{source.stem}.ipynb", as_version=4).cells[0].source
        assert repr(urls.wheel_url(FORK)) in first and repr(urls.runs_url(FORK)) in first


@pytest.mark.xdist_group("smoke-book")
def test_publishing_pushes_the_whole_site_to_the_branch_colab_opens(smoke_book, tmp_path):
    html = smoke_book.parent
    git = lambda *args, cwd=None: subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,  # noqa: E731
                                                 text=True).stdout
    github, clone = tmp_path / "github.git", tmp_path / "clone"
    git("init", "--bare", "--quiet", str(github))
    git("init", "--quiet", str(clone))
    git("config", "user.name", "Publisher", cwd=clone)
    git("config", "user.email", "publisher@example.org", cwd=clone)
    git("remote", "add", "origin", str(github), cwd=clone)
    for _ in range(2):  # published twice: the branch holds the last site only, one commit
        publish.publish(html, "origin", clone)
    branch = f"--git-dir={github}"
    assert git(branch, "rev-list", "--count", urls.PUBLISHED_BRANCH).strip() == "1"
    files = set(git(branch, "ls-tree", "-r", "--name-only", urls.PUBLISHED_BRANCH).split("\n")) - {""}
    assert files == {str(p.relative_to(html)) for p in html.rglob("*") if p.is_file()} | {".nojekyll"}
    assert {f"{urls.NOTEBOOKS_DIR}/{s.stem}.ipynb" for s in build.NOTEBOOKS} <= files
    assert f"{urls.WHEELS_DIR}/{urls.wheel_name()}" in files
    keys = json.loads((html / urls.RUNS_DIR / "index.json").read_text())["keys"]
    assert keys and {f"{urls.RUNS_DIR}/{key}.json" for key in keys} <= files
    links = [link for page in html.rglob("*.html") for link in COLAB.findall(page.read_text())]
    assert len(links) >= len(build.NOTEBOOKS)
    assert all(repo == FORK and branch_name == urls.PUBLISHED_BRANCH and path in files
               for repo, branch_name, path in links)


def test_publishing_refuses_a_folder_that_is_not_a_built_book(tmp_path):
    (tmp_path / "index.html").write_text("<html></html>")
    with pytest.raises(FileNotFoundError, match=r"not a built book: .*_wheels.* Build it first with `make book`"):
        publish.publish(tmp_path, "origin", tmp_path)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    return build.build_wheel(tmp_path_factory.mktemp("wheel"))


def pinned() -> dict[str, str]:
    """The exact versions of requirements.txt: {name: version}."""
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return {(r := Requirement(line.split("#")[0])).name: str(r.specifier).removeprefix("==")
            for line in lines if line.split("#")[0].strip()}


def test_the_wheel_asks_for_ranges_that_colab_and_the_books_own_pins_meet(wheel):
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(f"mtlutils-{wheel.name.split('-')[1]}.dist-info/METADATA").decode()
    wanted = {(r := Requirement(line.split(": ", 1)[1])).name: r for line in metadata.splitlines()
              if line.startswith("Requires-Dist:") and "extra ==" not in line}
    versions = pinned()
    for name, requirement in wanted.items():  # the book's own environment is one the ranges admit
        assert requirement.specifier.contains(versions[name]), (name, requirement, versions[name])
        assert "==" not in str(requirement.specifier)
    # Colab keeps the CUDA build of torch it has: every release from 2.4 (the fused Adam on the CPU) on is admitted
    assert all(wanted["torch"].specifier.contains(v) for v in ("2.4.0", "2.6.0+cu124", "2.8.0+cu126", "2.10.0+cu128"))
    assert {"cagrad", "nash-mtl", "quadprog-projector"} <= wanted["torchjd"].extras


def test_the_install_cell_installs_the_sites_wheel_into_a_fresh_environment(wheel, tmp_path):
    """A fresh environment beside the project's packages (its site-packages, without mtlutils, on the path), pip
    kept offline: the cell installs mtlutils from the served wheel alone, and chapter 6's torchjd methods step."""
    fresh, beside = tmp_path / "venv", tmp_path / "project-packages"
    venv.create(fresh, with_pip=True)
    subprocess.run([fresh / "bin" / "python", "-m", "pip", "uninstall", "--quiet", "--yes", "setuptools"],
                   check=True)  # the old one of ensurepip would hide the project's
    packages = next(Path(sys.prefix).glob("lib/python3*/site-packages"))
    beside.mkdir()
    for entry in packages.iterdir():
        if "mtlutils" not in entry.name:
            (beside / entry.name).symlink_to(entry)
    (next(fresh.glob("lib/python3*/site-packages")) / "project-packages.pth").write_text(f"{beside}\n")
    python = fresh / "bin" / "python"
    env = {"PATH": f"{fresh / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "PIP_NO_INDEX": "1",
           "PIP_NO_COMPILE": "1", "MTLUTILS_CACHE": str(tmp_path / "runs"), "MTLUTILS_WORKERS": "1",
           "MTLUTILS_RUNS_URL": ""}
    run = lambda code: subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=tmp_path,  # noqa: E731
                                      env=env)
    assert run("import mtlutils").returncode != 0
    with FileServer() as server:
        server.files[f"/book/{urls.WHEELS_DIR}/{wheel.name}"] = wheel.read_bytes()
        source = f"{server.url}/book/{urls.WHEELS_DIR}/{wheel.name}"
        cell = reader.reader_edition(nbformat.v4.new_notebook(), source=source).cells[0].source
        first = run(cell)
        assert first.returncode == 0, first.stdout + first.stderr[-3000:]
        assert "Installing mtlutils" in first.stdout and server.requests
    stepped = run(STEP_EVERY_TORCHJD_METHOD)
    assert stepped.returncode == 0, stepped.stderr[-3000:]
    assert stepped.stdout.startswith(str(fresh)) and "methods stepped" in stepped.stdout
    again = run(cell)
    assert again.returncode == 0 and "Installing" not in again.stdout


STEP_EVERY_TORCHJD_METHOD = """
import math, warnings
import mtlutils as mtl
print(mtl.__file__)
warnings.simplefilter("ignore")
base = dict(dataset="clusters", size="smoke", data={"n_tasks": 2, "n_clusters": 2}, steps=2, batch_size=32)
configs = [c for family in mtl.config.torchjd_methods(base).values() for c in family.values()]
runs = mtl.run_grid(configs, progress=False)
for run in runs:
    assert run.history["optimizer_steps"].sum() == 2, "a method did not step"
    assert all(math.isfinite(v) for v in run.history.filter(like="loss_").to_numpy().ravel())
print(len(runs), "methods stepped")
"""


def test_the_site_carries_the_runs_the_build_used_and_only_those(tmp_path):
    grid = [dict(dataset="clusters", size="smoke", epochs=1, seed=seed) for seed in range(3)]
    experiments.run_grid(grid, tmp_path / "cache", progress=False)
    for path in (tmp_path / "cache").glob("*.json"):  # runs of an earlier build
        os.utime(path, (1e9, 1e9))
    since = time.time() - 2
    experiments.run_grid(grid[1:], tmp_path / "cache", progress=False)  # this build reads two of them
    used = build.used_runs(tmp_path / "cache", since)
    assert [path.stem for path in used] == sorted(config.config_key(c) for c in grid[1:])
    build.ship_runs(used, tmp_path / "_runs")
    index = json.loads((tmp_path / "_runs" / "index.json").read_text())
    assert sorted(index["keys"]) == [path.stem for path in used]
    assert all((tmp_path / "_runs" / path.name).read_bytes() == path.read_bytes() for path in used)
