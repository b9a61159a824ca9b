#!/usr/bin/env python3
"""Reference input gradients of torchvision architectures (random weights) for the check in
scripts/gradcheck-torchvision.ts, which compares the library's ONNX-Runtime gradients against them.

  /usr/bin/python3 scripts/gradcheck_torchvision.py resnet18 mobilenet_v2 ... [--opsets 11,13,17]
  /usr/bin/python3 scripts/gradcheck_torchvision.py --all            # every classification model

For each name: builds the model (weights=None after torch.manual_seed(0), eval mode), finds the
smallest input size it accepts among SIZES (a PyTorch forward and an ONNX export at every asked opset
must both work; --size forces one), exports it at each opset to models/cache/gradcheck/<name>.op<k>.onnx,
draws a fixed random input [2,3,size,size] in [0,1] and logit seed [2,classes], and saves PyTorch's
input gradient of sum(seed * logits) computed in float32 AND in float64 (the same model .double()),
and in float32 once more in channels-last memory format (other convolution kernels). Deep
random-weight networks amplify float32 rounding (PyTorch's own fp32 ResNet-50 gradient is 1.6% off
its fp64 one), so float64 is the oracle, and the two float32 gradients show how far float32 itself
strays from it. <name>.json records the size, the op types of each export
and any export error. Not part of `npm test`: it needs Debian's torch and minutes per model.
"""
import argparse
import json
import os
import sys
import time
import traceback

import numpy as np
import torch
import torchvision

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(ROOT, "models"))
from onnx_utils import export_classifier  # noqa: E402

OUT = os.path.join(ROOT, "models", "cache", "gradcheck")
SIZES = [32, 64, 96, 128, 160, 192, 224, 256, 299]
# Models whose weights alone exceed protobuf's 2 GB limit: ONNX keeps them in external data files,
# which a model loaded from bytes (as this library does) cannot reach.
TOO_BIG = {"vit_h_14", "regnet_y_128gf"}


def register_exporter_patches():
    """torch 1.13 cannot export aten::zero (from SwinV2's qkv_bias[length:2 * length].zero_()): write it as
    x * 0, which constant folding turns into the zeros it is (the bias is a constant)."""
    from torch.onnx import register_custom_op_symbolic

    register_custom_op_symbolic("aten::zero", lambda g, x: g.op("Mul", x, g.op("Constant", value_t=torch.tensor(0.0))),
                                9)


def classification_models():
    models = torchvision.models
    return sorted(models.list_models(module=models))


def build(name, size):
    torch.manual_seed(0)
    ctor = getattr(torchvision.models, name)
    kwargs = {"weights": None}
    if name.startswith("vit_"):
        kwargs["image_size"] = size  # torchvision's ViT has a fixed input size
    if name in ("googlenet", "inception_v3"):
        kwargs["aux_logits"] = False
        kwargs["init_weights"] = True
    model = ctor(**kwargs).eval()
    # torchvision zero-initializes some classification heads (ViT): every input gradient through
    # them is exactly 0, which checks nothing; give those random weights.
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and not module.weight.detach().any():
            torch.nn.init.normal_(module.weight, std=0.02)
    return model


def op_types(path):
    import onnx

    m = onnx.load(path, load_external_data=False)
    return sorted({n.op_type for n in m.graph.node})


def try_size(name, size, opsets):
    """The model at this size and its exports, or the reason it does not work."""
    if name.startswith("vit_") and size % int(name.rsplit("_", 1)[1]):
        return None, "size not a multiple of the patch"
    model = build(name, size)
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad():
            model(x)
    except Exception as e:  # noqa: BLE001  (too small for the architecture)
        return None, f"forward: {type(e).__name__}: {str(e)[:200]}"
    exports = {}
    for opset in opsets:
        path = os.path.join(OUT, f"{name}.op{opset}.onnx")
        try:
            # No torch.no_grad(): under it nn.MultiheadAttention takes a fused path torch 1.13 cannot export.
            export_classifier(model, x, path, opset=opset)
            exports[opset] = {"ops": op_types(path)}
        except Exception as e:  # noqa: BLE001
            message = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
            exports[opset] = {"error": f"{type(e).__name__}: {message}"}
            if os.path.exists(path):
                os.remove(path)
    if all("error" in e for e in exports.values()):
        return None, "export: " + "; ".join(f"opset {k}: {v['error']}" for k, v in exports.items())
    return (model, exports), None


