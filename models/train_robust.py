#!/usr/bin/env python3
"""An adversarially trained copy of a committed model, for docs/security.md: the detector in front of a
model that PGD at eps 0.1 mostly cannot flip. Madry et al. 2018 training (every batch replaced by its
L-inf PGD examples from a random start), the committed architecture (architectures.build(--arch), so the
model card's taps exist by the same names). Nothing here is committed: the model goes to
models/cache/robust/fmnist-<arch>-pgd.onnx (the CNN: about 5 minutes per epoch on 2 cores).

    /usr/bin/python3 models/train_robust.py --epochs 3 --seed 0
    /usr/bin/python3 models/train_robust.py --arch resnet --epochs 3 --seed 0

Input [N, 1, 28, 28] in [0, 1] with the normalization inside the graph, output logits [N, 10], opset 17.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import architectures  # noqa: E402
from train_fashion import DEFAULT_DATA, evaluate, export_onnx, load_split, seed_everything  # noqa: E402


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int, alpha: float,
        gen: torch.Generator) -> torch.Tensor:
    """L-inf PGD on the cross-entropy from a uniform random start in the eps ball, clipped to [0, 1]."""
    delta = (torch.rand(x.shape, generator=gen) * 2 - 1) * eps
    adv = (x + delta).clamp(0, 1)
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = nn.functional.cross_entropy(model(adv), y)
        (grad,) = torch.autograd.grad(loss, adv)
        adv = adv.detach() + alpha * grad.sign()
        adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1)
    return adv.detach()


def robust_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int,
                    gen: torch.Generator) -> float:
    model.eval()
    correct = 0
    for i in range(0, x.shape[0], 500):
        adv = pgd(model, x[i: i + 500], y[i: i + 500], eps, steps, 2.5 * eps / steps, gen)
        with torch.no_grad():
            correct += (model(adv).argmax(1) == y[i: i + 500]).sum().item()
    return correct / x.shape[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", choices=sorted(architectures.ARCHITECTURES), default="cnn")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--eps", type=float, default=0.1)
    p.add_argument("--steps", type=int, default=7)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "cache" / "robust")
    p.add_argument("--data", type=Path, default=Path(DEFAULT_DATA))
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    (xtr, ytr), (xte, yte) = load_split(args.data, "train"), load_split(args.data, "t10k")
    seed_everything(args.seed)
    model = architectures.build(args.arch)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    batch = 128
    steps = args.epochs * ((xtr.shape[0] + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps)
    gen = torch.Generator().manual_seed(args.seed)
    alpha = 2.5 * args.eps / args.steps
    t0 = time.time()
    for epoch in range(args.epochs):
        perm = torch.randperm(xtr.shape[0], generator=gen)
        for i in range(0, xtr.shape[0], batch):
            idx = perm[i: i + batch]
            model.eval()  # the attack sees the model as deployed (no dropout)
            adv = pgd(model, xtr[idx], ytr[idx], args.eps, args.steps, alpha, gen)
            model.train()
            loss = nn.functional.cross_entropy(model(adv), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if (i // batch) % 100 == 0:
                print(f"epoch {epoch + 1} step {i // batch}: loss {loss.item():.3f} ({time.time() - t0:.0f}s)", flush=True)
        print(f"epoch {epoch + 1}/{args.epochs}: clean test acc {evaluate(model, xte, yte):.4f} "
              f"({time.time() - t0:.0f}s)", flush=True)
    model.eval()
    clean = evaluate(model, xte, yte)
    robust = robust_accuracy(model, xte[:1000], yte[:1000], args.eps, 20, torch.Generator().manual_seed(1))
    path = args.out / f"fmnist-{args.arch}-pgd.onnx"
    # The weights and the figures first: the export needs the onnx package (python3-onnx) to tidy the graph.
    torch.save(model.state_dict(), args.out / f"fmnist-{args.arch}-pgd.pt")
    print(f"clean test acc {clean:.4f}, PGD-20 (eps {args.eps}) acc on the first 1,000 test images {robust:.4f}",
          flush=True)
    export_onnx(model, path)
    print(f"-> {path}", flush=True)


if __name__ == "__main__":
    main()
