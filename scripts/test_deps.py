"""Install what the test suite needs beyond requirements.txt: node packages for differential tests.

Runs before pytest in `make test`; fast when everything is already there.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def install_node_packages() -> None:
    for package_json in sorted((ROOT / "tests").glob("**/package.json")):
        folder = package_json.parent
        if "node_modules" in folder.parts or (folder / "node_modules").exists():
            continue
        if shutil.which("npm") is None:
            print(f"NOTICE: npm not found; tests needing {folder.relative_to(ROOT)} will be skipped", file=sys.stderr)
            continue
        command = ["npm", "ci" if (folder / "package-lock.json").exists() else "install", "--no-audit", "--no-fund"]
        subprocess.run(command, cwd=folder, check=True)


if __name__ == "__main__":
    install_node_packages()
