#!/usr/bin/env python3
"""Exports the committed fmnist-cnn (its weights read as scripts/torch_attacks.py reads them) the ways
published models come: old opsets, a fixed batch of 1, a channels-last input, probabilities out, for
scripts/export-variants.ts, which checks that each predicts at PyTorch's accuracy and falls to PGD at
PyTorch's success rate. Not part of `npm test` (Debian's torch).

  /usr/bin/python3 scripts/export_variants.py          # -> models/cache/variants/fmnist-cnn.<variant>.onnx

Variants: op7, op9, op11, op13, op17 (NCHW [N, 1, 28, 28], a free batch, logits); op13-b1 (batch fixed at
1, the default of torch.onnx.export without dynamic_axes); op13-nhwc (input [N, 28, 28, 1]); op13-softmax
(probabilities out); op11-nhwc-b1-softmax (all three at once).
"""
import os
import sys

import torch
from torch import nn

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from torch_attacks import load_model  # noqa: E402

OUT = os.path.join(ROOT, "models", "cache", "variants")


class Variant(nn.Module):
    def __init__(self, net, channels_last, probabilities):
        super().__init__()
        self.net = net
        self.channels_last = channels_last
        self.probabilities = probabilities

    def forward(self, x):
        logits = self.net(x.permute(0, 3, 1, 2) if self.channels_last else x)
        return torch.softmax(logits, dim=1) if self.probabilities else logits


VARIANTS = {
    "op7": (7, False, False, False),
    "op9": (9, False, False, False),
    "op11": (11, False, False, False),
    "op13": (13, False, False, False),
    "op17": (17, False, False, False),
    "op13-b1": (13, True, False, False),
    "op13-nhwc": (13, False, True, False),
    "op13-softmax": (13, False, False, True),
    "op11-nhwc-b1-softmax": (11, True, True, True),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    net = load_model("fmnist-cnn")
    for name, (opset, fixed, channels_last, probabilities) in VARIANTS.items():
        model = Variant(net, channels_last, probabilities).eval()
        dummy = torch.rand(1, 28, 28, 1) if channels_last else torch.rand(1, 1, 28, 28)
        path = os.path.join(OUT, f"fmnist-cnn.{name}.onnx")
        torch.onnx.export(model, dummy, path, input_names=["input"], output_names=["output"],
                          dynamic_axes=None if fixed else {"input": {0: "batch"}, "output": {0: "batch"}},
                          opset_version=opset, do_constant_folding=True, training=torch.onnx.TrainingMode.EVAL)
        print(f"{path}: {os.path.getsize(path)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
