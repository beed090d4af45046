"""Train the vit_fashion ViT in PyTorch on a Fashion-MNIST subset with glimpse's recipe, to compare
learning curves with `glimpse train` (a check of training dynamics, not a benchmark).

usage: python3 tools/torch_vit_fashion_probe.py SUBSET EPOCHS LR [avg]
"""
import gzip
import importlib.util
import math
import sys

import numpy as np
import torch
import torch.nn.functional as F

spec = importlib.util.spec_from_file_location("tts", "bench/peers/torch_train_step.py")
src = open("bench/peers/torch_train_step.py").read().split("batch, threads, iterations")[0]
ns = {}
exec(src, ns)
SmallViT = ns["SmallViT"]

D = "/usr/share/datasets/fashion-mnist/"


def idx(name, off):
    return np.frombuffer(gzip.open(D + name).read(), np.uint8, offset=off)


xtr = idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28).astype(np.float32) / 255
ytr = idx("train-labels-idx1-ubyte.gz", 8).astype(np.int64)
xte = idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28).astype(np.float32) / 255
yte = idx("t10k-labels-idx1-ubyte.gz", 8).astype(np.int64)
mean, std = xtr.mean(), xtr.std()
subset, epochs, lr = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
torch.manual_seed(0)
torch.set_num_threads(1)
rng = np.random.default_rng(0)
sel = rng.permutation(len(xtr))[:subset]
xtr, ytr = torch.tensor((xtr[sel] - mean) / std), torch.tensor(ytr[sel])
xte, yte = torch.tensor((xte - mean) / std), torch.tensor(yte)
model = SmallViT()
torch.nn.init.trunc_normal_(model.pos_embed, std=0.02)
for m in model.modules():
    if isinstance(m, torch.nn.Linear):
        torch.nn.init.trunc_normal_(m.weight, std=0.02)
        torch.nn.init.zeros_(m.bias)
decay = [p for n, p in model.named_parameters() if p.ndim > 1 and "token" not in n and "pos_embed" not in n]
no_decay = [p for n, p in model.named_parameters() if not (p.ndim > 1 and "token" not in n and "pos_embed" not in n)]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}], lr=lr)
B = 128
steps_per_epoch = subset // B
total, warm = steps_per_epoch * epochs, steps_per_epoch // 2
step = 0
for ep in range(epochs):
    model.train()
    perm = torch.randperm(subset)
    for i in range(steps_per_epoch):
        b = perm[i * B:(i + 1) * B]
        x = F.pad(xtr[b], (2, 2, 2, 2), value=float(-mean / std))
        ox, oy = np.random.randint(0, 5, 2)
        x = x[:, :, oy:oy + 28, ox:ox + 28]
        flip = torch.rand(B) < 0.5
        x[flip] = x[flip].flip(-1)
        cur = lr * (step + 1) / warm if step < warm else 1e-5 + (lr - 1e-5) * 0.5 * (1 + math.cos(math.pi * (step - warm) / (total - warm)))
        for g in opt.param_groups:
            g["lr"] = cur
        loss = F.cross_entropy(model(x), ytr[b], label_smoothing=0.1)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
    model.eval()
    with torch.no_grad():
        acc = sum((model(xte[i:i + 500]).argmax(1) == yte[i:i + 500]).sum().item() for i in range(0, 10000, 500)) / 10000
    print(f"epoch {ep} loss {loss.item():.4f} eval {acc:.4f}", flush=True)
