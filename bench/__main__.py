"""``python -m bench`` lists the benchmarks; ``python -m bench NAME [args]`` runs one."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXCLUDED = {"report", "__main__"}


def available() -> list[str]:
    return sorted(
        m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name not in EXCLUDED and not m.name.startswith("_")
    )


def main(argv: list[str]) -> int:
    names = available()
    if not argv or argv[0] in {"-h", "--help"}:
        print("usage: python -m bench NAME [options]\n\nbenchmarks:")
        for name in names:
            doc = (importlib.import_module(f"bench.{name}").__doc__ or "").strip().splitlines()
            print(f"  {name:24} {doc[0] if doc else ''}")
        return 0
    if argv[0] not in names:
        print(f"unknown benchmark {argv[0]!r}; available: {', '.join(names) or '(none)'}", file=sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "owt.settings")
    module = importlib.import_module(f"bench.{argv[0]}")
    module.main(argv[1:])
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    sys.exit(main(sys.argv[1:]))
