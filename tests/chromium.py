"""Debian's Chromium and ChromeDriver, for the tests that look at pages in a real headless browser (`make test`
installs them where it can). A test module that imports this is skipped, saying why, without them."""

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("google-chrome")  # the latter on GitHub's runners
CHROMEDRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: run `make test`")
needed = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="Chromium and ChromeDriver are not installed (Debian: apt-get install chromium chromium-driver; "
           "`make test` does this where it runs as root)",
)


def start(profile: Path, window: str = "1400,1000"):
    """A headless Chromium with its profile in ``profile``, kept off the network but for the pages it is sent to."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
                 f"--user-data-dir={profile}", f"--window-size={window}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
