"""The report as a reader sees it: a page opened in headless Chromium (Debian's)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


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


# every pair of texts drawn in one chart whose boxes (as the browser lays them out) overlap
_OVERLAPS = """
() => {
  const found = [];
  document.querySelectorAll("svg").forEach((svg, chart) => {
    const boxes = [...svg.querySelectorAll("text")]
      .map(t => [t.textContent.trim(), t.getBoundingClientRect()])
      .filter(([text, box]) => text && box.width > 0 && box.height > 0);
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const [a, p] = boxes[i], [b, q] = boxes[j];
        const apart = p.right <= q.left || q.right <= p.left ||
                      p.bottom <= q.top || q.bottom <= p.top;
        if (!apart) found.push([chart, a, b]);
      }
    }
  });
  return found;
}
"""


def overlapping_labels(page: Any) -> list[list[Any]]:
    """[chart index, text, text] for every two labels of one chart that overlap."""
    return page.evaluate(_OVERLAPS)
