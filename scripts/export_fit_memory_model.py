#!/usr/bin/env python3
"""ResNet-50 (torchvision, random weights, 224x224) with a 10-class head standardized on random images,
so that a random-weight network predicts several classes (a plain random ResNet-50 predicts one class for
almost every input, and a fit needs images of other classes to attack): the model of the fit-memory
check (scripts/fit-memory.ts). Writes models/cache/resnet50-10-224.onnx.

    /usr/bin/python3 scripts/export_fit_memory_model.py
"""
import os
import sys

import torch
import torchvision

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
sys.path.insert(0, os.path.join(ROOT, 'models'))
from onnx_utils import export_classifier  # noqa: E402
torch.manual_seed(0)
m = torchvision.models.resnet50(weights=None)
m.fc = torch.nn.Linear(2048, 10)
m.eval()
x = torch.rand(64, 3, 224, 224)
with torch.no_grad():
    z = m(x)
    mean, std = z.mean(0), z.std(0)
    m.fc.weight.div_(std[:, None]); m.fc.bias.sub_(mean).div_(std)
    print(torch.bincount(m(torch.rand(64, 3, 224, 224)).argmax(1), minlength=10))
os.makedirs(os.path.join(ROOT, 'models', 'cache'), exist_ok=True)
export_classifier(m, torch.rand(2, 3, 224, 224), os.path.join(ROOT, 'models', 'cache', 'resnet50-10-224.onnx'))
