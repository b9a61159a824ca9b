#!/usr/bin/env python3
"""How far float32 itself strays from float64 on the models where the gradient check lands at the
floor (docs/results.md, *Every torchvision classifier*): PyTorch's float32 input gradient with the model
in channels-last memory format, with one image at a time, and float64's own gradient at the input
scaled by 1 +- 2^-24 per pixel (a float32 rounding of it), each as max |g - fp64| / max |fp64|.
Needs the references of scripts/gradcheck_torchvision.py.

  /usr/bin/python3 scripts/gradcheck_floor.py vgg11_bn vgg13 vgg16 vgg19_bn resnext101_64x4d
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gradcheck_torchvision import OUT, build  # noqa: E402


def relative(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


def main():
    for name in sys.argv[1:]:
        x = np.load(os.path.join(OUT, f"{name}.input.npy"))
        seed = np.load(os.path.join(OUT, f"{name}.seed.npy"))
        g64 = np.load(os.path.join(OUT, f"{name}.grad64.npy"))
        g32 = np.load(os.path.join(OUT, f"{name}.grad32.npy"))
        size = x.shape[-1]
        found = {"fp32 default": relative(g32, g64)}
        model = build(name, size).to(memory_format=torch.channels_last)
        xt = torch.from_numpy(x).contiguous(memory_format=torch.channels_last).requires_grad_(True)
        (model(xt) * torch.from_numpy(seed)).sum().backward()
        found["fp32 channels-last"] = relative(xt.grad.numpy(), g64)
        model = build(name, size)
        parts = []
        for i in range(x.shape[0]):
            xi = torch.from_numpy(x[i : i + 1]).requires_grad_(True)
            (model(xi) * torch.from_numpy(seed[i : i + 1])).sum().backward()
            parts.append(xi.grad.numpy())
        found["fp32 one image at a time"] = relative(np.concatenate(parts), g64)
        model = build(name, size).double()
        signs = np.random.default_rng(5).choice([-1, 1], x.shape)
        xp = torch.from_numpy(x.astype(np.float64) * (1 + signs * 2.0**-24)).requires_grad_(True)
        (model(xp) * torch.from_numpy(seed).double()).sum().backward()
        found["fp64 at the rounded input"] = relative(xp.grad.numpy(), g64)
        print(name, {k: f"{v:.1e}" for k, v in found.items()}, flush=True)


if __name__ == "__main__":
    main()
