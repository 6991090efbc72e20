"""`stop-gui` entry point (not built yet)."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("stop-gui: not built yet (the desktop app lands with the GUI issue)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
