"""`python deploy/package.py zip OUT.zip | conf`: jobs.submit run from a checkout (see its docstring).

Kept for scripts and docs that call it by path; it puts the checkout first on sys.path so the zip and
settings are the checkout's, whatever else is installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobs.submit import build_zip, main, submit_conf  # noqa: E402

__all__ = ["build_zip", "main", "submit_conf"]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
