#!/usr/bin/env python3
"""An independent check of the baselines (src/baselines/) on the shared case that
scripts/baselines-crosscheck.ts writes: the authors' formulas in numpy, scipy and PyTorch on the same
images, compared with the library's figures. Run with Debian's Python (numpy, scipy, torch):

    npx tsx scripts/baselines-crosscheck.ts --dir /tmp/nfp-baselines-check
    /usr/bin/python3 scripts/baselines_crosscheck.py --dir /tmp/nfp-baselines-check

What is recomputed here, each as the authors' code does it:
- Mahalanobis (pokaxpoka/deep_Mahalanobis_detector, lib_generation.py): channel means of each tapped
  layer of the committed CNN in PyTorch (weights from its ONNX file), class means by true label, the
  tied covariance as sklearn's EmpiricalCovariance (np.cov, bias=1) and its pinvh, and
  get_Mahalanobis_score_adv's score max_c -M_c / 2 after x - eps * sign(grad) (torch autograd), eps 0 and
  0.002, in float32 as theirs.
- The regression: sklearn's LogisticRegressionCV defaults (Cs = logspace(-4, 4, 10), StratifiedKFold(5)
  without shuffling, accuracy, the first best C, refit), the objective minimized by scipy's L-BFGS-B.
- LID (xingjunm/lid_adversarial_subspace_detection, util.py mle_batch): cdist within each minibatch of 100,
  the nearest (self) dropped, -k / sum(log(d_i / d_k)), k = 20, on the input and every tapped layer.
- Feature squeezing (mzweilin/EvadeML-Zoo, utils/squeeze.py): np.rint bit depth 1 and
  scipy.ndimage.median_filter(size=(1, 2, 2, 1), mode='reflect'), max L1 between softmax outputs.
Prints one JSON object: the largest differences and the agreement.
"""
import argparse
import json
import os
import sys

import numpy as np
import scipy.linalg
import scipy.ndimage
import scipy.optimize
from scipy.spatial.distance import cdist
import torch

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from torch_attacks import load_model  # noqa: E402  (the committed CNN's weights from its ONNX file)

# The CNN's card taps, as modules of models/architectures.py's FashionCNN (logits: the output).
TAPS = {
    "/features/relu1/Relu_output_0": "features.relu1",
    "/features/pool1/MaxPool_output_0": "features.pool1",
    "/features/relu2/Relu_output_0": "features.relu2",
    "/features/pool2/MaxPool_output_0": "features.pool2",
    "/features/relu3/Relu_output_0": "features.relu3",
    "/features/pool3/MaxPool_output_0": "features.pool3",
    "/classifier/relu/Relu_output_0": "classifier.relu",
}


def features(net, taps, x):
    """The tapped layers' outputs for images x (the logits tap is the output)."""
    outs = {}
    hooks = [dict(net.named_modules())[TAPS[t]].register_forward_hook(
        lambda m, i, o, t=t: outs.__setitem__(t, o)) for t in taps if t != "logits"]
    logits = net(x)
    for h in hooks:
        h.remove()
    outs["logits"] = logits
    return [outs[t] for t in taps], logits


def channel_means(t):
    return t.view(t.size(0), t.size(1), -1).mean(2) if t.dim() > 2 else t


def mahalanobis(net, taps, fit_x, fit_y, queries, eps):
    with torch.no_grad():
        fit = [channel_means(f).numpy() for f in features(net, taps, torch.from_numpy(fit_x))[0]]
    means, precisions = [], []
    for f in fit:
        m = np.stack([f[fit_y == c].mean(0) for c in range(10)])
        centred = f - m[fit_y]
        cov = np.cov(centred.T, bias=1)  # sklearn.covariance.empirical_covariance, assume_centered=False
        means.append(torch.from_numpy(m).float())
        precisions.append(torch.from_numpy(scipy.linalg.pinvh(cov)).float())
    scores = np.zeros((len(queries), len(taps)))
    for layer in range(len(taps)):
        for start in range(0, len(queries), 100):
            data = torch.from_numpy(queries[start:start + 100]).requires_grad_(True)
            out = channel_means(features(net, taps, data)[0][layer])
            zero = out.data.unsqueeze(1) - means[layer].unsqueeze(0)
            gau = -0.5 * torch.einsum("ncd,de,nce->nc", zero, precisions[layer], zero)
            pred = gau.max(1)[1]
            zero_f = out - means[layer][pred]
            pure = -0.5 * torch.einsum("nd,de,ne->n", zero_f, precisions[layer], zero_f)
            torch.mean(-pure).backward()
            gradient = (torch.ge(data.grad.data, 0).float() - 0.5) * 2
            moved = data.data - eps * gradient
            with torch.no_grad():
                out = channel_means(features(net, taps, moved)[0][layer])
                zero = out.unsqueeze(1) - means[layer].unsqueeze(0)
                gau = -0.5 * torch.einsum("ncd,de,nce->nc", zero, precisions[layer], zero)
            scores[start:start + 100, layer] = gau.max(1)[0].numpy()
    return scores


