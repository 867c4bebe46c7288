"""Playback token checks (core/playback_tokens.py): microseconds per check, in this process.

The playback redirect checks a token before anything else on every request, so the check
must stay cheap next to the request itself (about a millisecond through the HTTP stack).

    uv run python benchmarks/playback_tokens.py [--quick]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from recorder_service.client import mint_playback_token
from recorder_service.core.playback_tokens import PlaybackTokens, TokenVerdict

SECRET = "bench-playback-secret-0123456789abcdef"  # noqa: S105 - a benchmark's own
MEETING = "0b5e8c2e-7a77-4d5b-9d7e-2f1f9c1f3c11"


def per_call_us(fn: Callable[[], object], calls: int, rounds: int = 5) -> float:
    """The best of `rounds` timings of `calls` calls, in microseconds per call."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, time.perf_counter() - started)
    return best / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer calls")
    args = parser.parse_args()
    calls = 20_000 if args.quick else 200_000
    tokens = PlaybackTokens(SECRET)
    now = time.time()
    exp = int(now) + 900
    valid = tokens.mint(MEETING, exp)
    exp_text, sig = valid.split(".")
    cases = {
        "valid token": valid,
        "tampered signature": f"{exp_text}.{'A' if sig[0] != 'A' else 'B'}{sig[1:]}",
        "another meeting's": tokens.mint("another-meeting", exp),
        "expired": tokens.mint(MEETING, int(now) - 60),
        "malformed (non-numeric)": f"soon.{sig}",
        "huge (1 MB)": "9" * 1_000_000,
        "missing": "",
    }
    print(f"{'case':26} {'verdict':15} µs per check")
    for name, token in cases.items():
        verdict = tokens.check(MEETING, token, now)
        assert (verdict == TokenVerdict.VALID) == (name == "valid token"), (name, verdict)
        print(
            f"{name:26} {verdict.value:15} {per_call_us(lambda t=token: tokens.check(MEETING, t, now), calls):6.2f}"
        )
    print(f"{'mint (service)':26} {'':15} {per_call_us(lambda: tokens.mint(MEETING, exp), calls):6.2f}")
    client_mint = per_call_us(lambda: mint_playback_token(SECRET, MEETING, exp), calls)
    print(f"{'mint (Python client)':26} {'':15} {client_mint:6.2f}")


if __name__ == "__main__":
    main()
