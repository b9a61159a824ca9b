#!/usr/bin/env python3
"""Writes PyTorch autograd fixtures for models exported the ways model zoos publish them, so that
`npm test` checks the gradient transform and the model runtime on them without Python at test time.

Run with Debian's Python (torch, onnx): /usr/bin/python3 scripts/gen_export_fixtures.py

One small network with random weights (fixed torch seed), "mini-zoo": a stem convolution with batch
norm, ReLU and an overlapping 3x3 stride-2 max pool with padding (ResNet's), a convolution with
hard-swish (exported before opset 14 as HardSigmoid times x), an ONNX LRN node (AlexNet, GoogLeNet),
a stride-2 convolution with LeakyReLU, a 2x2 max pool with ceil_mode on an odd size, global average
pooling and a linear layer; input 3 x 31 x 31 in [0, 1]. Exported at opsets 11 and 13, each twice:

  mini-zoo.op<k>.onnx            input [N, 3, 31, 31], a free batch axis, logits out
  mini-zoo-nhwc-b1.op<k>.onnx    input [1, 31, 31, 3] (channels last, a fixed batch of 1, the export
                                 default of many tools), softmax probabilities out

Into test/testdata/gradients/, for each model <m> (the same keys as gen_gradient_fixtures.py, inputs
and gradients in the model's own layout):
  <m>.input.npy  <m>.logit_seed.npy  <m>.grad_logit.npy  <m>.labels.npy  <m>.grad_ce.npy
  <m>.ce_loss.npy  <m>.tap_seed.npy  <m>.grad_tap.npy
  <m>.logits.npy      PyTorch's logits (before the softmax of the -nhwc-b1 models)
The losses are taken on the logits, as the library does for a model that outputs probabilities.
"""
import os
import sys

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from gen_gradient_fixtures import OUT, fixtures, randomize_bn, write  # noqa: E402

SIZE = 31


class LRNExport(torch.autograd.Function):
    """Exports as one ONNX LRN node (torch 1.13 writes LocalResponseNorm as a dozen ops with an If)."""

    @staticmethod
    def forward(ctx, x, size, alpha, beta, k):
        return F.local_response_norm(x, size, alpha, beta, k)

    @staticmethod
    def symbolic(g, x, size, alpha, beta, k):
        return g.op("LRN", x, size_i=size, alpha_f=alpha, beta_f=beta, bias_f=k)


class LRN(nn.Module):
    """PyTorch's LocalResponseNorm equals ONNX LRN for an odd size (a symmetric channel window, alpha / size)."""

    def __init__(self, size, alpha, beta, k):
        super().__init__()
        self.args = (size, alpha, beta, k)

    def forward(self, x):
        if torch.onnx.is_in_onnx_export():
            return LRNExport.apply(x, *self.args)
        return F.local_response_norm(x, *self.args)


class MiniZoo(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.pool1 = nn.MaxPool2d(3, stride=2, padding=1)  # 31 -> 16, overlapping windows
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.act2 = nn.Hardswish()
        self.lrn = LRN(3, 0.5, 0.75, 2.0)
        self.conv3 = nn.Conv2d(8, 16, 3, stride=2)  # 16 -> 7
        self.act3 = nn.LeakyReLU(0.1)
        self.pool2 = nn.MaxPool2d(2, ceil_mode=True)  # 7 -> 4, the last window partial
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        x = self.pool1(torch.relu(self.bn1(self.conv1(x))))
        x = self.lrn(self.act2(self.conv2(x)))
        x = self.pool2(self.act3(self.conv3(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class ChannelsLast(nn.Module):
    """The same network taking [N, H, W, C] images; `probabilities` adds a trailing softmax."""

    def __init__(self, net, probabilities):
        super().__init__()
        self.net = net
        self.probabilities = probabilities
        self.fc = net.fc  # fixtures() hooks the final 10-way linear layer

    def forward(self, x):
        logits = self.net(x.permute(0, 3, 1, 2))
        return torch.softmax(logits, dim=1) if self.probabilities else logits


def export(net, path, opset, channels_last):
    dummy = torch.rand(1, SIZE, SIZE, 3) if channels_last else torch.rand(1, 3, SIZE, SIZE)
    axes = None if channels_last else {"input": {0: "batch"}, "output": {0: "batch"}}
    torch.onnx.export(net, dummy, path, input_names=["input"], output_names=["output"], dynamic_axes=axes,
                      opset_version=opset, do_constant_folding=True, training=torch.onnx.TrainingMode.EVAL)
    import onnx

    ops = sorted({n.op_type for n in onnx.load(path).graph.node})
    print(f"{os.path.basename(path)}: {os.path.getsize(path)} bytes, ops {ops}", file=sys.stderr)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(11)
    net = MiniZoo()
    randomize_bn(net, torch.Generator().manual_seed(12))
    net.eval()
    x = torch.rand(4, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(13)).numpy()
    for opset in (11, 13):
        for name, channels_last in ((f"mini-zoo.op{opset}", False), (f"mini-zoo-nhwc-b1.op{opset}", True)):
            export(ChannelsLast(net, True).eval() if channels_last else net, os.path.join(OUT, f"{name}.onnx"), opset,
                   channels_last)
            model = ChannelsLast(net, False).eval() if channels_last else net
            images = np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if channels_last else x
            fixtures(name, model, images, np.random.default_rng(sum(map(ord, name))))
            with torch.no_grad():
                write(name, "logits", model(torch.from_numpy(images)).numpy().astype(np.float32))


if __name__ == "__main__":
    main()
