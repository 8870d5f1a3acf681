"""The report page in a real browser: a loopback HTTP server and headless Chromium (Selenium, offline), and
the screenshot for the docs.

    python3 -m adac.report.browser build/AdacFDN/report --screenshot docs/img/report.png

Selenium is a test extra (``pip install selenium==4.38.0``); the browser and its driver are Debian's
``chromium`` and ``chromedriver`` (``ADAC_CHROMIUM`` / ``ADAC_CHROMEDRIVER`` override them). Nothing is
downloaded: Selenium Manager is switched off (``SE_OFFLINE``) and the driver's path is given.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import os
import shutil
import sys
import threading
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from ..common.errors import AdacError, exit_code_for_user_errors


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


@contextlib.contextmanager
def serve(folder: Path):
    """``folder`` served on 127.0.0.1 at a free port, in a thread; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _program(variable: str, names: tuple[str, ...]) -> str:
    found = os.environ.get(variable) or next((shutil.which(n) for n in names if shutil.which(n)), None)
    if not found:
        raise AdacError(f"{names[0]} not found (install Debian's chromium and chromium-driver, or set {variable})")
    return found


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 900):
    """Headless Chromium driven by Selenium, with the browser's console log kept (``driver.get_log("browser")``)
    and audio allowed to start without a gesture."""
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager never downloads a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = _program("ADAC_CHROMIUM", ("chromium", "chromium-browser"))
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--autoplay-policy=no-user-gesture-required", "--mute-audio", f"--window-size={width},{height}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=_program("ADAC_CHROMEDRIVER", ("chromedriver",))),
                              options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_ready(driver, timeout: float = 60.0) -> None:
    """Until the audition panel has compiled its WebAssembly (its status reads "ready")."""
    WebDriverWait(driver, timeout).until(
        lambda d: d.find_element("id", "audition-status").text == "ready")


def screenshot(report: Path, out: Path) -> Path:
    """A full-page screenshot of the report folder's page, served from loopback, as PNG."""
    report = Path(report)
    if not (report / "index.html").is_file():
        raise AdacError(f"{report}: no index.html (build it with `scons plugins/<Name>/report`)")
    with serve(report) as url, chromium() as driver:
        driver.get(url)
        wait_ready(driver)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, min(int(height) + 40, 6000))
        WebDriverWait(driver, 30).until(lambda d: d.execute_script(
            "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"))
        out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(out))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m adac.report.browser", description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="the report folder (build/<Name>/report)")
    parser.add_argument("--screenshot", type=Path, required=True, help="PNG to write (e.g. docs/img/report.png)")
    args = parser.parse_args(argv)
    return exit_code_for_user_errors(lambda: print(screenshot(args.report, args.screenshot)))


if __name__ == "__main__":
    sys.exit(main())
