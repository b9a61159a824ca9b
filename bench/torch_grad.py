#!/usr/bin/env python3
"""PyTorch CPU reference for bench/grad.ts: forward alone and forward + input gradient (autograd of
sum(seed * logits) w.r.t. the images) of a torchvision architecture with random weights.

    /usr/bin/python3 bench/torch_grad.py --arch resnet50 --batch 8 --size 224 --reps 3

Prints one JSON object: best-of-reps seconds for forward and for forward + backward, and threads.
"""
import argparse
import json
import time

import torch
import torchvision


def best(reps, fn):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = getattr(torchvision.models, a.arch)(weights=None).eval()
    for p in net.parameters():
        p.requires_grad_(False)  # input gradients only, as the ONNX transform computes
    x = torch.rand(a.batch, 3, a.size, a.size)
    seed = torch.randn(a.batch, 1000)

    def forward():
        with torch.no_grad():
            net(x)

    def gradient():
        xg = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad((net(xg) * seed).sum(), xg)
        return g

    forward()
    gradient()  # warm-up
    print(json.dumps({
        "torch": torch.__version__, "threads": torch.get_num_threads(), "arch": a.arch, "batch": a.batch, "size": a.size,
        "forward_s": best(a.reps, forward), "gradient_s": best(a.reps, gradient),
    }))


if __name__ == "__main__":
    main()
