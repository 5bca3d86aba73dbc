"""Throughput benchmark: `postread read` end to end against the decode-only floor.

    python benchmarks/throughput.py [--count 24] [--repeat 3] [--workers 1,2] [--data DIR]

Generates (once, then reuses) envelope images at realistic sizes with the synthetic
generator: 300-dpi scans as PNG and JPEG (about 2800x1200) and phone photos (4000x3000
JPEG). For each kind and worker count it measures, side by side:
  (a) the decode floor: the same files read with cv2.imread in as many processes;
  (b) `postread read` end to end (a subprocess, on a fresh database);
and prints scans/s, the ratio (b)/(a), the scaling from 1 to N workers and the peak
resident memory of the largest worker. Each figure is the median of ``--repeat`` runs,
with the end-to-end runs' spread beside it: on a shared 2-core machine one run of 200
scans swung by a tenth (1.66x-1.99x scaling) between two runs minutes apart. The table
also goes to benchmarks/results.md.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import onnxruntime

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / "benchmarks" / "data"
sys.path.insert(0, str(ROOT))
from pipelines.synth_envelopes import CODED, make_envelope  # noqa: E402

KINDS = {
    # name: (condition, size before capture, file suffix, imwrite params)
    "scan-png": ("scan", (2800, 1200), ".png", [cv2.IMWRITE_PNG_COMPRESSION, 3]),
    "scan-jpeg": ("scan", (2800, 1200), ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 90]),
    "photo-jpeg": ("photo", (4000, 2250), ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 88]),
}


def generate(folder: Path, kind: str, count: int) -> list[Path]:
    """Write ``count`` envelopes of one kind (reused when already there)."""
    condition, size, suffix, params = KINDS[kind]
    target = folder / kind
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = target / f"{kind}_{i:04d}{suffix}"
        if not path.exists():
            envelope = make_envelope(None, CODED[i % len(CODED)], seed=10_000 + i,
                                     condition=condition, size=size)
            cv2.imwrite(str(path), envelope.image, params)
        paths.append(path)
    return paths


def _decode(path: Path) -> int:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return int(image.size)


def decode_floor(paths: list[Path], workers: int) -> float:
    """Scans per second when the only work is cv2.imread, in ``workers`` processes."""
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.map(_decode, paths[:workers])  # start-up and first-touch outside the clock
        started = time.perf_counter()
        pool.map(_decode, paths, chunksize=1)
        return len(paths) / (time.perf_counter() - started)


# Runs a command and prints the largest RSS (KiB) among it and the processes it waited for.
# A small interpreter of its own launches postread: a child forked straight from this
# benchmark would count the benchmark's own memory (images it generated) until its exec.
_MEASURE = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[2:], stdout=subprocess.DEVNULL,"
    " stderr=open(sys.argv[1], 'w'))\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(code)\n"
)


def end_to_end(folder: Path, workers: int) -> tuple[float, float]:
    """(scans/s, peak RSS in MB of the largest process) for `postread read` on a fresh DB."""
    postread = Path(sys.executable).with_name("postread")
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "stderr.log"
        command = [sys.executable, "-c", _MEASURE, str(log), str(postread), "read", str(folder),
                   "--db", str(Path(tmp) / "bench.db"), "--workers", str(workers)]
        started = time.perf_counter()
        result = subprocess.run(command, stdout=subprocess.PIPE, text=True)
        elapsed = time.perf_counter() - started
        stderr = log.read_text()
    if result.returncode not in (0, 6):
        raise SystemExit(f"postread read failed ({result.returncode}): {stderr[-2000:]}")
    count = sum(1 for _ in folder.iterdir())
    return count / elapsed, int(result.stdout.split()[-1]) / 1024


def machine() -> str:
    """One line describing where the figures were measured."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"OpenCV {cv2.__version__}, onnxruntime {onnxruntime.__version__}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print/write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=24, help="images per kind")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each measurement; the median is reported")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--workers", default=f"1,{os.cpu_count()}",
                        help="comma-separated worker counts")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results.md")
    args = parser.parse_args(argv)
    worker_counts = sorted({int(w) for w in args.workers.split(",")})
    # Shared machines: the load before and after says whether the figures can be trusted
    # (a load above the core count means other work took part of the CPU).
    load_before = os.getloadavg()[0]

    rows = ["| kind | workers | decode floor (scans/s) | postread read (scans/s) | "
            "runs' spread | ratio | scaling vs 1 worker | peak RSS, largest process (MB) |",
            "|---|---|---|---|---|---|---|---|"]
    for kind in args.kinds.split(","):
        paths = generate(args.data, kind, args.count)
        print(f"{kind}: {len(paths)} images in {args.data / kind}", file=sys.stderr)
        first = None
        for workers in worker_counts:
            # Floor and end to end alternate, so a slow spell of the machine touches both.
            floors, rates, peaks = [], [], []
            for _ in range(args.repeat):
                floors.append(decode_floor(paths, workers))
                rate, peak_mb = end_to_end(args.data / kind, workers)
                rates.append(rate)
                peaks.append(peak_mb)
            floor, rate = statistics.median(floors), statistics.median(rates)
            first = first or rate
            rows.append(f"| {kind} | {workers} | {floor:.2f} | {rate:.2f} | "
                        f"{min(rates):.2f}-{max(rates):.2f} | {rate / floor:.0%} | "
                        f"{rate / first:.2f}x | {max(peaks):.0f} |")
            print(rows[-1], flush=True)
    data = "" if args.data.resolve() == DEFAULT_DATA else f" --data {args.data}"
    report = "\n".join([
        "# Throughput: `postread read` against the decode-only floor", "",
        f"Measured {time.strftime('%Y-%m-%d')} on: {machine()}.",
        f"Command: `python benchmarks/throughput.py --count {args.count} "
        f"--repeat {args.repeat} --workers {args.workers}{data}`. Medians of {args.repeat} runs. "
        "End to end includes process start-up, model load and database writes; the floor "
        "is cv2.imread alone.",
        f"Load average (1 min) before / after: {load_before:.1f} / {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores.", "", *rows, ""])
    print("\n" + report)
    args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
