#!/usr/bin/env python3
"""An independent PyTorch implementation of FGSM, BIM and PGD (L-inf and L2), to check and benchmark
the library's attacks (src/) against.

Run with Debian's Python (torch, torchvision): /usr/bin/python3 scripts/torch_attacks.py <command>
Needs the state dicts in models/cache/ (the same weights as the committed ONNX files; fmnist-cnn's
are read from its ONNX file when the cache lacks them) and the Fashion-MNIST test set in
data/fashion-mnist/.

Commands:
  fixtures  writes into test/testdata/attacks/, for fmnist-cnn and the first 100 test images:
              fmnist-cnn.fgsm.npy           float32 [100, 1, 28, 28], untargeted FGSM, eps 0.1
              fmnist-cnn.fgsm-targeted.npy  float32 [100, 1, 28, 28], FGSM towards (label + 1) % 10
              fmnist-cnn.bim.npy            float32 [100, 1, 28, 28], untargeted BIM, eps 0.1,
                                            alpha 0.01, 10 steps
              fmnist-cnn.attacks.json       parameters, targets and per-image success (0/1)
  pgd       attacks the first --n test images of a committed model and prints one JSON line:
              /usr/bin/python3 scripts/torch_attacks.py pgd --model fmnist-cnn --eps 0.1 --steps 20
              /usr/bin/python3 scripts/torch_attacks.py pgd --model fmnist-cnn --eps 1.5 --steps 20 --norm l2
  bench     times PGD L-inf (random start) on a batch and prints one JSON line:
              /usr/bin/python3 scripts/torch_attacks.py bench --arch fmnist-cnn --batch 128
              /usr/bin/python3 scripts/torch_attacks.py bench --arch resnet18 --batch 8 --steps 5

Definitions (the library's): the loss is the cross-entropy of the logits against `classes`, summed
over the batch; untargeted attacks ascend it with classes = true labels, targeted ones descend it
with classes = targets. PGD runs all its steps (no early stop) and returns the final iterate.
"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(ROOT, "models"))
import architectures  # noqa: E402

OUT = os.path.join(ROOT, "test", "testdata", "attacks")
DATA = os.path.join(ROOT, "data", "fashion-mnist")
MODELS = ("fmnist-cnn", "fmnist-resnet", "fmnist-vit")


# ---------------------------------------------------------------------------------------------
# Data and models
# ---------------------------------------------------------------------------------------------


def test_images(n):
    """The first n Fashion-MNIST test images, float32 [n, 1, 28, 28] in [0, 1]."""
    with gzip.open(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")) as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16)
    return torch.from_numpy(raw[: n * 784].reshape(n, 1, 28, 28).astype(np.float32) / 255.0)


def test_labels(n):
    """The first n Fashion-MNIST test labels, int64 [n]."""
    with gzip.open(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz")) as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=8)
    return torch.from_numpy(raw[:n].astype(np.int64))


def frozen(net):
    """Eval mode and no parameter gradients: the attacks only need d loss / d input."""
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def load_model(name):
    """A committed model (fmnist-cnn, fmnist-resnet, fmnist-vit) with its weights: the state dict that
    models/train_fashion.py caches, or else the committed ONNX file's initializers where they keep
    the state dict's names and shapes (fmnist-cnn; the others have batch norms folded away)."""
    net = architectures.build(name[len("fmnist-"):])
    cached = os.path.join(ROOT, "models", "cache", f"{name}.pt")
    if os.path.exists(cached):
        net.load_state_dict(torch.load(cached, map_location="cpu"))
        return frozen(net)
    import onnx  # noqa: E402 (Debian python3-onnx; only needed without the cached state dict)
    from onnx import numpy_helper  # noqa: E402

    onnx_path = os.path.join(ROOT, "models", f"{name}.onnx")
    stored = {t.name: numpy_helper.to_array(t) for t in onnx.load(onnx_path).graph.initializer}
    state = net.state_dict()
    missing = [k for k, v in state.items() if k not in stored or tuple(stored[k].shape) != tuple(v.shape)]
    if missing:
        sys.exit(f"{cached} is missing and {onnx_path} does not hold {missing[0]} (and {len(missing) - 1} more) under "
                 f"that name and shape; make the state dict with /usr/bin/python3 models/train_fashion.py")
    net.load_state_dict({k: torch.from_numpy(stored[k].copy()) for k in state})
    return frozen(net)


