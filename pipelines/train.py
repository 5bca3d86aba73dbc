"""Train the digit CNN on MNIST (plus reviewed envelope digits), calibrate it, save a checkpoint.

    python pipelines/train.py --mnist ../shared/data/mnist --epochs 16 --seed 1
    python pipelines/train.py --dry-run            # a few batches, as CI runs it
    python pipelines/train.py --teacher-net --model-seed 11 --out runs/teacher11.pt
    python pipelines/train.py --teacher runs/teacher11.pt --teacher runs/teacher12.pt

With ``--teacher`` the DigitNet learns from the averaged answers of larger networks
(``--teacher-net``, too slow to ship) as well as from the labels: knowledge distillation.

The 60k training images are split into train and a held-out validation split (model
selection and the calibration temperature); the 10k test set is only used by
``evaluate.py``. The checkpoint holds everything ``export.py`` needs to write the card.
"""

from __future__ import annotations

import argparse
import copy
import math
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipelines import mnist  # noqa: E402
from pipelines.augment import AugmentConfig, augment  # noqa: E402
from pipelines.mnist import load_extra  # noqa: E402
from pipelines.model import ARCHITECTURE, NETWORKS, TEACHER_ARCHITECTURE, load_network  # noqa: E402
from pipelines.pairs import touching_pairs  # noqa: E402
from postread.errors import DataError  # noqa: E402

# Pixel scaling contract, written into the model card by export.py: x = (p/255 - mean) / std.
MEAN, STD = 0.1307, 0.3081
PAIR_MAX_P = 0.3
"""How sure of one label a touching pair may be taught to be (``--pairs-share``)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mnist", type=Path, default=mnist.default_dir(),
                        help="folder with the four MNIST .gz files (env POSTREAD_MNIST_DIR)")
    parser.add_argument("--download", action="store_true",
                        help="fetch missing MNIST files into --mnist first (md5-verified)")
    parser.add_argument("--extra", type=Path, action="append", default=[],
                        help="folder of reviewed 28x28 digits with labels.csv (repeatable)")
    parser.add_argument("--extra-share", type=float, default=0.05,
                        help="share of each epoch drawn from --extra folders (oversampled)")
    parser.add_argument("--pairs-share", type=float, default=0.0,
                        help="share added to each batch of two training digits run together, "
                             "taught as no digit (pipelines/pairs.py)")
    parser.add_argument("--init", type=Path, help="start from this checkpoint (fine-tuning)")
    parser.add_argument("--teacher-net", action="store_true",
                        help="train the larger TeacherNet instead of the shipped DigitNet")
    parser.add_argument("--teacher", type=Path, action="append", default=[],
                        help="a TeacherNet checkpoint to distil from (repeatable; averaged)")
    parser.add_argument("--distill-temperature", type=float, default=2.0,
                        help="softening of teacher and student answers in the distillation loss")
    parser.add_argument("--distill-weight", type=float, default=0.5,
                        help="share of the loss that is matching the teachers (rest: labels)")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    parser.add_argument("--val-size", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1,
                        help="draws the validation split (and, unless --model-seed, the rest)")
    parser.add_argument("--model-seed", type=int,
                        help="initial weights, batch order and augmentation (default: --seed)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="torch device to train on (default: cuda when there is one)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    parser.add_argument("--out", type=Path, default=Path("runs/digits.pt"))
    parser.add_argument("--dry-run", action="store_true",
                        help="train 3 batches of 1 epoch on 2,000 images, validate on 1,000 "
                             "(smoke test)")
    return parser.parse_args(argv)


def to_input(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 N x 28 x 28 -> float N x 1 x 28 x 28 in [0, 1] (scaling comes after augmentation)."""
    tensor = torch.as_tensor(images).float().div_(255.0)
    return tensor.unsqueeze(1)


def normalise(batch: torch.Tensor) -> torch.Tensor:
    """[0, 1] pixels -> the model's input scale."""
    return (batch - MEAN) / STD


