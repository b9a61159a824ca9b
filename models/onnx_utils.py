"""Helpers shared by the ONNX export scripts."""

from __future__ import annotations

from pathlib import Path


def tidy_onnx(path: Path | str) -> None:
    """Make the exported graph easier to consume.

    * torch 1.13 de-duplicates identical constants (e.g. all-zero folded BN
      biases) and inserts Identity nodes in front of the graph; replace them by
      copies of the initializer so the normalization Sub is the first node.
    * give initializers created by constant folding (``onnx::Conv_123``)
      readable names derived from the consuming node, e.g. ``layer1.conv1.weight``.
    """
    import onnx

    m = onnx.load(str(path))
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    keep = []
    for node in g.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            t = onnx.TensorProto()
            t.CopyFrom(inits[node.input[0]])
            t.name = node.output[0]
            g.initializer.append(t)
            inits[t.name] = t
        else:
            keep.append(node)
    # Put the normalization (Sub, Div on the graph input) first; it only depends
    # on the input and initializers, so the order stays topological.
    sub = next((n for n in keep if n.op_type == "Sub" and n.input[0] == g.input[0].name), None)
    div = sub and next((n for n in keep if n.op_type == "Div" and n.input[0] == sub.output[0]), None)
    if sub is not None and div is not None:
        keep = [sub, div] + [n for n in keep if n is not sub and n is not div]
    del g.node[:]
    g.node.extend(keep)

    users: dict[str, list] = {}
    for node in g.node:
        for i, name in enumerate(node.input):
            users.setdefault(name, []).append((node, i))
    used = set(users)
    for t in list(g.initializer):
        if t.name not in used:
            g.initializer.remove(t)
    taken = {t.name for t in g.initializer}
    for t in g.initializer:
        if not t.name.startswith("onnx::") or len(users.get(t.name, [])) != 1:
            continue
        node, idx = users[t.name][0]
        if node.op_type not in ("Conv", "Gemm", "MatMul") or idx == 0:
            continue
        base = node.name.strip("/").rsplit("/", 1)[0].replace("/", ".")
        if idx == 1:  # MatMul weights are the transposed nn.Linear weight
            new = f"{base}.{'weight_t' if node.op_type == 'MatMul' else 'weight'}"
        else:
            new = f"{base}.bias"
        if not base or new in taken:
            continue
        taken.add(new)
        node.input[idx] = new
        t.name = new
    onnx.save(m, str(path))


OPSET = 17


def export_classifier(model, dummy, path, opset: int = OPSET) -> None:
    """Export an image classifier the way every model of this project is exported: input "input",
    output "logits", a dynamic batch axis, opset 17 (unless told), constants folded, eval mode; then
    tidy it."""
    import torch

    torch.onnx.export(
        model,
        dummy,
        str(path),
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=opset,
        do_constant_folding=True,
        training=torch.onnx.TrainingMode.EVAL,
        export_params=True,
    )
    tidy_onnx(path)
