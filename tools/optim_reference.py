"""Reference trajectories of torch.optim for test/optim: writes test/fixtures/optim/torch_optim.safetensors.

Run: /usr/bin/python3 tools/optim_reference.py
Two parameters (a (3, 4) weight and a (5,) bias) in two groups with different lr/weight decay, a
fixed gradient sequence of 4 steps, and the parameters after each step for every optimizer case.
"""
import json
import struct
from pathlib import Path

import torch

torch.manual_seed(0)
STEPS = 4
w0 = torch.randn(3, 4)
b0 = torch.randn(5)
grads = [(torch.randn(3, 4), torch.randn(5)) for _ in range(STEPS)]

CASES = {
    "sgd": (torch.optim.SGD, dict(lr=0.1)),
    "sgd_momentum": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    "sgd_nesterov": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.05)),
    "adam": (torch.optim.Adam, dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.02)),
    "adam_amsgrad": (torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, amsgrad=True)),
    "adamw": (torch.optim.AdamW, dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05)),
}

tensors = {"w0": w0, "b0": b0}
for i, (gw, gb) in enumerate(grads):
    tensors[f"grad.{i}.w"] = gw
    tensors[f"grad.{i}.b"] = gb

for name, (cls, kw) in CASES.items():
    w = w0.clone().requires_grad_()
    b = b0.clone().requires_grad_()
    # Second group: half the lr and no weight decay (the no-decay group of a real model).
    opt = cls([{"params": [w]}, {"params": [b], "lr": kw["lr"] / 2, "weight_decay": 0.0}], **kw)
    for i, (gw, gb) in enumerate(grads):
        w.grad = gw.clone()
        b.grad = gb.clone()
        opt.step()
        tensors[f"{name}.{i}.w"] = w.detach().clone()
        tensors[f"{name}.{i}.b"] = b.detach().clone()

# clip_grad_norm_ over both gradients, norm 2 and inf, clipping active.
for norm_type in (2.0, float("inf")):
    w = w0.clone().requires_grad_()
    b = b0.clone().requires_grad_()
    w.grad = grads[0][0].clone()
    b.grad = grads[0][1].clone()
    total = torch.nn.utils.clip_grad_norm_([w, b], max_norm=0.5, norm_type=norm_type)
    tag = "2" if norm_type == 2.0 else "inf"
    tensors[f"clip.{tag}.w"] = w.grad.clone()
    tensors[f"clip.{tag}.b"] = b.grad.clone()
    tensors[f"clip.{tag}.total"] = total.reshape(1).clone()

meta = {
    "generated_by": "tools/optim_reference.py",
    "torch": torch.__version__,
    "steps": str(STEPS),
    "cases": json.dumps({k: {kk: list(vv) if isinstance(vv, tuple) else vv for kk, vv in v[1].items()} for k, v in CASES.items()}),
    "groups": "group 0: w (3,4) with the case's lr and weight_decay; group 1: b (5,) with lr/2 and weight_decay 0",
}
header = {"__metadata__": meta}
blobs = []
offset = 0
for k, t in tensors.items():
    data = t.contiguous().to(torch.float32).numpy().tobytes()
    header[k] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
    blobs.append(data)
    offset += len(data)
h = json.dumps(header).encode()
h += b" " * ((8 - (8 + len(h)) % 8) % 8)
out = Path(__file__).resolve().parent.parent / "test/fixtures/optim/torch_optim.safetensors"
out.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))
print(f"wrote {out} ({len(tensors)} tensors)")
