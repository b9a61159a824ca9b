#!/usr/bin/env python3
"""Reference input gradients of torchvision architectures (random weights) for the check in
scripts/gradcheck-torchvision.ts, which compares the library's ONNX-Runtime gradients against them.

  /usr/bin/python3 scripts/gradcheck_torchvision.py resnet18 mobilenet_v2 ... [--size 224]

For each name: exports the model (weights=None after torch.manual_seed(0), eval mode, opset 17) to
models/cache/gradcheck/<name>.onnx, draws a fixed random input [2,3,size,size] in [0,1] and logit
seed [2,1000], and saves PyTorch's input gradient of sum(seed * logits) computed in float32 AND in
float64 (the same model .double()). Deep random-weight networks amplify float32 rounding (PyTorch's
own fp32 ResNet-50 gradient is 1.6% off its fp64 one), so float64 is the oracle. Not part of
`npm test`: it needs Debian's torch and minutes per model.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torchvision

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(ROOT, "models"))
from onnx_utils import export_classifier  # noqa: E402

OUT = os.path.join(ROOT, "models", "cache", "gradcheck")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="+")
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    for name in args.names:
        torch.manual_seed(0)
        model = getattr(torchvision.models, name)(weights=None).eval()
        # torchvision zero-initializes some classification heads (ViT): every input gradient
        # through them is exactly 0, which checks nothing; give those random weights.
        for module in model.modules():
            if isinstance(module, torch.nn.Linear) and not module.weight.detach().any():
                torch.nn.init.normal_(module.weight, std=0.02)
        x = np.random.default_rng(0).random((2, 3, args.size, args.size), dtype=np.float32)
        seed = np.random.default_rng(1).standard_normal((2, 1000)).astype(np.float32)
        path = os.path.join(OUT, f"{name}.onnx")
        export_classifier(model, torch.from_numpy(x[:1]), path)
        timings = {}
        for dtype, tag in ((torch.float32, "grad32"), (torch.float64, "grad64")):
            m = model.to(dtype)
            xt = torch.from_numpy(x).to(dtype).requires_grad_(True)
            t0 = time.time()
            (m(xt) * torch.from_numpy(seed).to(dtype)).sum().backward()
            timings[tag] = time.time() - t0
            np.save(os.path.join(OUT, f"{name}.{tag}.npy"), xt.grad.numpy().astype(np.float64 if tag == "grad64" else np.float32))
        np.save(os.path.join(OUT, f"{name}.input.npy"), x)
        np.save(os.path.join(OUT, f"{name}.seed.npy"), seed)
        with open(os.path.join(OUT, f"{name}.json"), "w") as f:
            json.dump({"size": args.size, "torch": torch.__version__, "threads": torch.get_num_threads(),
                       "torch_fwd_grad_s": timings}, f)
        print(name, {k: round(v, 3) for k, v in timings.items()}, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