@torch.no_grad()
def logits_of(model: torch.nn.Module, images: np.ndarray, batch: int = 1000) -> torch.Tensor:
    """Evaluation-mode logits (on the CPU) for uint8 images, run on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([model(normalise(to_input(images[i:i + batch]).to(device))).cpu()
                      for i in range(0, len(images), batch)])


class WeightAverage:
    """An exponential moving average of a model's weights and buffers.

    It generalises better than the last step. The decay is 0.999, warmed up so that the
    random initial weights fade out quickly.

    The step count lives in Python: torch's AveragedModel read its count off the device
    for every tensor, a GPU sync each. Five trainings sharing an H100 took 30 s an epoch
    with it and 17 s with this.
    """

    def __init__(self, model: torch.nn.Module):
        self.module = copy.deepcopy(model)
        self.count = 1

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Fold the model's current weights into the average."""
        decay = min(0.999, (1.0 + self.count) / (10.0 + self.count))
        for average, current in zip(self.module.state_dict().values(),
                                    model.state_dict().values(), strict=True):
            if average.is_floating_point():
                average.lerp_(current, 1.0 - decay)
            else:  # batch norm's step counter
                average.copy_(current)
        self.count += 1


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Temperature scaling: the T minimising validation NLL of softmax(logits / T)."""
    log_t = torch.zeros(1, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200)

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimiser.step(closure)
    return float(log_t.detach().exp())


def split_order(seed: int, count: int = 60000) -> np.ndarray:
    """The training images shuffled by seed: the first ``--val-size`` are validation."""
    return np.random.default_rng(seed).permutation(count)


def validation_indices(seed: int = 1, size: int = 5000) -> np.ndarray:
    """Which of the 60k training images form the held-out validation split."""
    return split_order(seed)[:size]


def training_set(args: argparse.Namespace) -> tuple[np.ndarray, ...]:
    """Train and validation images/labels, with any --extra digits oversampled into train."""
    images, labels = mnist.load_split(args.mnist, "train")
    order = split_order(args.seed, len(images))
    val_idx, train_idx = order[:args.val_size], order[args.val_size:]
    train_x, train_y = images[train_idx], labels[train_idx]
    val_x, val_y = images[val_idx], labels[val_idx]
    if args.dry_run:
        train_x, train_y = train_x[:2000], train_y[:2000]
        val_x, val_y = val_x[:1000], val_y[:1000]
    for folder in args.extra:
        extra_x, extra_y = load_extra(folder)
        repeats = max(1, round(args.extra_share * len(train_x) / len(extra_x)))
        print(f"extra: {len(extra_x)} digits from {folder}, repeated x{repeats}", file=sys.stderr)
        train_x = np.concatenate([train_x, np.repeat(extra_x, repeats, axis=0)])
        train_y = np.concatenate([train_y, np.repeat(extra_y, repeats)])
    return train_x, train_y, val_x, val_y


def validation_split(args: argparse.Namespace) -> str:
    """The recipe's name for the held-out split: the split is drawn by ``--seed``."""
    return f"{args.val_size} of the 60k training images, seed {args.seed}"


def _check_unseen_validation(checkpoint: dict, source: str, args: argparse.Namespace) -> None:
    """Refuse to learn from a checkpoint (``--init``, ``--teacher``) trained on our validation.

    The split is drawn by ``--seed``: a fine-tune with another seed than its starting
    point's validates, and fits its temperature, on images the start was trained on. One
    such model (session 5's, seed 2 from a seed-1 start) came out at T = 0.94, over-sure;
    refitted on an unseen split it was 1.11. A teacher would leak those labels the same way.
    """
    theirs = checkpoint.get("recipe", {}).get("validation_split")
    if theirs is not None and theirs != validation_split(args):
        raise DataError(f"{source} held out {theirs}; this run would hold out "
                        f"{validation_split(args)}, images it was trained on (use its seed)")


def load_teachers(args: argparse.Namespace, device: torch.device) -> list[torch.nn.Module]:
    """The ``--teacher`` networks, checked and in evaluation mode."""
    teachers = []
    for path in args.teacher:
        checkpoint = torch.load(path, weights_only=False, map_location="cpu")
        _check_unseen_validation(checkpoint, f"--teacher {path}", args)
        teachers.append(load_network(checkpoint, device).eval())
    return teachers


