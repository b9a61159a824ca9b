#!/usr/bin/env python3
"""Held-out Fashion-MNIST classifiers: architectures the project does not ship, trained to judge
the library's defaults on models that no setting was tuned on. Nothing here is committed: the
models go to models/cache/heldout/ with no model card (so `nfp fit` sees them as a new user's
models would be seen).

    /usr/bin/python3 models/train_heldout.py --arch all --seed 0

Architectures:
  vggbn   VGG-style with BatchNorm: 3 blocks of 2 x (conv3x3 + BN + ReLU) + maxpool (32, 64, 128
          channels), global average pooling, Linear(128, 10). BN folds into the convolutions on export.
  mobile  MobileNet-style: a conv stem, 4 depthwise-separable blocks with BN and SiLU (exported as
          Sigmoid * x), stride-2 depthwise convolutions, average pooling, Linear(96, 10).
  vit7    a vision transformer with 7x7 patches (16 tokens), dim 64, 4 pre-norm blocks of 4 heads, MLP 256:
          the committed ViT's code with another shape, for the 'wide' taps' patch embedding (docs/results.md).
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


class VggBn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm = architectures.Normalize()
        layers: list[nn.Module] = []
        channels = 1
        for width in (32, 64, 128):
            for _ in range(2):
                layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
                channels = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.norm(x)).mean(dim=(2, 3)))


def separable(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.SiLU(),
        nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.SiLU(),
    )


class Mobile(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm = architectures.Normalize()
        self.stem = nn.Sequential(nn.Conv2d(1, 24, 3, padding=1, bias=False), nn.BatchNorm2d(24), nn.SiLU())
        self.blocks = nn.Sequential(separable(24, 32, 2), separable(32, 48, 1), separable(48, 64, 2), separable(64, 96, 1))
        self.pool = nn.AvgPool2d(7)
        self.head = nn.Linear(96, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.blocks(self.stem(self.norm(x)))), 1))


def vit7() -> nn.Module:
    return architectures.FashionViT(patch=7, dim=64, depth=4, heads=4, mlp_ratio=4.0)


ARCHS = {"vggbn": (VggBn, 6, 2e-3), "mobile": (Mobile, 8, 3e-3), "vit7": (vit7, 6, 1e-3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", choices=[*ARCHS, "all"], default="all")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "cache" / "heldout")
    p.add_argument("--data", type=Path, default=Path(DEFAULT_DATA))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    (xtr, ytr), (xte, yte) = load_split(args.data, "train"), load_split(args.data, "t10k")
    for name in ARCHS if args.arch == "all" else [args.arch]:
        build, epochs, lr = ARCHS[name]
        seed_everything(args.seed)
        model = build()
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        steps = epochs * ((xtr.shape[0] + 127) // 128)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
        gen = torch.Generator().manual_seed(args.seed)
        t0 = time.time()
        for epoch in range(epochs):
            model.train()
            perm = torch.randperm(xtr.shape[0], generator=gen)
            for i in range(0, xtr.shape[0], 128):
                idx = perm[i: i + 128]
                loss = nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
            print(f"[{name}] epoch {epoch + 1}/{epochs}: test_acc {evaluate(model, xte, yte):.4f} ({time.time() - t0:.0f}s)", flush=True)
        model.eval()
        path = args.out / f"fmnist-{name}.onnx"
        export_onnx(model, path)
        torch.save(model.state_dict(), args.out / f"fmnist-{name}.pt")
        print(f"[{name}] test_acc {evaluate(model, xte, yte):.4f} -> {path}", flush=True)


if __name__ == "__main__":
    main()
