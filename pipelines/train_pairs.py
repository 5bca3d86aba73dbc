"""Train the pair judge: one digit, or two touching digits cut out as one mark?

    python pipelines/train_pairs.py --mnist ../shared/data/mnist --extra data/harvest4k
    python pipelines/train_pairs.py --dry-run          # a few batches, as CI runs it

Pairs are two MNIST training digits run together (``pipelines/pairs.py``); single digits
are MNIST's and, with ``--extra``, digits the reader cut from generated envelopes
(``harvest_crops.py``): the crops the judge meets in use, wide and broken ones included.
Held out: pairs of MNIST test digits against MNIST test digits. ``export.py --pairs``
ships the judge in one graph with the digit model. A few minutes on two CPU cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipelines import mnist  # noqa: E402
from pipelines.augment import augment  # noqa: E402
from pipelines.mnist import load_extra  # noqa: E402
from pipelines.model import PAIR_ARCHITECTURE, PairNet  # noqa: E402
from pipelines.pairs import touching_pairs  # noqa: E402
from pipelines.train import MEAN, STD, normalise, run, save, to_input  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mnist", type=Path, default=mnist.default_dir(),
                        help="folder with the four MNIST .gz files (env POSTREAD_MNIST_DIR)")
    parser.add_argument("--extra", type=Path, action="append", default=[],
                        help="folder of single digits cut by the reader, with labels.csv "
                             "(repeatable)")
    parser.add_argument("--pairs", type=int, default=120_000, help="training pairs to make")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128, help="pairs (and as many singles)")
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    parser.add_argument("--out", type=Path, default=Path("runs/pairs.pt"))
    parser.add_argument("--dry-run", action="store_true",
                        help="3 batches on 2,000 pairs, held-out check on 1,000 (smoke test)")
    return parser.parse_args(argv)


@torch.no_grad()
def pair_chances(model: PairNet, images: np.ndarray, batch: int = 1000) -> np.ndarray:
    """The judge's probability that each uint8 28 x 28 crop holds two digits."""
    model.eval()
    logits = [model(normalise(to_input(images[i:i + batch]))) for i in range(0, len(images), batch)]
    return torch.sigmoid(torch.cat(logits)).numpy()


def held_out_rates(model: PairNet, pairs: np.ndarray, singles: np.ndarray) -> dict:
    """How often held-out pairs are caught and single digits are taken for pairs."""
    caught, mistaken = pair_chances(model, pairs), pair_chances(model, singles)
    return {"pairs": len(pairs), "singles": len(singles),
            "pairs_above_0.5": round(float(np.mean(caught > 0.5)), 5),
            "singles_above_0.5": round(float(np.mean(mistaken > 0.5)), 5),
            "singles_above_0.9": round(float(np.mean(mistaken > 0.9)), 5)}


def train(args: argparse.Namespace, command: str = "") -> dict:
    """Train, check on held-out MNIST test pairs and digits, save a checkpoint."""
    started = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    train_x, _ = mnist.load_split(args.mnist, "train")
    test_x, _ = mnist.load_split(args.mnist, "test")
    count, held = (2_000, 1_000) if args.dry_run else (args.pairs, 5_000)
    if args.dry_run:
        train_x, test_x = train_x[:2_000], test_x[:held]
    singles = np.concatenate([train_x, *(load_extra(folder)[0] for folder in args.extra)])
    pairs = touching_pairs(train_x, count, rng)
    test_pairs = touching_pairs(test_x, held, np.random.default_rng(args.seed + 1))
    model = PairNet()
    batches = 3 if args.dry_run else len(pairs) // args.batch_size
    optimizer = torch.optim.AdamW(model.parameters(), args.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, args.lr,
                                                   total_steps=args.epochs * batches)
    gen = torch.Generator().manual_seed(args.seed)
    # Half of each batch pairs, half single digits: both kinds seen equally often.
    targets = torch.cat([torch.ones(args.batch_size), torch.zeros(args.batch_size)])
    history = []
    for epoch in range(args.epochs):
        model.train()
        order = rng.permutation(len(pairs))
        for b in range(batches):
            picked = order[b * args.batch_size:(b + 1) * args.batch_size]
            others = rng.integers(0, len(singles), args.batch_size)
            batch = to_input(np.concatenate([pairs[picked], singles[others]]))
            loss = F.binary_cross_entropy_with_logits(model(normalise(augment(batch, gen))),
                                                      targets[:len(batch)])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        rates = held_out_rates(model, test_pairs, test_x)
        history.append({"epoch": epoch + 1, "loss": round(loss.item(), 5), **rates})
        print(f"epoch {epoch + 1}: {rates}", flush=True)
    checkpoint = {
        "architecture": PAIR_ARCHITECTURE,
        "state_dict": model.state_dict(),
        "mean": MEAN, "std": STD,
        "held_out": history[-1],
        "recipe": {"command": command, "seed": args.seed, "epochs": args.epochs,
                   "pairs": count, "singles": len(singles),
                   "extra": [str(p) for p in args.extra], "peak_lr": args.lr,
                   "optimizer": "AdamW wd 1e-4, OneCycleLR",
                   "augmentation": "pipelines/augment.py defaults",
                   "torch_version": torch.__version__,
                   "wall_seconds": round(time.perf_counter() - started, 1),
                   "dry_run": args.dry_run},
    }
    return save(checkpoint, args.out)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    return run(train, parse_args, "train_pairs.py", argv)


if __name__ == "__main__":
    sys.exit(main())
