"""Run a ``pipelines/`` script in a subprocess, as a person runs it."""

import subprocess
import sys
from pathlib import Path

PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"


def run_script(name: str, *args, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python pipelines/NAME ARGS...``, its output captured as text."""
    return subprocess.run([sys.executable, str(PIPELINES / name), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def train_dry_run(mnist_dir: Path, *options) -> subprocess.CompletedProcess:
    """``train.py --dry-run`` on one thread: a few batches, as CI can afford."""
    return run_script("train.py", "--dry-run", "--mnist", mnist_dir, "--threads", "1", *options)