# ---------------------------------------------------------------------------------------------
# Attacks
# ---------------------------------------------------------------------------------------------


def input_grad(net, x, classes, direction):
    """direction * d sum_i CE(net(x)_i, classes_i) / dx; +1 ascends the loss, -1 descends it."""
    x = x.detach().requires_grad_()
    loss = F.cross_entropy(net(x), classes, reduction="sum")
    (g,) = torch.autograd.grad(loss, x)
    return g if direction > 0 else -g


def l2_per_image(t):
    """||t_i||_2 for each image, shaped [N, 1, 1, 1] to broadcast against t."""
    return t.flatten(1).norm(dim=1).view(-1, *([1] * (t.dim() - 1)))


def fgsm(net, x0, classes, direction, eps):
    return (x0 + eps * input_grad(net, x0, classes, direction).sign()).clamp(0, 1)


def pgd_once(net, x0, classes, direction, eps, steps, alpha, norm, random_start, gen):
    """One PGD run from x0; BIM is L-inf with random_start False. Returns the final iterate."""
    x = x0.clone()
    if random_start:
        if norm == "linf":
            x = (x0 + (torch.rand(x0.shape, generator=gen) * 2 - 1) * eps).clamp(0, 1)
        else:
            d = torch.randn(x0.shape, generator=gen)
            radius = eps * torch.rand(x0.shape[0], generator=gen).view(-1, *([1] * (x0.dim() - 1)))
            x = (x0 + d / l2_per_image(d) * radius).clamp(0, 1)
    for _ in range(steps):
        g = input_grad(net, x, classes, direction)
        if norm == "linf":
            x = x + alpha * g.sign()
            x = torch.min(torch.max(x, x0 - eps), x0 + eps).clamp(0, 1)
        else:
            x = x + alpha * g / l2_per_image(g).clamp_min(1e-12)
            delta = x - x0
            # Scale only the deltas outside the ball: factor min(1, eps / ||delta||).
            delta = delta * (eps / l2_per_image(delta).clamp_min(1e-12)).clamp_max(1.0)
            x = (x0 + delta).clamp(0, 1)
    return x


@torch.no_grad()
def successes(net, adv, labels, targets=None):
    """Bool [N]: untargeted argmax != label, targeted argmax == target."""
    pred = net(adv).argmax(1)
    return pred == targets if targets is not None else pred != labels


def pgd(net, x0, labels, eps, steps, alpha=None, norm="linf", random_start=True, restarts=1,
        targets=None, gen=None):
    """PGD with restarts: later restarts re-run only the images not yet adversarial and keep the
    ones that become adversarial. Returns (adv, success)."""
    alpha = 2.5 * eps / steps if alpha is None else alpha
    direction, classes = (-1, targets) if targets is not None else (1, labels)
    run = lambda idx: pgd_once(net, x0[idx], classes[idx], direction, eps, steps, alpha, norm,  # noqa: E731
                               random_start, gen)
    everything = torch.arange(x0.shape[0])
    adv = run(everything)
    ok = successes(net, adv, labels, targets)
    for _ in range(restarts - 1):
        idx = everything[~ok]
        if idx.numel() == 0:
            break
        retry = run(idx)
        won = successes(net, retry, labels[idx], None if targets is None else targets[idx])
        adv[idx[won]] = retry[won]
        ok[idx[won]] = True
    return adv, ok


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


def cmd_fixtures(_args):
    n, eps, alpha, steps = 100, 0.1, 0.01, 10
    net = load_model("fmnist-cnn")
    x0, labels = test_images(n), test_labels(n)
    targets = (labels + 1) % 10
    os.makedirs(OUT, exist_ok=True)

    def save(key, adv):
        np.save(os.path.join(OUT, f"fmnist-cnn.{key}.npy"), np.ascontiguousarray(adv.numpy(), dtype="<f4"))

    adv_fgsm = fgsm(net, x0, labels, 1, eps)
    adv_fgsm_t = fgsm(net, x0, targets, -1, eps)
    adv_bim, _ = pgd(net, x0, labels, eps, steps, alpha, "linf", random_start=False)
    save("fgsm", adv_fgsm)
    save("fgsm-targeted", adv_fgsm_t)
    save("bim", adv_bim)
    as_ints = lambda ok: ok.int().tolist()  # noqa: E731
    meta = {
        "model": "fmnist-cnn",
        "images": n,
        "eps": eps,
        "bim": {"alpha": alpha, "steps": steps, "success": as_ints(successes(net, adv_bim, labels))},
        "fgsm": {"success": as_ints(successes(net, adv_fgsm, labels))},
        "fgsmTargeted": {"targets": targets.tolist(),
                         "success": as_ints(successes(net, adv_fgsm_t, labels, targets))},
        "torch": torch.__version__,
    }
    with open(os.path.join(OUT, "fmnist-cnn.attacks.json"), "w") as f:
        json.dump(meta, f)
        f.write("\n")
    for key in ("bim", "fgsm", "fgsmTargeted"):
        print(f"{key}: success {sum(meta[key]['success'])}/{n}", file=sys.stderr)


