"""What the browser tests share: their time limits, the screenshot of a whole app, the check that no error shows."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

RENDER_TIMEOUT_MS = 120_000  # first render on a busy 2-core machine
CLICK_TIMEOUT_MS = 60_000


def screenshot(page, folder: Path, name: str) -> Path:
    """Save the whole app open in `page` as `folder/name.png`, and a copy in $SML_SCREENSHOTS when that names a
    folder (for the README); the saved file. Voila scrolls inside the page, so the window grows to the app first."""
    height = page.evaluate("document.querySelector('.sml-page').scrollHeight")
    page.set_viewport_size({"width": 1280, "height": max(700, height + 60)})
    path = Path(folder) / f"{name}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1280, "height": 1000})
    assert path.stat().st_size > 10_000, f"{path} is nearly empty: the app did not show"
    if os.environ.get("SML_SCREENSHOTS"):
        Path(os.environ["SML_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(os.environ["SML_SCREENSHOTS"]) / path.name)
    return path


def no_traceback(page) -> None:
    "Neither a traceback nor a raw exception name is visible."
    text = page.inner_text("body")
    for sign in ("Traceback", "Error:", "ExecutionError", "Exception"):
        assert sign not in text, f"{sign!r} visible on the page:\n{text[:2000]}"


def drawn_width(picture) -> int:
    """The natural width of the image `picture` (a locator) once it is on screen and decoded. The predictor shows the
    answer first and its drawings after, so a test that looks at a drawing waits for that drawing, not the answer."""
    picture.wait_for(timeout=CLICK_TIMEOUT_MS)
    return picture.evaluate("img => img.decode().then(() => img.naturalWidth)")


def refused(page, message: str) -> None:
    "The page shows `message` beside its input and the form's sentence asking to fix it, and no prediction."
    page.get_by_text(message).wait_for()
    page.locator(".sml-problem:visible", has_text="Fix the 1 input(s) marked in red").wait_for()
    assert page.locator(".sml-class:visible").count() == 0 and page.locator(".sml-picture:visible").count() == 0
    no_traceback(page)
