#!/usr/bin/env python3
"""Export torchvision architectures with RANDOM weights to ONNX.

These graphs are for benchmarking and for testing the ONNX plumbing (layer
taps, batching, big models); they are untrained and their outputs mean
nothing. Nothing is downloaded: every model is built with ``weights=None``
after seeding torch.

    /usr/bin/python3 models/export_torchvision.py                      # all, 224x224
    /usr/bin/python3 models/export_torchvision.py --arch resnet18 --size 64

Output: <out>/<name>-<size>.onnx (default out: models/cache/, git-ignored).
Graph: input "input" [batch, 3, size, size] float32 in [0, 1]; the ImageNet
normalization (mean 0.485/0.456/0.406, std 0.229/0.224/0.225) is the first
op of the graph (disable with --no-normalize); output "logits" [batch, 1000];
dynamic batch axis; opset 17 (--opset to change); eval mode (BatchNorm folded into the convs),
constant folding on. Node names follow the module paths, e.g.
/net/layer4/layer4.1/relu_1/Relu.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# Single-threaded BLAS/OpenMP unless the caller says otherwise (shared machine).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import onnx  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_utils import OPSET, export_classifier  # noqa: E402

ARCHS = [
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "vgg11",
    "efficientnet_b0",
    "densenet121",
    "convnext_tiny",
    "vit_b_16",
]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalized(nn.Module):
    """(x - mean) / std followed by the wrapped network."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def build(name: str, size: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    ctor = getattr(torchvision.models, name)
    if name.startswith("vit_"):
        patch = int(name.rsplit("_", 1)[1])
        if size % patch:
            raise ValueError(f"{name} needs --size divisible by {patch} (got {size}); 224 is the standard size")
        # torchvision's ViT has a fixed input size; with random weights any multiple of the patch works.
        return ctor(weights=None, image_size=size)
    return ctor(weights=None)


def export(name: str, size: int, seed: int, out: Path, normalize: bool, opset: int = OPSET) -> Path:
    net = build(name, size, seed)
    model = Normalized(net) if normalize else net
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    path = out / (f"{name}-{size}.onnx" if opset == OPSET else f"{name}-{size}.op{opset}.onnx")
    dummy = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))
    t0 = time.time()
    # No torch.no_grad() here: under no_grad, nn.MultiheadAttention (vit_b_16)
    # takes its fused fast path (aten::_native_multi_head_attention), which
    # torch 1.13 cannot export to ONNX.
    export_classifier(model, dummy, path, opset=opset)
    onnx.checker.check_model(str(path))  # path form also works for files > 2 GB
    print(
        f"{name}: {params / 1e6:.2f}M params -> {path} "
        f"({path.stat().st_size / 2**20:.1f} MiB, {time.time() - t0:.1f}s)",
        flush=True,
    )
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", nargs="+", choices=ARCHS + ["all"], default=["all"], metavar="NAME",
                   help="architectures to export: " + ", ".join(ARCHS) + " or all (default: all)")
    p.add_argument("--size", type=int, default=224, help="input height/width (default 224)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "cache")
    p.add_argument("--no-normalize", dest="normalize", action="store_false",
                   help="do not put the ImageNet normalization in the graph")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--opset", type=int, default=OPSET,
                   help=f"ONNX opset (default {OPSET}); other opsets are written as <name>-<size>.op<opset>.onnx")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    names = ARCHS if "all" in args.arch else list(dict.fromkeys(args.arch))
    args.out.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in names:
        try:
            export(name, args.size, args.seed, args.out, args.normalize, args.opset)
        except Exception as e:  # keep going with the others
            print(f"{name}: FAILED: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            failed.append(name)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
