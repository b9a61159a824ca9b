#!/usr/bin/env python3
"""Writes PyTorch reference activations for the committed Fashion-MNIST models, so the tests can
check that the TypeScript runtime's taps equal PyTorch forward-hook activations.

Run with Debian's Python (torch, onnx): /usr/bin/python3 scripts/gen_activation_fixtures.py
Needs the state dicts in models/cache/ written by models/train_fashion.py (the same weights as
the committed ONNX files). For each model writes test/testdata/activations/<model>.npz-like files:
  <model>.input.npy    the first 8 images of the shipped test set, float32 [8,1,28,28] in [0,1]
  <model>.logits.npy   PyTorch logits [8,10]
  <model>.<i>.npy      the i-th tap's activations [8, ...] from a forward hook
  <model>.json         {"taps": [ONNX tensor name per tap], "modules": [PyTorch module per tap]}
Taps: the input of the final Linear (the penultimate features) and, for the CNN and ResNet, the
output of the last convolutional stage, found in the ONNX graph by its node-name prefix.
"""
import gzip
import json
import os
import sys

import numpy as np
import onnx
import torch

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(ROOT, "models"))
import architectures  # noqa: E402

OUT = os.path.join(ROOT, "test", "testdata", "activations")
MODELS = {"fmnist-cnn": ("cnn", "features"), "fmnist-resnet": ("resnet", "layer3"), "fmnist-vit": ("vit", None)}


def test_images(n):
    with gzip.open(os.path.join(ROOT, "data", "fashion-mnist", "t10k-images-idx3-ubyte.gz")) as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16)
    return (raw[: n * 784].reshape(n, 1, 28, 28).astype(np.float32) / 255.0)


def last_node_output(model, prefix):
    outs = [n.output[0] for n in model.graph.node if n.name.startswith(prefix)]
    return outs[-1] if outs else None


def main():
    os.makedirs(OUT, exist_ok=True)
    x = torch.from_numpy(test_images(8))
    for name, (arch, stage) in MODELS.items():
        state = os.path.join(ROOT, "models", "cache", f"{name}.pt")
        if not os.path.exists(state):
            print(f"skip {name}: {state} missing (run models/train_fashion.py)", file=sys.stderr)
            continue
        net = architectures.build(arch)
        net.load_state_dict(torch.load(state, map_location="cpu"))
        net.eval()
        onnx_model = onnx.load(os.path.join(ROOT, "models", f"{name}.onnx"))
        linears = [(n, m) for n, m in net.named_modules() if isinstance(m, torch.nn.Linear) and m.out_features == 10]
        final_name, final = linears[-1]
        captured, taps, modules = [], [], []
        final.register_forward_hook(lambda m, inp, out: captured.append(("penultimate", inp[0].detach().clone())))
        gemm = next(n for n in reversed(onnx_model.graph.node) if n.op_type in ("Gemm", "MatMul"))
        stage_tensor = last_node_output(onnx_model, f"/{stage}/") if stage else None
        if stage_tensor is not None:
            getattr(net, stage).register_forward_hook(lambda m, inp, out: captured.append(("stage", out.detach().clone())))
            taps.append(stage_tensor)
            modules.append(stage)
        taps.append(gemm.input[0])
        modules.append(f"input of {final_name}")
        with torch.no_grad():
            logits = net(x)
        order = {"stage": 0, "penultimate": 1} if stage_tensor is not None else {"penultimate": 0}
        captured.sort(key=lambda kv: order[kv[0]])
        np.save(os.path.join(OUT, f"{name}.input.npy"), x.numpy())
        np.save(os.path.join(OUT, f"{name}.logits.npy"), logits.numpy().astype(np.float32))
        for i, (_, t) in enumerate(captured):
            np.save(os.path.join(OUT, f"{name}.{i}.npy"), t.numpy().astype(np.float32))
        with open(os.path.join(OUT, f"{name}.json"), "w") as f:
            json.dump({"taps": taps, "modules": modules, "torch": torch.__version__}, f, indent=1)
        print(name, taps, [tuple(t.shape) for _, t in captured], file=sys.stderr)


if __name__ == "__main__":
    main()
