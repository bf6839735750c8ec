"""Where the book lives: one setting, the GitHub repository ``owner/name`` it is published from, and every URL the
build writes, derived from it.

The setting is the repository URL in ``_config.yml``; ``BOOK_REPOSITORY=owner/name`` overrides it at build time (the
workflows set it from ``GITHUB_REPOSITORY``, so that a fork publishes to its own pages with no edit). The site is
the repository's GitHub Pages, ``https://owner.github.io/name/``; its ``PUBLISHED_BRANCH`` holds the site as built,
the reader editions in ``_notebooks/``, the wheel of mtlutils in ``_wheels/`` and the book's runs in ``_runs/``.
"""

from __future__ import annotations

import os
import re
import tomllib
from functools import cache

import yaml

from editions import ROOT

PUBLISHED_BRANCH = "gh-pages"  # the branch the site is published to (book/publish.py), where Colab opens notebooks
NOTEBOOKS_DIR, WHEELS_DIR, RUNS_DIR = "_notebooks", "_wheels", "_runs"
REPOSITORY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")
GITHUB = "https://github.com/"


@cache
def book_config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def repository() -> str:
    """The setting: ``$BOOK_REPOSITORY``, else the repository of ``_config.yml``, checked for its form."""
    configured = book_config()["repository"]["url"].removeprefix(GITHUB).strip("/")
    value = os.environ.get("BOOK_REPOSITORY") or configured
    if not REPOSITORY.fullmatch(value) or value.endswith((".git", "/.")):
        where = "BOOK_REPOSITORY" if os.environ.get("BOOK_REPOSITORY") else "repository.url in _config.yml"
        raise ValueError(f"{where} gives {value!r}, which is not a GitHub repository: give it as owner/name "
                         "(for example mtl-book/multi-task-optimization).")
    return value


def repository_url(repo: str | None = None) -> str:
    return GITHUB + (repo or repository())


def site_url(repo: str | None = None) -> str:
    """The repository's GitHub Pages, ending in ``/``: ``https://owner.github.io/name/``, or the owner's root site
    for a repository named ``owner.github.io``."""
    owner, name = (repo or repository()).split("/")
    root = f"https://{owner.lower()}.github.io/"
    return root if name.lower() == f"{owner.lower()}.github.io" else f"{root}{name}/"


def references_url(repo: str | None = None) -> str:
    return site_url(repo) + "book/references.html"


def colab_url(notebook: str, repo: str | None = None) -> str:
    """Colab's link to the reader edition ``notebook`` (``NN_topic.ipynb``) in the published branch."""
    return (f"https://colab.research.google.com/github/{repo or repository()}/blob/{PUBLISHED_BRANCH}/"
            f"{NOTEBOOKS_DIR}/{notebook}")


def wheel_name() -> str:
    """The file name of the wheel of mtlutils that the build puts in the site (pure Python, any platform)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return f"{project['name']}-{project['version']}-py3-none-any.whl"


def wheel_url(repo: str | None = None) -> str:
    return f"{site_url(repo)}{WHEELS_DIR}/{wheel_name()}"


def runs_url(repo: str | None = None) -> str:
    """Where the reader editions fetch the book's finished runs from (``MTLUTILS_RUNS_URL``)."""
    return f"{site_url(repo)}{RUNS_DIR}/"


def jupyter_book_config(repo: str | None = None) -> dict:
    """``_config.yml`` with the URLs that Jupyter Book writes (repository button, Colab links, canonical URLs) set
    from the setting."""
    config = dict(book_config())
    config["repository"] = {**config["repository"], "url": repository_url(repo)}
    config["html"] = {**config.get("html", {}), "baseurl": site_url(repo)}
    return config
