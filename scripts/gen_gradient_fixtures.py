#!/usr/bin/env python3
"""Writes PyTorch autograd input gradients, so the tests can check the ONNX reverse-mode transform
(src/autodiff/) against them without Python at test time.

Run with Debian's Python (torch, onnx, torchvision): /usr/bin/python3 scripts/gen_gradient_fixtures.py
Needs the state dicts in models/cache/ (the same weights as the committed ONNX files).

For each model <m> (fmnist-cnn, fmnist-resnet, mini-resnet, mini-mobilenet, mini-vit, and fmnist-vit once
models/fmnist-vit.onnx and models/cache/fmnist-vit.pt exist) writes into test/testdata/gradients/:
  <m>.input.npy       float32 [4, C, H, W]
  <m>.logit_seed.npy  float32 [4, 10], N(0, 1) with a fixed numpy seed
  <m>.grad_logit.npy  d sum(logit_seed * logits) / d input
  <m>.labels.npy      int32 [4]
  <m>.grad_ce.npy     d sum_i cross_entropy(logits_i, labels_i) / d input
  <m>.ce_loss.npy     float32 [4], per-image cross-entropy
  <m>.tap_seed.npy    float32 [4, P + 10]: seed for the automatic taps (penultimate features, logits)
  <m>.grad_tap.npy    d sum(tap_seed * [penultimate, logits]) / d input
mini-resnet: torchvision's ResNet-18 with random weights is ~45 MB in ONNX, too big to commit, so a
small residual net with ResNet-18's stem (overlapping 3x3 stride-2 max pool) and basic blocks with
identity and projection shortcuts is built here with random weights (fixed torch seed) and exported
(opset 17) as mini-resnet.onnx.
mini-mobilenet: torchvision's MobileNetV2 at width 0.25, 10 classes, random weights, 64x64 inputs
(about 2 MB in ONNX): depthwise convolutions (stride 2 among them), ReLU6 as Clip, inverted residuals.
mini-vit: architectures.FashionViT narrowed (dim 16, 1 block, 2 heads) with random weights, exported
(opset 17, tidied like the committed models) as mini-vit.onnx: attention's data-data MatMuls, Split,
Softmax, LayerNormalization, the Erf GELU and ReduceMean(keepdims=0) of the real ViT, in ~20 KB.

Select models by name: /usr/bin/python3 scripts/gen_gradient_fixtures.py mini-vit fmnist-vit
(default: all). Each model draws its seeds from its own generator, so a subset rewrites only its files.
"""
import gzip
import os
import sys
import tempfile

import numpy as np
import torch
from torch import nn

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(ROOT, "models"))
import architectures  # noqa: E402

OUT = os.path.join(ROOT, "test", "testdata", "gradients")
MAX_COMMIT_BYTES = 3 * 1024 * 1024


