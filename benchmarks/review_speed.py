"""Measure how fast the review screen takes decisions when a script drives it in a real pty.

    python benchmarks/review_speed.py --reads 60

Builds a results database of N generated envelopes that need review (``tests/review_db.py``),
runs the installed ``postread review`` in a pseudo-terminal of 40 x 120 cells, and answers
each screen as soon as it is drawn: a third confirmed (Enter), a third corrected (the five
to nine digits typed, then Enter), a third marked unreadable (``u``). It prints the
decisions per minute and the time from a key to the next read's screen. A person is slower;
this is the ceiling the tool puts on them, and it includes every database commit.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pexpect

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]
from review_db import Planned, build  # noqa: E402

from postread.store import Store  # noqa: E402

LENGTHS = {"fr": 5, "cn": 6, "jp": 7, "us": 5, "hu": 4}


def plan(reads: int, seed: int) -> tuple[Planned, ...]:
    """N envelopes whose reads need review, with distinct confidences (a known order)."""
    rng = np.random.default_rng(seed)
    planned = []
    for i in range(reads):
        convention = list(LENGTHS)[i % len(LENGTHS)]
        code = "".join(str(d) for d in rng.integers(0, 10, LENGTHS[convention]))
        planned.append(Planned(f"env{i:04d}.png", convention, code, code,
                               0.05 + 0.8 * i / reads, seed + i))
    return tuple(planned)


def drive(db: str, planned: tuple[Planned, ...]) -> tuple[float, list[float]]:
    """Answer every screen; returns the seconds from first screen to last decision, latencies."""
    child = pexpect.spawn(str(Path(sys.executable).with_name("postread")),
                          ["review", "--db", db, "--reviewer", "bench"],
                          dimensions=(40, 120), encoding="utf-8", timeout=30,
                          env={"TERM": "xterm-256color", "PATH": "/usr/bin:/bin"})
    child.delaybeforesend = None  # pexpect's default 50 ms pause would be measured as ours
    total = len(planned)
    child.expect(rf"1 of {total}.*?file {planned[0].name}")
    started, latencies = time.monotonic(), []
    for i, p in enumerate(planned):
        keys = ("\r", p.true_code + "\r", "u")[i % 3]
        sent = time.monotonic()
        child.send(keys)
        if i + 1 < total:
            child.expect(rf"{i + 2} of {total}.*?file {planned[i + 1].name}")
        else:
            child.expect(rf"All {total} reads have been seen")
        latencies.append(time.monotonic() - sent)
    elapsed = time.monotonic() - started
    child.send("q")
    child.expect(pexpect.EOF)
    return elapsed, latencies


def main(argv: list[str] | None = None) -> int:
    """Build, drive, check every decision was stored, print the rate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=60)
    parser.add_argument("--seed", type=int, default=100)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        planned = plan(args.reads, args.seed)
        db, _ = build(Path(folder), planned)
        elapsed, latencies = drive(db, planned)
        stored = len(Store(db).review_history())
    if stored != args.reads:
        print(f"only {stored} of {args.reads} decisions were stored", file=sys.stderr)
        return 1
    latencies.sort()
    print(f"{args.reads} decisions in {elapsed:.2f} s: {args.reads / elapsed * 60:.0f} "
          f"decisions/minute; key to next screen: median "
          f"{statistics.median(latencies) * 1000:.0f} ms, "
          f"p95 {latencies[int(0.95 * (len(latencies) - 1))] * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
