"""Driver script for launchers that take a file from the repository (Databricks `git_source`, images that
copy the checkout): `main.py <drg arguments>`. The driver itself is `jobs/driver.py` (package code, so an
installed project has it too); this file only calls it.
"""

from __future__ import annotations

import sys

from jobs.driver import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
