"""PyTorch twin of glimpse's vit_fashion training step for bench/train_step.ts.

usage: python3 bench/peers/torch_train_step.py BATCH THREADS ITERATIONS
The model is the preset's ViT written out in plain torch.nn with timm's layout: 4x4 patches of a
28x28 gray image, 128 wide, 6 blocks of 4 heads, MLP ratio 2, class token, LayerNorm eps 1e-6,
exact GELU. A step is what glimpse's trainer does: forward, cross-entropy with label smoothing 0.1,
zero_grad, backward, gradient-norm clip to 1, AdamW (decay on weights only). Prints
{"imagesPerSecond", "peakRssMB", "torch", "threads", "parameters"} as JSON: the best of ITERATIONS
timed steps after two warm-up steps, on random images and labels.
"""
import json
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5
        x = attn.softmax(dim=-1) @ v
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class SmallViT(nn.Module):
    def __init__(self, img=28, patch=4, chans=1, dim=128, depth=6, heads=4, mlp_ratio=2, classes=10):
        super().__init__()
        self.patch_embed = nn.Conv2d(chans, dim, patch, stride=patch)
        tokens = (img // patch) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


batch, threads, iterations = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(0)
model = SmallViT().train()
decay = [p for n, p in model.named_parameters() if p.ndim > 1 and "token" not in n and "pos_embed" not in n]
no_decay = [p for n, p in model.named_parameters() if not (p.ndim > 1 and "token" not in n and "pos_embed" not in n)]
optimizer = torch.optim.AdamW(
    [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}], lr=1.5e-3
)
x = torch.randn(batch, 1, 28, 28)
y = torch.randint(0, 10, (batch,))


def step():
    loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss.item()


step()
step()
best = float("inf")
for _ in range(iterations):
    t0 = time.perf_counter()
    step()
    best = min(best, time.perf_counter() - t0)
print(
    json.dumps(
        {
            "imagesPerSecond": batch / best,
            "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "parameters": sum(p.numel() for p in model.parameters()),
        }
    )
)