def test_images(n):
    with gzip.open(os.path.join(ROOT, "data", "fashion-mnist", "t10k-images-idx3-ubyte.gz")) as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16)
    return raw[: n * 784].reshape(n, 1, 28, 28).astype(np.float32) / 255.0


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class MiniResNet(nn.Module):
    """ResNet-18's stem (conv stride 2, 3x3 stride-2 max pool) and two basic blocks, narrow."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = Block(8, 8, 1)
        self.layer2 = Block(8, 16, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def randomize_bn(net, gen):
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)


def export(net, path, size, channels=3):
    dummy = torch.rand(1, channels, size, size)
    torch.onnx.export(net, dummy, path, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      opset_version=17, do_constant_folding=True)
    return os.path.getsize(path)


def residual_model():
    """torchvision ResNet-18 if its ONNX is small enough to commit, else MiniResNet."""
    torch.manual_seed(0)
    try:
        import torchvision
        net = torchvision.models.resnet18(num_classes=10).eval()
        with tempfile.TemporaryDirectory() as tmp:
            size = export(net, os.path.join(tmp, "r18.onnx"), 32)
        print(f"torchvision resnet18 ONNX: {size / 1e6:.1f} MB", file=sys.stderr)
        if size <= MAX_COMMIT_BYTES:
            return "resnet18", net
    except ImportError:
        print("torchvision missing", file=sys.stderr)
    print("using MiniResNet instead", file=sys.stderr)
    torch.manual_seed(0)
    net = MiniResNet()
    randomize_bn(net, torch.Generator().manual_seed(1))
    return "mini-resnet", net.eval()


def mobilenet_model():
    """torchvision's MobileNetV2 itself at width 0.25 with 10 classes (random weights, batch norms
    given random statistics): inverted residuals, depthwise convolutions with stride 2, ReLU6 (Clip)."""
    import torchvision

    torch.manual_seed(5)
    net = torchvision.models.mobilenet_v2(num_classes=10, width_mult=0.25)
    randomize_bn(net, torch.Generator().manual_seed(6))
    return net.eval()


def write(name, key, array):
    np.save(os.path.join(OUT, f"{name}.{key}.npy"), np.ascontiguousarray(array))


def fixtures(name, net, x, rng):
    net.eval()
    final = [m for m in net.modules() if isinstance(m, nn.Linear) and m.out_features == 10][-1]
    captured = []
    hook = final.register_forward_hook(lambda m, inp, out: captured.append(inp[0]))
    n = x.shape[0]
    logit_seed = rng.standard_normal((n, 10)).astype(np.float32)
    labels = rng.integers(0, 10, n).astype(np.int32)

    def grad_of(loss_fn):
        xt = torch.from_numpy(x).clone().requires_grad_(True)
        captured.clear()
        logits = net(xt)
        loss = loss_fn(logits, captured[0])
        (g,) = torch.autograd.grad(loss.sum(), xt)
        return g.detach().numpy().astype(np.float32), logits, captured[0], loss

    g_logit, logits, pen, _ = grad_of(lambda lg, p: (torch.from_numpy(logit_seed) * lg).sum())
    tap_seed = rng.standard_normal((n, pen.shape[1] + 10)).astype(np.float32)
    g_tap, _, _, _ = grad_of(lambda lg, p: (torch.from_numpy(tap_seed) * torch.cat([p.flatten(1), lg], 1)).sum())
    ce = nn.CrossEntropyLoss(reduction="none")
    g_ce, _, _, loss = grad_of(lambda lg, p: ce(lg, torch.from_numpy(labels).long()))
    hook.remove()
    write(name, "input", x)
    write(name, "logit_seed", logit_seed)
    write(name, "grad_logit", g_logit)
    write(name, "labels", labels)
    write(name, "grad_ce", g_ce)
    write(name, "ce_loss", loss.detach().numpy().astype(np.float32))
    write(name, "tap_seed", tap_seed)
    write(name, "grad_tap", g_tap)
    print(f"{name}: |grad_logit|max={np.abs(g_logit).max():.3g} penultimate={pen.shape[1]}", file=sys.stderr)


def vit_models(x):
    """mini-vit (random weights, committed ONNX); fmnist-vit when its ONNX and state dict exist."""
    from onnx_utils import tidy_onnx

    torch.manual_seed(4)
    net = architectures.FashionViT(dim=16, depth=1, heads=2, mlp_ratio=2.0).eval()
    with torch.no_grad():  # LayerNorm affine away from 1/0, so Scale and B matter in the test
        for m in net.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(torch.rand(m.weight.shape) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape) * 0.1)
            if isinstance(m, nn.Linear):
                m.weight.mul_(10.0)  # trunc_normal std 0.02 makes attention nearly uniform
    path = os.path.join(OUT, "mini-vit.onnx")
    export(net, path, 28, channels=1)
    tidy_onnx(path)
    yield "mini-vit", net, x
    onnx_path = os.path.join(ROOT, "models", "fmnist-vit.onnx")
    state = os.path.join(ROOT, "models", "cache", "fmnist-vit.pt")
    if os.path.exists(onnx_path) and os.path.exists(state):
        net = architectures.build("vit")
        net.load_state_dict(torch.load(state, map_location="cpu"))
        yield "fmnist-vit", net.eval(), x
    else:
        print("fmnist-vit: models/fmnist-vit.onnx or models/cache/fmnist-vit.pt missing, skipped", file=sys.stderr)


def main():
    os.makedirs(OUT, exist_ok=True)
    wanted = set(sys.argv[1:])
    pick = lambda name: not wanted or name in wanted  # noqa: E731
    rng = np.random.default_rng(20241107)
    x = test_images(4)
    if not wanted or wanted & {"fmnist-cnn", "fmnist-resnet", "mini-resnet"}:
        # One generator across these three, in this order, as when their fixtures were committed.
        for name, arch in (("fmnist-cnn", "cnn"), ("fmnist-resnet", "resnet")):
            net = architectures.build(arch)
            net.load_state_dict(torch.load(os.path.join(ROOT, "models", "cache", f"{name}.pt"), map_location="cpu"))
            fixtures(name, net, x, rng)
        name, net = residual_model()
        torch.manual_seed(2)
        export(net, os.path.join(OUT, f"{name}.onnx"), 32)
        xr = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(3)).numpy()
        fixtures(name, net, xr, rng)
    if pick("mini-mobilenet"):
        net = mobilenet_model()
        size = export(net, os.path.join(OUT, "mini-mobilenet.onnx"), 64)
        print(f"mini-mobilenet ONNX: {size / 1e6:.2f} MB", file=sys.stderr)
        xm = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(7)).numpy()
        fixtures("mini-mobilenet", net, xm, np.random.default_rng(sum(map(ord, "mini-mobilenet"))))
    for name, net, xv in vit_models(x):
        if pick(name):
            fixtures(name, net, xv, np.random.default_rng(sum(map(ord, name))))


if __name__ == "__main__":
    main()
