"""A real headless Chromium for the dashboard tests: Debian's chromium + chromium-driver,
driven by Selenium with both paths given (its driver manager never downloads anything).

``tools/browser/setup.sh`` installs the two packages when they are missing. Where that cannot
work (not root, no apt) the tests skip, except in CI (``CI`` set), where they fail: CI runs as
root and must run them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def in_ci() -> bool:
    """Whether this is a CI run (where a browser test may never skip)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def ensure_browser() -> None:
    """Install the browser if needed; skip (fail in CI) if it cannot be had."""
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        proc = subprocess.run(
            ["sh", str(ROOT / "tools" / "browser" / "setup.sh")],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if proc.returncode != 0 or not shutil.which(CHROMEDRIVER):
            why = f"no headless Chromium: tools/browser/setup.sh said {proc.stderr[-500:]!r}"
            if in_ci():
                pytest.fail(why + " (CI runs as root and must install it)")
            pytest.skip(why)


def chrome(width: int = 1280, height: int = 900):  # type: ignore[no-untyped-def]
    """A new headless Chromium session (the caller quits it)."""
    ensure_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        f"--window-size={width},{height}",
    ):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def screenshot_dir() -> Path | None:
    """Where to save page screenshots (``PIFED_SCREENSHOTS``, set by `make screenshots`)."""
    out = os.environ.get("PIFED_SCREENSHOTS")
    if not out:
        return None
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    return path
