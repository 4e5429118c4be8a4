"""The report as a reader sees it: a page opened in headless Chromium (Debian's)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-quic"]  # fmt: skip


def open_in_chromium(
    page_path: Path, read: Callable[[Any], dict[str, Any]], screenshot: Path
) -> tuple[dict[str, Any], list[str]]:
    """Open `page_path`, return what `read(page)` reads from it and the page's errors;
    keep a full-page screenshot at `screenshot`."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_path.as_uri())
            seen = read(page)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return seen, errors
