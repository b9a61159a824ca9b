#!/usr/bin/env python3
"""Train the Fashion-MNIST classifiers used by neural-fingerprints, export them
to ONNX and write a model card for each.

    /usr/bin/python3 models/train_fashion.py --arch all --seed 0 --out models/

For each architecture NAME in {cnn, resnet, vit} this writes
    <out>/fmnist-NAME.onnx        input "input" [batch,1,28,28] float32 in [0,1],
                                  output "logits" [batch,10]; normalization is
                                  the first op in the graph; opset 17
    <out>/fmnist-NAME.json        model card
    <out>/cache/fmnist-NAME.pt    PyTorch state dict (git-ignored), reload with
                                  architectures.build(NAME).load_state_dict(...)

The data are read straight from the gzipped IDX files (no downloads).
Training runs on the CPU with a single thread by default and is deterministic
for a given seed.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shlex
import sys
import time
from pathlib import Path

# Keep BLAS/OpenMP single-threaded unless asked otherwise (the machine is
# shared; also makes runs reproducible independent of the core count).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import architectures  # noqa: E402
from onnx_utils import OPSET, export_classifier  # noqa: E402

DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"
# Default number of epochs per architecture (overridden by --epochs).
DEFAULT_EPOCHS = {"cnn": 6, "resnet": 4, "vit": 10}
DEFAULT_LR = {"cnn": 1e-3, "resnet": 2e-3, "vit": 1e-3}


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------


def read_idx(path: Path) -> np.ndarray:
    """Read a (gzipped) IDX file into a numpy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = data[0:2], data[2], data[3]
    if zero != b"\x00\x00" or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    arr = np.frombuffer(data, dtype=np.uint8, offset=offset)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {dims} elements, got {arr.size}")
    return arr.reshape(dims)


