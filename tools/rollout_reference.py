#!/usr/bin/env python3
"""Independent reference values for glimpse's explainers, written from the papers' definitions.

Reads the attention maps timm stored in test/fixtures/peers/timm_vit.io.safetensors (attn.0..attn.2,
(B=2, heads=4, N=65, N), img 32, patch 4: an 8 x 8 grid behind one class token) and
timm_deit_distilled.io.safetensors (2 prefix tokens), and freezes into
test/fixtures/explain/reference.safetensors:

  vit.rollout.matrix         (B, N, N)  R = A_L ... A_1, A = rownorm((mean_heads(attn) + I) / 2)
  vit.rollout.map            (B, 8, 8)  R[:, 0, 1:] scaled to max 1
  vit.rollout_max_d09.map    (B, 8, 8)  max over heads, lowest 90% of fused weights zeroed except
                                         the class token's column (ascending stable ranking)
  vit.rollout_min.map        (B, 8, 8)  min over heads
  vit.mad                    (L, heads) mean attention distance in pixels (ViT paper, Fig. 7)
  vit.flow                   (B, N)     max-flow from each input token (0, j) to the output class
                                         token (L, 0) in the layered graph with capacities A_l
                                         (networkx Edmonds-Karp, as Abnar & Zuidema's code, checked
                                         against a linear program solved by scipy)
  deit.rollout.maps          (B, 2, 8, 8)  class- and distillation-token rows, each scaled to max 1
  deit.mad                   (L, heads)
  swin.rollout.rows          (B, 8, 256)  rows 0, 8, ..., 56 of the (B, 64, 256) rollout of timm_swin (img 64, patch 4, window 4, depths [2, 2]): every
                                         block's window attention placed in a dense global matrix by
                                         np.roll-ing a grid of token ids like timm rolls the features,
                                         patch merging as the mean of each 2x2 block's rows
  swin.rollout.map           (B, 16, 16)  the mean of those rows, scaled to max 1

Run with /usr/bin/python3 (numpy, scipy, networkx): python3 tools/rollout_reference.py
"""

import json
import os
import struct

import networkx as nx
import numpy as np
from scipy.optimize import linprog

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
PEERS = os.path.join(ROOT, "test", "fixtures", "peers")
OUT = os.path.join(ROOT, "test", "fixtures", "explain", "reference.safetensors")


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    body = raw[8 + n :]
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        assert meta["dtype"] == "F32", (name, meta["dtype"])
        a, b = meta["data_offsets"]
        out[name] = np.frombuffer(body[a:b], dtype="<f4").reshape(meta["shape"]).astype(np.float64)
    return out


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * ((8 - len(head) % 8) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + b"".join(chunks))


def attentions_of(io):
    layers = sorted((k for k in io if k.startswith("attn.")), key=lambda k: int(k.split(".")[1]))
    return [io[k] for k in layers]


def transition(attn, fusion, discard, prefix):
    """One layer's A = rownorm((W + I) / 2) for each image, W the fused and pruned weights."""
    W = {"mean": attn.mean(axis=1), "max": attn.max(axis=1), "min": attn.min(axis=1)}[fusion].copy()
    B, N, _ = W.shape
    for b in range(B):
        flat = W[b].reshape(-1)
        lowest = np.argsort(flat, kind="stable")[: int(np.floor(discard * N * N))]
        lowest = lowest[lowest % N >= prefix]  # attention paid to a prefix token is never dropped
        flat[lowest] = 0.0
        W[b] = flat.reshape(N, N)
    A = (W + np.eye(N)[None]) / 2
    return A / A.sum(axis=-1, keepdims=True)


def rollout(attentions, fusion="mean", discard=0.0, prefix=1):
    R = None
    for attn in attentions:
        A = transition(attn, fusion, discard, prefix)
        R = A if R is None else A @ R
    return R


def token_maps(R, tokens, prefix, grid):
    maps = []
    for t in tokens:
        row = R[:, t, prefix:]
        maps.append(row / row.max(axis=-1, keepdims=True))
    return np.stack(maps, axis=1).reshape(R.shape[0], len(tokens), *grid)


def mean_attention_distance(attentions, grid, patch, prefix):
    gh, gw = grid
    centers = np.array([((r + 0.5) * patch, (c + 0.5) * patch) for r in range(gh) for c in range(gw)])
    D = np.sqrt(((centers[:, None, :] - centers[None, :, :]) ** 2).sum(-1))  # (P, P) pixels
    out = []
    for attn in attentions:
        a = attn[:, :, prefix:, prefix:]  # (B, H, P, P), not renormalized
        per_query = (a * D[None, None]).sum(-1)  # (B, H, P)
        out.append(per_query.mean(axis=(0, 2)))
    return np.array(out)


def flow_graph(As, b):
    """Abnar & Zuidema's layered graph: node (l, i) -> (l-1, k) with capacity A_l[i, k]."""
    L = len(As)
    N = As[0].shape[-1]
    G = nx.DiGraph()
    for l in range(1, L + 1):
        for i in range(N):
            for k in range(N):
                G.add_edge((l, i), (l - 1, k), capacity=float(As[l - 1][b, i, k]))
    return G


