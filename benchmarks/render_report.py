"""Render a run's report.html to a PNG with headless Chromium, to look at it as a reader would.

    python benchmarks/render_report.py runs/demo/report.html runs/demo/report.png

Chromium runs with a fresh profile and no network, sync or updates (`apt-get install -y chromium`).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]


def render(page: Path, out: Path, chromium: str | None = None, size: str = "1400,3000") -> Path:
    """Screenshot `page` into `out` (PNG); returns `out`."""
    binary = chromium or shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        raise SystemExit("no chromium found: apt-get install -y chromium")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={out.resolve()}",
                        f"--window-size={size}", page.resolve().as_uri()],
                       check=True, capture_output=True, timeout=120)
    if not out.is_file():
        raise SystemExit(f"chromium wrote no screenshot to {out}")
    return out


if __name__ == "__main__":
    html, png = Path(sys.argv[1]), Path(sys.argv[2] if len(sys.argv) > 2 else "report.png")
    size = sys.argv[3] if len(sys.argv) > 3 else "1400,3000"
    print(render(html, png, size=size))
