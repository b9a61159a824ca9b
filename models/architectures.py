"""Small Fashion-MNIST classifiers used by neural-fingerprints.

Every model takes float32 pixels in [0, 1] with shape [N, 1, 28, 28] and
returns logits [N, 10]. The dataset normalization is the first module
(``norm``) so that it ends up as the first operation of the exported ONNX
graph.

    from architectures import build
    model = build("cnn")            # or "resnet", "vit"
    model.load_state_dict(torch.load("models/cache/fmnist-cnn.pt"))
"""

from __future__ import annotations

import torch
from torch import nn

MEAN = 0.2860
STD = 0.3530

CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


class Normalize(nn.Module):
    """(x - mean) / std with the constants stored as buffers."""

    def __init__(self, mean: float = MEAN, std: float = STD) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([mean], dtype=torch.float32).view(1, 1, 1, 1))
        self.register_buffer("std", torch.tensor([std], dtype=torch.float32).view(1, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


# --------------------------------------------------------------------------
# cnn: plain VGG-style network
# --------------------------------------------------------------------------


class FashionCNN(nn.Module):
    """3 x (conv3x3 + ReLU + maxpool2) -> FC 128 -> ReLU -> dropout -> FC 10."""

    description = (
        "VGG-style CNN: 3 blocks of conv3x3+ReLU+maxpool2 (32, 64, 128 channels; "
        "28->14->7->3), then Linear(1152,128)+ReLU+Dropout(0.25)+Linear(128,10)"
    )

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.norm = Normalize()
        self.features = nn.Sequential()
        self.features.add_module("conv1", nn.Conv2d(1, 32, 3, padding=1))
        self.features.add_module("relu1", nn.ReLU())
        self.features.add_module("pool1", nn.MaxPool2d(2))  # 14x14
        self.features.add_module("conv2", nn.Conv2d(32, 64, 3, padding=1))
        self.features.add_module("relu2", nn.ReLU())
        self.features.add_module("pool2", nn.MaxPool2d(2))  # 7x7
        self.features.add_module("conv3", nn.Conv2d(64, 128, 3, padding=1))
        self.features.add_module("relu3", nn.ReLU())
        self.features.add_module("pool3", nn.MaxPool2d(2))  # 3x3
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential()
        self.classifier.add_module("fc1", nn.Linear(128 * 3 * 3, 128))
        self.classifier.add_module("relu", nn.ReLU())
        self.classifier.add_module("dropout", nn.Dropout(0.25))
        self.classifier.add_module("fc2", nn.Linear(128, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        x = self.features(x)
        x = self.flatten(x)
        return self.classifier(x)


# --------------------------------------------------------------------------
# resnet: small residual network with BatchNorm
# --------------------------------------------------------------------------


class BasicBlock(nn.Module):
    """ResNet basic block: conv3x3-BN-ReLU-conv3x3-BN (+ shortcut) -> ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential()
            self.shortcut.add_module("conv", nn.Conv2d(cin, cout, 1, stride=stride, bias=False))
            self.shortcut.add_module("bn", nn.BatchNorm2d(cout))
        else:
            self.shortcut = nn.Identity()
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class FashionResNet(nn.Module):
    """stem conv3x3(24) -> 3 basic blocks (24@14x14, 48@7x7, 96@4x4) -> GAP -> FC."""

    description = (
        "ResNet-style CNN with BatchNorm: stem conv3x3(24)+BN+ReLU at 28x28, "
        "basic blocks 24@14x14, 48@7x7, 96@4x4 (each stride 2, 1x1 projection "
        "shortcuts), global average pool, Linear(96,10)"
    )

    def __init__(self, num_classes: int = 10, widths: tuple[int, int, int] = (24, 48, 96)) -> None:
        super().__init__()
        w1, w2, w3 = widths
        self.norm = Normalize()
        self.stem = nn.Sequential()
        self.stem.add_module("conv", nn.Conv2d(1, w1, 3, padding=1, bias=False))
        self.stem.add_module("bn", nn.BatchNorm2d(w1))
        self.stem.add_module("relu", nn.ReLU())
        self.layer1 = BasicBlock(w1, w1, stride=2)  # 14x14
        self.layer2 = BasicBlock(w1, w2, stride=2)  # 7x7
        self.layer3 = BasicBlock(w2, w3, stride=2)  # 4x4
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(w3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        x = self.stem(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.flatten(self.pool(x))
        return self.fc(x)


# --------------------------------------------------------------------------
# vit: small vision transformer
# --------------------------------------------------------------------------


class Attention(nn.Module):
    """Multi-head self-attention written with plain ops (clean ONNX export).

    Shapes are reshaped with a constant token count and -1 for the batch so the
    exported graph needs no Shape/Gather arithmetic.
    """

    def __init__(self, dim: int, heads: int, tokens: int) -> None:
        super().__init__()
        assert dim % heads == 0
        self.dim = dim
        self.heads = heads
        self.tokens = tokens
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        return t.reshape(-1, self.tokens, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).split([self.dim, self.dim, self.dim], dim=-1)
        q, k, v = self._split_heads(q), self._split_heads(k), self._split_heads(v)
        attn = torch.matmul(q * self.scale, k.transpose(-2, -1)).softmax(dim=-1)
        out = torch.matmul(attn, v).transpose(1, 2).reshape(-1, self.tokens, self.dim)
        return self.proj(out)


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class TransformerBlock(nn.Module):
    """Pre-norm block: x + attn(LN(x)); x + mlp(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, tokens: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, tokens)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class FashionViT(nn.Module):
    """Patch-4 ViT: 49 patch tokens, pre-norm blocks, LN, mean pool, linear head."""

    def __init__(
        self,
        num_classes: int = 10,
        patch: int = 4,
        dim: int = 96,
        depth: int = 3,
        heads: int = 4,
        mlp_ratio: float = 2.0,
    ) -> None:
        super().__init__()
        tokens = (28 // patch) ** 2
        self.description = (
            f"ViT: {patch}x{patch} patch embedding (Conv stride {patch}) to {tokens} tokens "
            f"of dim {dim} + learned position embedding, {depth} pre-norm transformer blocks "
            f"({heads} heads, LayerNorm, GELU MLP {int(dim * mlp_ratio)}), final LayerNorm, "
            f"mean pool over tokens, Linear({dim},10)"
        )
        self.dim = dim
        self.tokens = tokens
        self.depth = depth
        self.norm = Normalize()
        self.patch_embed = nn.Conv2d(1, dim, patch, stride=patch)
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        # Blocks are direct attributes (block1, block2, ...) so ONNX node names
        # read /block1/attn/..., /block2/mlp/fc2/... .
        for i in range(1, depth + 1):
            self.add_module(f"block{i}", TransformerBlock(dim, heads, mlp_ratio, tokens))
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        x = self.patch_embed(x).reshape(-1, self.dim, self.tokens).transpose(1, 2)  # [b, tokens, dim]
        x = x + self.pos_embed
        for i in range(1, self.depth + 1):
            x = getattr(self, f"block{i}")(x)
        x = self.ln(x).mean(dim=1)
        return self.head(x)


ARCHITECTURES = {
    "cnn": FashionCNN,
    "resnet": FashionResNet,
    "vit": FashionViT,
}


def build(name: str) -> nn.Module:
    """Build an (untrained) architecture by short name: cnn, resnet or vit."""
    try:
        return ARCHITECTURES[name]()
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; choose from {sorted(ARCHITECTURES)}") from None


def describe(model: nn.Module) -> str:
    return getattr(model, "description", type(model).__name__)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