def stratified_folds(y, folds=5):
    """StratifiedKFold(folds), no shuffle, as scikit-learn 0.19 assigns them (the authors' era)."""
    out = np.zeros(len(y), dtype=int)
    for label in (0, 1):
        rows = np.flatnonzero(y == label)
        sizes = [len(rows) // folds + (1 if f < len(rows) % folds else 0) for f in range(folds)]
        out[rows] = np.repeat(np.arange(folds), sizes)
    return out


def fit_lr(x, y, C):
    """min C * sum log(1 + exp(-s (w.x + b))) + |w|^2 / 2 (scikit-learn's lbfgs objective), tightly."""
    s = 2.0 * y - 1

    def f(theta):
        z = x @ theta[:-1] + theta[-1]
        loss = np.logaddexp(0, -s * z)
        g = -s * scipy.special.expit(-s * z)
        grad = np.concatenate([C * x.T @ g + theta[:-1], [C * g.sum()]])
        return C * loss.sum() + 0.5 * theta[:-1] @ theta[:-1], grad

    r = scipy.optimize.minimize(f, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B",
                                options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 100000})
    return r.x[:-1], r.x[-1]


def lr_cv(x, y):
    Cs = np.logspace(-4, 4, 10)
    fold = stratified_folds(y)
    scores = np.zeros(len(Cs))
    for f in range(5):
        tr, te = fold != f, fold == f
        for i, C in enumerate(Cs):
            w, b = fit_lr(x[tr], y[tr], C)
            scores[i] += np.mean(((x[te] @ w + b) > 0).astype(int) == y[te]) / 5
    best = int(np.argmax(scores))
    w, b = fit_lr(x, y, Cs[best])
    return Cs[best], scores, w, b


def mle_batch(data, batch, k):
    """util.py's mle_batch: the nearest of each query (itself, within a minibatch) dropped."""
    data = np.asarray(data, dtype=np.float32)
    batch = np.asarray(batch, dtype=np.float32)
    k = min(k, len(data) - 1)
    a = np.sort(cdist(batch, data), axis=1)[:, 1:k + 1]
    return -k / np.sum(np.log(a / a[:, -1:]), axis=1)


def lid(net, taps, queries, k=20):
    out = np.zeros((len(queries), len(taps) + 1))
    for start in range(0, len(queries), 100):
        x = torch.from_numpy(queries[start:start + 100])
        with torch.no_grad():
            acts = [x.reshape(len(x), -1).numpy()] + [
                t.reshape(len(x), -1).numpy() for t in features(net, taps, x)[0]]
        for layer, a in enumerate(acts):
            out[start:start + 100, layer] = mle_batch(a, a, k)
    return out


def squeeze(net, queries):
    x = queries.transpose(0, 2, 3, 1)  # NHWC, as EvadeML-Zoo's Keras models take them
    squeezed = [np.rint(x * 1) / 1, scipy.ndimage.median_filter(x, size=(1, 2, 2, 1), mode="reflect")]

    def softmax(images):
        with torch.no_grad():
            return torch.softmax(net(torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))), 1).numpy()

    p = softmax(x)
    return np.max([np.abs(p - softmax(s.astype(np.float32))).sum(1) for s in squeezed], axis=0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", default="/tmp/nfp-baselines-check")
    a = parser.parse_args()
    load = lambda name: np.load(os.path.join(a.dir, f"{name}.npy"))  # noqa: E731
    ours = json.load(open(os.path.join(a.dir, "ours.json")))
    taps = [t["tensor"] for t in ours["taps"]]
    net = load_model("fmnist-cnn")
    torch.set_grad_enabled(True)
    fit_x, fit_y, queries = load("fit_images"), load("fit_labels"), load("queries")
    report = {}
    for eps in (0, 0.002):
        ref = mahalanobis(net, taps, fit_x, fit_y, queries, eps)
        mine = load(f"ours_mahalanobis_{eps}")
        rel = np.abs(mine - ref) / np.maximum(np.abs(ref), 1e-3)
        report[f"mahalanobis eps {eps}"] = {
            "max relative difference": float(rel.max()),
            "median relative difference": float(np.median(rel)),
            "share within 1e-4": float(np.mean(rel < 1e-4)),
        }
    x, y = load("regression_x"), load("regression_y")
    C, scores, w, b = lr_cv(x, y)
    mine = ours["regression"]
    z_ref, z_ours = x @ w + b, x @ np.array(mine["weights"]) + mine["bias"]
    report["logistic regression CV"] = {
        "C (reference, ours)": [float(C), mine["C"]],
        "max |cv accuracy difference|": float(np.max(np.abs(scores - np.array(mine["scores"])))),
        "max |log-odds difference| over the rows": float(np.max(np.abs(z_ref - z_ours))),
        "max |log-odds|": float(np.max(np.abs(z_ref))),
    }
    ref = lid(net, taps, queries)
    mine = load("ours_lid")
    rel = np.abs(mine - ref) / np.abs(ref)
    report["lid within minibatches"] = {"max relative difference": float(rel.max()), "layers": len(taps) + 1}
    ref = squeeze(net, queries)
    mine = load("ours_squeeze")
    report["feature squeezing"] = {"max |score difference|": float(np.max(np.abs(mine - ref))),
                                   "score range": [float(ref.min()), float(ref.max())]}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
