"""Headless Chromium for the rendering checks of the Chinese pages (skipped where no browser is installed)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path


def browser():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def screenshot(page: Path, shot: Path, size: str = "1200,2400") -> Path:
    """A real browser's rendering of a page (headless Chromium), as a PNG."""
    subprocess.run(
        [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--no-first-run", f"--user-data-dir={tempfile.mkdtemp()}", f"--window-size={size}",
         f"--screenshot={shot}", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    return shot


def assert_not_blank(shot: Path) -> None:
    """Drawn, not blank: many colours and a fair share of non-white pixels."""
    from PIL import Image

    image = Image.open(shot).convert("RGB").resize((300, 600))
    pixels = list(image.getdata())
    inked = sum(1 for p in pixels if sum(p) < 600) / len(pixels)
    assert len(set(pixels)) > 50 and inked > 0.03, (len(set(pixels)), inked)