def flow_lp(As, b, source, sink):
    """The same max-flow as a linear program: maximize the flow into (0, sink)."""
    L = len(As)
    N = As[0].shape[-1]
    edges = [(l, i, k) for l in range(1, L + 1) for i in range(N) for k in range(N)]
    index = {e: n for n, e in enumerate(edges)}
    c = np.zeros(len(edges))
    for i in range(N):
        c[index[(1, i, sink)]] = -1.0
    rows = []
    for l in range(1, L):  # conservation at every node of layers 1..L-1
        for j in range(N):
            row = np.zeros(len(edges))
            for i in range(N):
                row[index[(l + 1, i, j)]] += 1.0  # in
            for k in range(N):
                row[index[(l, j, k)]] -= 1.0  # out
            rows.append(row)
    A_eq = np.array(rows)
    bounds = []
    for l, i, k in edges:
        cap = As[l - 1][b, i, k]
        if l == L and i != source:
            cap = 0.0  # only the output token emits flow
        if l == 1 and k != sink:
            cap = 0.0  # only the chosen input token absorbs it
        bounds.append((0.0, cap))
    res = linprog(c, A_eq=A_eq, b_eq=np.zeros(len(rows)), bounds=bounds, method="highs")
    assert res.status == 0, res.message
    return -res.fun


def attention_flow(attentions, source=0):
    As = [transition(a, "mean", 0.0, 1) for a in attentions]
    B, N, _ = As[0].shape
    L = len(As)
    out = np.zeros((B, N))
    for b in range(B):
        G = flow_graph(As, b)
        for j in range(N):
            out[b, j] = nx.maximum_flow_value(G, (L, source), (0, j), flow_func=nx.algorithms.flow.edmonds_karp)
        for j in (0, 1, N // 2, N - 1):
            lp = flow_lp(As, b, source, j)
            assert abs(lp - out[b, j]) < 1e-7, (b, j, lp, out[b, j])
    return out


def swin_rollout(attentions, grid, window, depths):
    H, W = grid
    B = attentions[0].shape[0] // ((H // window) * (W // window))
    R = np.broadcast_to(np.eye(H * W), (B, H * W, H * W)).copy()
    layer = 0
    for stage, depth in enumerate(depths):
        if stage > 0:  # patch merging: each 2x2 block of tokens becomes one, rows averaged
            M = np.zeros(((H // 2) * (W // 2), H * W))
            for i in range(H // 2):
                for j in range(W // 2):
                    for a in (0, 1):
                        for b in (0, 1):
                            M[i * (W // 2) + j, (2 * i + a) * W + 2 * j + b] = 0.25
            R = M[None] @ R
            H, W = H // 2, W // 2
        win = min(H, W) if min(H, W) <= window else window
        for blk in range(depth):
            shift = 0 if (min(H, W) <= window or blk % 2 == 0) else window // 2
            ids = np.roll(np.arange(H * W).reshape(H, W), (-shift, -shift), axis=(0, 1))
            ids = ids.reshape(H // win, win, W // win, win).transpose(0, 2, 1, 3).reshape(-1, win * win)
            fused = attentions[layer].mean(axis=1)  # (B*nW, T, T)
            A_win = (fused + np.eye(win * win)[None]) / 2
            A_win = A_win / A_win.sum(-1, keepdims=True)
            nW = ids.shape[0]
            G = np.zeros((B, H * W, H * W))
            for b in range(B):
                for w in range(nW):
                    G[b][np.ix_(ids[w], ids[w])] = A_win[b * nW + w]
            R = G @ R
            layer += 1
    m = R.mean(axis=1)
    return R, (m / m.max(axis=-1, keepdims=True)).reshape(B, *grid)


def main():
    vit = attentions_of(read_safetensors(os.path.join(PEERS, "timm_vit.io.safetensors")))
    deit = attentions_of(read_safetensors(os.path.join(PEERS, "timm_deit_distilled.io.safetensors")))
    grid = (8, 8)  # img 32 / patch 4
    out = {}
    R = rollout(vit)
    assert np.allclose(R.sum(-1), 1.0)
    out["vit.rollout.matrix"] = R
    out["vit.rollout.map"] = token_maps(R, [0], 1, grid)[:, 0]
    out["vit.rollout_max_d09.map"] = token_maps(rollout(vit, "max", 0.9), [0], 1, grid)[:, 0]
    out["vit.rollout_min.map"] = token_maps(rollout(vit, "min"), [0], 1, grid)[:, 0]
    out["vit.mad"] = mean_attention_distance(vit, grid, 4, 1)
    out["vit.flow"] = attention_flow(vit)
    out["deit.rollout.maps"] = token_maps(rollout(deit, prefix=2), [0, 1], 2, grid)
    out["deit.mad"] = mean_attention_distance(deit, grid, 4, 2)
    swin = attentions_of(read_safetensors(os.path.join(PEERS, "timm_swin.io.safetensors")))
    R, out["swin.rollout.map"] = swin_rollout(swin, (16, 16), 4, [2, 2])
    assert np.allclose(R.sum(-1), 1.0)
    out["swin.rollout.rows"] = R[:, ::8, :]
    write_safetensors(OUT, out, {"generated_by": "tools/rollout_reference.py"})
    print(f"wrote {os.path.relpath(OUT, ROOT)}: " + ", ".join(f"{k} {list(v.shape)}" for k, v in sorted(out.items())))


if __name__ == "__main__":
    main()
