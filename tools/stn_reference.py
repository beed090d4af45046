"""Reference outputs and gradients of a whole spatial transformer layer (glimpse's SpatialTransformer
with the built-in conv localization net) in torch, for test/models/stn.test.ts.

For each transform T in affine, attention, rts, tps: the layer's parameters under glimpse's names
(T.localization.conv1.weight, ..., T.fc_loc.bias), T.input (N, C, H, W), T.output, T.upstream and the
gradients of sum(output * upstream) wrt the input (T.grad.input) and every parameter
(T.grad.<name>). Weights are torch's default init except fc_loc, which is random (not the identity
init) so that theta depends on the input and every gradient is non-zero.

Writes test/fixtures/stn/torch_st_layer.io.safetensors.
Usage: /usr/bin/python3 tools/stn_reference.py
"""
import json, math, os, struct
import torch, torch.nn as nn, torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "stn")
torch.manual_seed(2015)
N, C, H, W = 2, 1, 20, 18
HO, WO = 9, 11
DOWNSAMPLE, C1, C2, HIDDEN, TPS_GRID = 2, 4, 6, 8, 3


class ConvLocalization(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(C, C1, 5, padding=2)
        self.conv2 = nn.Conv2d(C1, C2, 3, padding=1)
        h, w = (s // DOWNSAMPLE // 2 // 2 for s in (H, W))
        self.fc = nn.Linear(C2 * h * w, HIDDEN)

    def forward(self, x):
        y = F.max_pool2d(x, DOWNSAMPLE)
        y = F.relu(F.max_pool2d(self.conv1(y), 2))
        y = F.relu(F.max_pool2d(self.conv2(y), 2))
        return F.relu(self.fc(y.flatten(1)))


def tps_matrix(points, control):
    """(P, K): grid = M @ targets for a thin-plate spline through the control points (float64)."""
    def u(d2):
        return torch.where(d2 > 0, d2 * torch.log(d2.clamp_min(1e-300)), torch.zeros_like(d2))
    k = control.shape[0]
    L = torch.zeros(k + 3, k + 3, dtype=torch.float64)
    L[:k, :k] = u(((control[:, None] - control[None]) ** 2).sum(-1))
    P = torch.cat([torch.ones(k, 1, dtype=torch.float64), control], 1)
    L[:k, k:] = P
    L[k:, :k] = P.T
    rhs = torch.zeros(k + 3, k, dtype=torch.float64)
    rhs[:k] = torch.eye(k, dtype=torch.float64)
    coef = torch.linalg.solve(L, rhs)
    basis = torch.cat([u(((points[:, None] - control[None]) ** 2).sum(-1)),
                       torch.ones(points.shape[0], 1, dtype=torch.float64), points], 1)
    return (basis @ coef).float()


def control_points(n):
    lin = torch.linspace(-1, 1, n, dtype=torch.float64)
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    return torch.stack([xx.flatten(), yy.flatten()], 1)


IDENTITY = {
    "affine": [1, 0, 0, 0, 1, 0],
    "attention": [1, 0, 0],
    "rts": [0, 1, 0, 0],
    "tps": control_points(TPS_GRID).flatten().tolist(),
}


def grid_of(transform, p):
    n = p.shape[0]
    if transform == "tps":
        base = F.affine_grid(torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]]]), (1, 1, HO, WO), align_corners=False)
        m = tps_matrix(base.reshape(-1, 2).double(), control_points(TPS_GRID))
        return (m @ p.view(n, -1, 2)).view(n, HO, WO, 2)
    if transform == "affine":
        theta = p.view(n, 2, 3)
    elif transform == "attention":
        s, tx, ty = p.unbind(1)
        z = torch.zeros_like(s)
        theta = torch.stack([s, z, tx, z, s, ty], 1).view(n, 2, 3)
    else:
        a, s, tx, ty = p.unbind(1)
        c, sn = s * torch.cos(a), s * torch.sin(a)
        theta = torch.stack([c, -sn, tx, sn, c, ty], 1).view(n, 2, 3)
    return F.affine_grid(theta, (n, C, HO, WO), align_corners=False)


tensors = {}
for transform, identity in IDENTITY.items():
    loc = ConvLocalization()
    fc_loc = nn.Linear(HIDDEN, len(identity))
    with torch.no_grad():
        fc_loc.weight.normal_(0, 0.15)
        fc_loc.bias.copy_(torch.tensor(identity) + 0.05 * torch.randn(len(identity)))
    x = torch.randn(N, C, H, W, requires_grad=True)
    grid = grid_of(transform, fc_loc(loc(x)))
    y = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    up = torch.randn_like(y)
    (y * up).sum().backward()
    params = [(f"localization.{k}", v) for k, v in loc.named_parameters()] + \
             [(f"fc_loc.{k}", v) for k, v in fc_loc.named_parameters()]
    for name, p in params:
        tensors[f"{transform}.{name}"] = p.detach()
        tensors[f"{transform}.grad.{name}"] = p.grad
    tensors[f"{transform}.input"] = x.detach()
    tensors[f"{transform}.grad.input"] = x.grad
    tensors[f"{transform}.output"] = y.detach()
    tensors[f"{transform}.upstream"] = up

os.makedirs(OUT, exist_ok=True)
header, blobs, off = {"__metadata__": {"generated_by": "tools/stn_reference.py", "torch": torch.__version__,
                                       "config": json.dumps({"N": N, "C": C, "H": H, "W": W, "HO": HO, "WO": WO,
                                                             "downsample": DOWNSAMPLE, "channels": [C1, C2],
                                                             "hidden": HIDDEN, "tpsGrid": TPS_GRID})}}, [], 0
for k in sorted(tensors):
    b = tensors[k].detach().contiguous().float().numpy().tobytes()
    header[k] = {"dtype": "F32", "shape": list(tensors[k].shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b)
    off += len(b)
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open(os.path.join(OUT, "torch_st_layer.io.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h)))
    f.write(h)
    for b in blobs:
        f.write(b)
print(len(tensors), "tensors,", off, "bytes")
