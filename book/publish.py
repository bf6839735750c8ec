"""Publish the built book: push the site (``_build/html``) to the published branch of a git remote, as one commit
with no history, with ``.nojekyll`` so that GitHub Pages serves the folders whose names start with ``_``. Colab opens
the reader editions from that branch (``urls.colab_url``).

    python book/publish.py                  # after `make book`: what the book's workflow runs, to origin's gh-pages
    python book/publish.py --remote NAME --html path/to/_build/html
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import urls
from editions import ROOT


def check_site(html: Path) -> None:
    """Refuse a site that lacks what the published book needs, naming it and the command that builds it."""
    from mtlutils import published

    needed = [html / "index.html", html / urls.NOTEBOOKS_DIR, html / urls.WHEELS_DIR / urls.wheel_name(),
              html / urls.RUNS_DIR / published.INDEX]
    missing = [str(path) for path in needed if not path.exists()]
    if missing:
        raise FileNotFoundError(f"The site in {html} is not a built book: {', '.join(missing)} missing. Build it "
                                "first with `make book` (or python book/build.py).")


def publish(html: Path, remote: str = "origin", repository: Path = ROOT, message: str = "The built book") -> None:
    """Push ``html`` to the branch ``urls.PUBLISHED_BRANCH`` of ``remote``, a remote of the git ``repository``."""
    check_site(html)
    ghp_import = Path(sys.executable).parent / "ghp-import"
    subprocess.run([str(ghp_import), "--no-jekyll", "--no-history", "--push", "--force", "--remote", remote,
                    "--branch", urls.PUBLISHED_BRANCH, "--message", message, str(html.resolve())],
                   cwd=repository, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html", help="the built site")
    parser.add_argument("--remote", default="origin", help="the git remote to push to (default: origin)")
    parser.add_argument("--message", default="The built book", help="the commit message")
    args = parser.parse_args()
    publish(args.html, args.remote, message=args.message)
    print(f"published {args.html} to {args.remote} {urls.PUBLISHED_BRANCH}: {urls.site_url()}")


if __name__ == "__main__":
    main()