def distillation_loss(logits: torch.Tensor, teachers: list[torch.nn.Module],
                      inputs: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL divergence from the teachers' averaged softened answers to the student's.

    Scaled by temperature squared so its gradients keep their size whatever the softening
    (Hinton et al., 2015).
    """
    with torch.no_grad():
        target = torch.stack([F.softmax(t(inputs) / temperature, dim=1)
                              for t in teachers]).mean(dim=0)
    student = F.log_softmax(logits / temperature, dim=1)
    return F.kl_div(student, target, reduction="batchmean") * temperature ** 2


def train(args: argparse.Namespace, command: str = "") -> dict:
    """Run training (``command`` is recorded in the recipe); returns the saved checkpoint."""
    model_seed = args.seed if args.model_seed is None else args.model_seed
    torch.manual_seed(model_seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.mnist is None:
        raise DataError("no MNIST folder: pass --mnist DIR or set POSTREAD_MNIST_DIR")
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = device.type == "cuda"
    architecture = TEACHER_ARCHITECTURE if args.teacher_net else ARCHITECTURE
    start = torch.load(args.init, weights_only=False, map_location="cpu") if args.init else None
    if start is not None:
        _check_unseen_validation(start, f"--init {args.init}", args)
        if start["architecture"] != architecture:
            raise DataError(f"--init {args.init} is a {start['architecture']}, not a "
                            f"{architecture}")
    teachers = load_teachers(args, device)
    if args.download:
        mnist.download(args.mnist)
    train_x, train_y, val_x, val_y = training_set(args)
    gen = torch.Generator(device=device).manual_seed(model_seed)

    model = (load_network(start, device) if start is not None
             else NETWORKS[architecture]().to(device))
    ema = WeightAverage(model)
    steps_per_epoch = max(1, len(train_x) // args.batch_size)
    if args.dry_run:
        args.epochs, steps_per_epoch = 1, 3
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=steps_per_epoch)
    train_x_t = torch.from_numpy(train_x).to(device)
    train_y_t = torch.from_numpy(train_y).long().to(device)
    val_y_t = torch.from_numpy(val_y).long()

    history, best = [], None
    started = time.perf_counter()
    pair_rng = np.random.default_rng(args.seed)
    pairs_per_batch = round(args.pairs_share * args.batch_size)
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(len(train_x_t), generator=gen, device=device)
        total_loss = torch.zeros((), device=device)
        for step in range(steps_per_epoch):
            idx = order[step * args.batch_size:(step + 1) * args.batch_size]
            batch = to_input(train_x_t[idx])
            if pairs_per_batch:
                pairs = to_input(touching_pairs(train_x, pairs_per_batch, pair_rng))
                batch = torch.cat([batch, pairs.to(device)])
            inputs = normalise(augment(batch, gen))
            logits = model(inputs)
            loss = F.cross_entropy(logits[:len(idx)], train_y_t[idx])
            if teachers:
                loss = (1 - args.distill_weight) * loss + args.distill_weight * \
                    distillation_loss(logits, teachers, inputs, args.distill_temperature)
            if pairs_per_batch:
                # No digit: a pair's likeliest label is pushed below PAIR_MAX_P (pushing it
                # all the way to a uniform answer cost single digits 0.14 points on MNIST).
                surest = F.log_softmax(logits[len(idx):], dim=1).max(dim=1).values
                loss = loss + F.relu(surest - math.log(PAIR_MAX_P)).mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            ema.update(model)
            total_loss += loss.detach()
            if step % 100 == 0:
                print(f"epoch {epoch} step {step}/{steps_per_epoch} "
                      f"loss {float(loss.detach()):.4f}", file=sys.stderr, flush=True)
        total_loss = float(total_loss)
        val_acc = float((logits_of(ema.module, val_x).argmax(1) == val_y_t).float().mean())
        raw_acc = float((logits_of(model, val_x).argmax(1) == val_y_t).float().mean())
        history.append({"epoch": epoch, "loss": total_loss / steps_per_epoch,
                        "val_accuracy": val_acc, "val_accuracy_raw": raw_acc})
        print(f"epoch {epoch}: loss {total_loss / steps_per_epoch:.4f}  val acc (EMA) "
              f"{val_acc:.4%}  (raw {raw_acc:.4%})  {time.perf_counter() - started:.0f}s",
              flush=True)
        if best is None or val_acc >= best[0]:
            best = (val_acc, {k: v.clone() for k, v in ema.module.state_dict().items()})

    model.load_state_dict(best[1])
    val_logits = logits_of(model, val_x)
    temperature = fit_temperature(val_logits, val_y_t)
    print(f"best val accuracy {best[0]:.4%}; calibration temperature {temperature:.4f}")
    checkpoint = {
        "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
        "architecture": architecture,
        "mean": MEAN,
        "std": STD,
        "temperature": temperature,
        "val_accuracy": best[0],
        "history": history,
        "recipe": {
            "command": command,
            "seed": args.seed,
            "model_seed": model_seed,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "peak_lr": args.lr,
            "optimizer": "AdamW wd 5e-4, OneCycleLR, EMA 0.999 with warm-up",
            "augmentation": repr(AugmentConfig()),
            "validation_split": validation_split(args),
            "extra": [str(p) for p in args.extra],
            "pairs_share": args.pairs_share,
            "teachers": [str(p) for p in args.teacher],
            "distillation": ({"temperature": args.distill_temperature,
                              "weight": args.distill_weight} if args.teacher else None),
            "device": str(device),
            "torch_version": torch.__version__,
            "python": platform.python_version(),
            "threads": torch.get_num_threads(),
            "wall_seconds": round(time.perf_counter() - started, 1),
            "data_md5": mnist.data_md5s(args.mnist),
            "dry_run": args.dry_run,
        },
    }
    return save(checkpoint, args.out)


def save(checkpoint: dict, out: Path) -> dict:
    """Write a checkpoint (its folder made as needed) and say where."""
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, out)
    print(f"saved {out}")
    return checkpoint


def run(train_with: Callable[..., dict], parse: Callable[[list[str]], argparse.Namespace],
        script: str, argv: list[str] | None) -> int:
    """A training script's entry point: the command recorded, one clear line on a data error."""
    try:
        argv = sys.argv[1:] if argv is None else argv
        train_with(parse(argv), command=" ".join([script, *argv]))
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    return run(train, parse_args, "train.py", argv)


if __name__ == "__main__":
    sys.exit(main())
