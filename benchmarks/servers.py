"""uvicorn (the built-in `serve`: uvloop + httptools) against granian, on the ingest benchmark
and the HTTP ceiling. granian is not a project dependency: it runs through `uv run --with`.

    uv run python benchmarks/servers.py [--quick]
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from harness import REPO


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    for server in ("uvicorn", "granian"):
        print(f"== {server}", flush=True)
        command = [sys.executable, str(REPO / "benchmarks" / "webhook_ingest.py"), "--server", server]
        command += ["--quick"] if args.quick else ["--mode", "matched"]
        subprocess.run(command, check=True, cwd=REPO)  # noqa: S603 (fixed argv)


if __name__ == "__main__":
    main()