def cmd_pgd(args):
    net = load_model(args.model)
    x0, labels = test_images(args.n), test_labels(args.n)
    targets = (labels + 1) % 10 if args.targeted else None
    alpha = 2.5 * args.eps / args.steps if args.alpha is None else args.alpha
    gen = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    # In batches: one batch of 1,000 images runs at a quarter of the speed of batches of 128.
    parts = [pgd(net, x0[i:i + args.batch], labels[i:i + args.batch], args.eps, args.steps, alpha, args.norm,
                 not args.no_random_start, args.restarts, None if targets is None else targets[i:i + args.batch], gen)
             for i in range(0, args.n, args.batch)]
    adv, ok = torch.cat([a for a, _ in parts]), torch.cat([o for _, o in parts])
    seconds = time.perf_counter() - start
    delta = (adv - x0).flatten(1)  # medians over all n images, adversarial or not
    print(json.dumps({
        "model": args.model, "n": args.n, "eps": args.eps, "steps": args.steps, "alpha": alpha,
        "norm": args.norm, "restarts": args.restarts,
        "successRate": ok.float().mean().item(),
        "medianLinf": delta.abs().amax(1).median().item(),
        "medianL2": delta.norm(dim=1).median().item(),
        "seconds": seconds, "imagesPerSecond": args.n / seconds,
        "torch": torch.__version__, "threads": torch.get_num_threads(),
    }))


def cmd_bench(args):
    if args.arch == "fmnist-cnn":
        net = load_model("fmnist-cnn")
        x0, labels = test_images(args.batch), test_labels(args.batch)
    else:
        import torchvision
        torch.manual_seed(0)
        net = frozen(torchvision.models.resnet18(weights=None, num_classes=1000))
        x0 = torch.rand(args.batch, 3, 224, 224)
        labels = torch.randint(0, 1000, (args.batch,))
    gen = torch.Generator().manual_seed(0)
    attack = lambda: pgd(net, x0, labels, args.eps, args.steps, gen=gen)  # noqa: E731
    attack()  # warm-up: allocator, oneDNN kernel selection
    times = []
    for _ in range(args.reps):
        start = time.perf_counter()
        attack()
        times.append(time.perf_counter() - start)
    best = min(times)
    print(json.dumps({
        "arch": args.arch, "batch": args.batch, "steps": args.steps, "bestSeconds": best,
        "imagesPerSecond": args.batch / best, "threads": torch.get_num_threads(), "torch": torch.__version__,
    }))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fixtures", help="write test/testdata/attacks/").set_defaults(run=cmd_fixtures)

    p = sub.add_parser("pgd", help="PGD on the first n test images; one JSON line")
    p.add_argument("--model", choices=MODELS, required=True)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--eps", type=float, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--alpha", type=float, help="step size (default 2.5 * eps / steps)")
    p.add_argument("--norm", choices=("linf", "l2"), default="linf")
    p.add_argument("--restarts", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-random-start", action="store_true")
    p.add_argument("--targeted", action="store_true", help="targets (label + 1) %% 10")
    p.add_argument("--batch", type=int, default=128, help="images per batch")
    p.set_defaults(run=cmd_pgd)

    b = sub.add_parser("bench", help="time PGD L-inf on one batch; one JSON line")
    b.add_argument("--arch", choices=("fmnist-cnn", "resnet18"), required=True)
    b.add_argument("--batch", type=int, required=True)
    b.add_argument("--steps", type=int, default=20)
    b.add_argument("--eps", type=float, default=0.03)
    b.add_argument("--reps", type=int, default=3)
    b.set_defaults(run=cmd_bench)

    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count())
    args.run(args)


if __name__ == "__main__":
    main()
