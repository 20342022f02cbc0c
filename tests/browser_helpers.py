"""Headless Chromium for the tests that look at a page (the viewer, the traceback report).

Chromium and its driver are Debian packages (``chromium``, ``chromium-driver``), installed
by scripts/setup.sh as root; tests skip with ``needs_chromium`` when they are absent.
"""

from __future__ import annotations

import shutil
import tempfile

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
# This machine's closed network refuses Chromium's own background connections: turn them off.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1000,800"]

needs_chromium = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="headless Chromium not installed (Debian: apt-get install chromium "
           "chromium-driver; scripts/setup.sh does it as root)")


def chromium(tmp_path):
    """A headless Chromium WebDriver with its own profile under ``tmp_path``, browser
    console logged (``driver.get_log("browser")``). The caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for a in [*CHROMIUM_ARGS, f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}"]:
        opts.add_argument(a)
    opts.binary_location = CHROMIUM
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(DRIVER), options=opts)