def load_split(data_dir: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """split: 'train' or 't10k'. Returns float32 images [N,1,28,28] in [0,1] and int64 labels."""
    images = read_idx(data_dir / f"{split}-images-idx3-ubyte.gz")
    labels = read_idx(data_dir / f"{split}-labels-idx1-ubyte.gz")
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        raise ValueError(f"unexpected shapes {images.shape} / {labels.shape}")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


# --------------------------------------------------------------------------
# training / evaluation
# --------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True)


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    model.eval()
    correct = 0
    for i in range(0, x.shape[0], batch):
        correct += (model(x[i: i + batch]).argmax(1) == y[i: i + batch]).sum().item()
    return correct / x.shape[0]


def train(
    name: str,
    epochs: int,
    seed: int,
    lr: float,
    batch_size: int,
    train_data: tuple[torch.Tensor, torch.Tensor],
    test_data: tuple[torch.Tensor, torch.Tensor],
) -> tuple[torch.nn.Module, float]:
    seed_everything(seed)
    model = architectures.build(name)
    xtr, ytr = train_data
    xte, yte = test_data
    n = xtr.shape[0]
    steps_per_epoch = (n + batch_size - 1) // batch_size
    total = epochs * steps_per_epoch
    warmup = min(200, total // 10)

    def schedule(step: int) -> float:  # linear warm-up, then cosine decay to 0
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + float(np.cos(np.pi * t)))

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(1, epochs + 1):
        model.train()
        t0 = time.time()
        perm = torch.randperm(n, generator=gen)
        loss_sum, seen, correct = 0.0, 0, 0
        for i in range(0, n, batch_size):
            idx = perm[i: i + batch_size]
            xb, yb = xtr[idx], ytr[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * idx.numel()
            correct += (logits.argmax(1) == yb).sum().item()
            seen += idx.numel()
        acc = evaluate(model, xte, yte)
        print(
            f"[{name}] epoch {epoch}/{epochs}: loss {loss_sum / seen:.4f} "
            f"train_acc {correct / seen:.4f} test_acc {acc:.4f} ({time.time() - t0:.1f}s)",
            flush=True,
        )
    model.eval()
    return model, evaluate(model, xte, yte)


# --------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------


def export_onnx(model: torch.nn.Module, path: Path) -> None:
    model.eval()
    dummy = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    export_classifier(model, dummy, path)


def verify_onnx(model: torch.nn.Module, path: Path, x: torch.Tensor) -> None:
    """Structural checks with onnx.checker; numerical check with onnxruntime if present."""
    import onnx

    m = onnx.load(str(path))
    onnx.checker.check_model(m, full_check=True)
    g = m.graph
    assert [i.name for i in g.input] == ["input"], [i.name for i in g.input]
    assert [o.name for o in g.output] == ["logits"], [o.name for o in g.output]
    in_dims = [d.dim_param or d.dim_value for d in g.input[0].type.tensor_type.shape.dim]
    out_dims = [d.dim_param or d.dim_value for d in g.output[0].type.tensor_type.shape.dim]
    assert in_dims == ["batch", 1, 28, 28], in_dims
    assert out_dims == ["batch", 10], out_dims
    assert m.opset_import[0].version == OPSET
    consumers = [n for n in g.node if "input" in n.input]
    assert len(consumers) == 1, [n.name for n in consumers]
    first = g.node[0]
    assert first.op_type == "Sub" and "input" in first.input, (first.op_type, list(first.input))
    assert g.node[1].op_type == "Div" and g.node[1].input[0] == first.output[0]
    ops = {n.op_type for n in g.node}
    assert not ops & {"BatchNormalization", "Dropout"}, f"training-only ops left in graph: {ops}"

    model.eval()
    with torch.no_grad():
        ref = model(x).numpy()
    try:
        import onnxruntime as ort  # type: ignore
    except ImportError:
        print(f"  onnx.checker ok ({len(g.node)} nodes); onnxruntime not installed, skipped ORT comparison")
        return
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = sess.run(["logits"], {"input": x.numpy()})[0]
    diff = float(np.abs(out - ref).max())
    print(f"  onnx.checker ok; onnxruntime max |diff| vs torch = {diff:.2e}")
    assert diff < 1e-3, diff


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def command_line() -> str:
    argv = list(sys.argv)
    try:
        argv[0] = os.path.relpath(argv[0])
    except ValueError:
        pass
    return shlex.join([sys.executable] + argv)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", choices=[*architectures.ARCHITECTURES, "all"], default="all")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs for every selected arch (default: " +
                   ", ".join(f"{k} {v}" for k, v in DEFAULT_EPOCHS.items()) + ")")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    p.add_argument("--data", type=Path, default=Path(DEFAULT_DATA),
                   help="folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default depends on arch)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    names = list(architectures.ARCHITECTURES) if args.arch == "all" else [args.arch]
    out: Path = args.out
    (out / "cache").mkdir(parents=True, exist_ok=True)

    train_data = load_split(args.data, "train")
    test_data = load_split(args.data, "t10k")
    print(f"train {tuple(train_data[0].shape)}, test {tuple(test_data[0].shape)}", flush=True)
    cmd = command_line()

    for name in names:
        epochs = args.epochs if args.epochs is not None else DEFAULT_EPOCHS[name]
        lr = args.lr if args.lr is not None else DEFAULT_LR[name]
        t0 = time.time()
        model, acc = train(name, epochs, args.seed, lr, args.batch_size, train_data, test_data)
        train_s = time.time() - t0
        stem = f"fmnist-{name}"
        torch.save(model.state_dict(), out / "cache" / f"{stem}.pt")

        # Check the saved state dict reproduces the model exactly.
        rebuilt = architectures.build(name)
        rebuilt.load_state_dict(torch.load(out / "cache" / f"{stem}.pt"))
        rebuilt.eval()
        probe = test_data[0][:256]
        with torch.no_grad():
            assert torch.equal(rebuilt(probe), model(probe)), "reloaded state dict differs"

        onnx_path = out / f"{stem}.onnx"
        export_onnx(model, onnx_path)
        verify_onnx(model, onnx_path, probe)

        card = {
            "name": stem,
            "architecture": architectures.describe(model),
            "file": onnx_path.name,
            "input": {"name": "input", "shape": ["batch", 1, 28, 28], "dtype": "float32", "range": [0, 1]},
            "output": {"name": "logits", "shape": ["batch", 10], "classes": architectures.CLASSES},
            "normalization": {"mean": architectures.MEAN, "std": architectures.STD},
            "dataset": f"Fashion-MNIST (train {train_data[0].shape[0]} / test {test_data[0].shape[0]})",
            "test_accuracy": round(acc, 4),
            "parameters": architectures.count_parameters(model),
            "epochs": epochs,
            "batch_size": args.batch_size,
            "optimizer": f"Adam lr={lr:g}, linear warm-up + cosine decay, no augmentation",
            "seed": args.seed,
            "torch_version": torch.__version__,
            "opset": OPSET,
            "sha256": sha256(onnx_path),
            "command": cmd,
        }
        with open(out / f"{stem}.json", "w") as f:
            json.dump(card, f, indent=2)
            f.write("\n")
        print(
            f"[{name}] test_acc {acc:.4f}, {card['parameters']} params, "
            f"{onnx_path.stat().st_size} bytes ONNX, trained in {train_s:.0f}s",
            flush=True,
        )


if __name__ == "__main__":
    main()