def float32_channels_last(model, x, seed, name):
    """PyTorch's float32 gradient again, with the model and input in channels-last memory format (other
    convolution kernels, other rounding): with grad32, the spread of PyTorch's own float32 around float64."""
    m = model.float().to(memory_format=torch.channels_last)
    xt = torch.from_numpy(x).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    (m(xt) * torch.from_numpy(seed)).sum().backward()
    np.save(os.path.join(OUT, f"{name}.grad32cl.npy"), np.ascontiguousarray(xt.grad.numpy().astype(np.float32)))
    model.to(memory_format=torch.contiguous_format)


def add_channels_last(names):
    """--channels-last-only: the channels-last float32 reference for models already checked."""
    for name in names:
        meta_path = os.path.join(OUT, f"{name}.json")
        if not os.path.exists(meta_path) or "size" not in json.load(open(meta_path)):
            continue
        x = np.load(os.path.join(OUT, f"{name}.input.npy"))
        seed = np.load(os.path.join(OUT, f"{name}.seed.npy"))
        float32_channels_last(build(name, x.shape[-1]), x, seed, name)
        print(name, "grad32cl", file=sys.stderr, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*")
    parser.add_argument("--all", action="store_true", help="every classification model of torchvision")
    parser.add_argument("--opsets", default="11,13,17")
    parser.add_argument("--size", type=int, help="this input size instead of the smallest accepted")
    parser.add_argument("--skip-done", action="store_true", help="skip names whose <name>.json exists")
    parser.add_argument("--channels-last-only", action="store_true",
                        help="only add the channels-last float32 reference to models already exported")
    args = parser.parse_args()
    opsets = [int(v) for v in args.opsets.split(",")]
    register_exporter_patches()
    names = classification_models() if args.all else args.names
    if args.channels_last_only:
        add_channels_last(names)
        return
    os.makedirs(OUT, exist_ok=True)
    for name in names:
        meta_path = os.path.join(OUT, f"{name}.json")
        if args.skip_done and os.path.exists(meta_path):
            continue
        meta = {"torch": torch.__version__, "torchvision": torchvision.__version__, "threads": torch.get_num_threads()}
        if name in TOO_BIG:
            meta["error"] = "weights over protobuf's 2 GB limit (ONNX external data), not loadable from bytes"
            json.dump(meta, open(meta_path, "w"), indent=1)
            print(name, meta["error"], file=sys.stderr, flush=True)
            continue
        t0 = time.time()
        tried = {}
        found = None
        for size in [args.size] if args.size else SIZES:
            try:
                found, why = try_size(name, size, opsets)
            except Exception as e:  # noqa: BLE001
                found, why = None, f"{type(e).__name__}: {str(e)[:200]}"
                traceback.print_exc()
            if found is not None:
                meta["size"] = size
                break
            tried[size] = why
        meta["rejected_sizes"] = tried
        if found is None:
            meta["error"] = "no size works"
            json.dump(meta, open(meta_path, "w"), indent=1)
            print(name, "no size works", tried, file=sys.stderr, flush=True)
            continue
        model, exports = found
        meta["exports"] = exports
        meta["export_s"] = round(time.time() - t0, 1)
        size = meta["size"]
        x = np.random.default_rng(0).random((2, 3, size, size), dtype=np.float32)
        classes = model(torch.from_numpy(x[:1])).shape[1]
        seed = np.random.default_rng(1).standard_normal((2, classes)).astype(np.float32)
        timings = {}
        float32_channels_last(model, x, seed, name)
        for dtype, tag in ((torch.float32, "grad32"), (torch.float64, "grad64")):
            m = model.to(dtype)
            xt = torch.from_numpy(x).to(dtype).requires_grad_(True)
            t0 = time.time()
            (m(xt) * torch.from_numpy(seed).to(dtype)).sum().backward()
            timings[tag] = time.time() - t0
            grad = xt.grad.numpy().astype(np.float64 if tag == "grad64" else np.float32)
            np.save(os.path.join(OUT, f"{name}.{tag}.npy"), grad)
        np.save(os.path.join(OUT, f"{name}.input.npy"), x)
        np.save(os.path.join(OUT, f"{name}.seed.npy"), seed)
        meta["torch_fwd_grad_s"] = timings
        json.dump(meta, open(meta_path, "w"), indent=1)
        print(name, size, {k: (v.get("error") or len(v["ops"])) for k, v in exports.items()},
              {k: round(v, 3) for k, v in timings.items()}, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
