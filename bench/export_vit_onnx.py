"""Exports torchvision's vit_b_16 (random weights: only speed is measured) to ONNX for bench/vit.ts.

usage: python3 bench/export_vit_onnx.py OUT.onnx
The graph has a dynamic batch axis; input "input" (B, 3, 224, 224), output "logits" (B, 1000).
"""
import sys

import torch
import torchvision

torch.manual_seed(0)
model = torchvision.models.vit_b_16().eval()
x = torch.randn(1, 3, 224, 224)
torch.onnx.export(
    model,
    x,
    sys.argv[1],
    input_names=["input"],
    output_names=["logits"],
    dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    opset_version=14,
)
