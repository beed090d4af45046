"""Reference outputs and gradients of torch's spatial ops for test/ops/{conv,pool,resample}.test.ts.

Covers the option combinations the shared torch_conv / torch_interpolate / torch_stn fixtures do not
(dilation, groups, 'same' padding, output padding, ceil mode, count_include_pad, divisor override,
adaptive pooling, every interpolate mode with scale factors and antialiasing, every grid_sample
padding mode, unfold/fold, pixel shuffle).

Writes test/fixtures/spatial/torch_spatial.io.safetensors with, per case C: C.in0, C.in1, ... (inputs),
C.out, C.upstream and C.grad0, ... (gradients of sum(out * upstream) wrt each float input), and
torch_spatial.json: per case the glimpse call F[fn](...inputs, ...args, opts?).
Usage: /usr/bin/python3 tools/gen_spatial_fixtures.py
"""
import json, os, struct
import torch, torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "spatial")
g = torch.Generator().manual_seed(2024)
rn = lambda *s: torch.randn(*s, generator=g)
cases, tensors = {}, {}


def case(name, fn, inputs, torch_call, args=(), opts=None):
    ins = [t.clone().requires_grad_(t.dtype == torch.float32) for t in inputs]
    y = torch_call(*ins)
    up = rn(*y.shape)
    (y * up).sum().backward()
    for i, t in enumerate(ins):
        tensors[f"{name}.in{i}"] = t.detach()
        tensors[f"{name}.grad{i}"] = t.grad
    tensors[f"{name}.out"] = y.detach()
    tensors[f"{name}.upstream"] = up
    cases[name] = {"fn": fn, "inputs": len(ins), "args": list(args), **({"opts": opts} if opts is not None else {})}


# Convolutions
case("conv1d_dil_groups", "conv1d", [rn(2, 4, 11), rn(6, 2, 3), rn(6)],
     lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1, dilation=2, groups=2),
     opts={"stride": 2, "padding": 1, "dilation": 2, "groups": 2})
case("conv2d_same", "conv2d", [rn(1, 3, 7, 6), rn(4, 3, 4, 3)],
     lambda x, w: F.conv2d(x, w, None, padding="same", dilation=(1, 2)),
     args=[None], opts={"padding": "same", "dilation": [1, 2]})
case("conv2d_groups_valid", "conv2d", [rn(2, 6, 5, 5), rn(4, 3, 3, 1)],
     lambda x, w: F.conv2d(x, w, None, stride=(2, 1), padding="valid", groups=2),
     args=[None], opts={"stride": [2, 1], "padding": "valid", "groups": 2})
case("conv2d_depthwise_mult", "conv2d", [rn(1, 3, 6, 7), rn(6, 1, 3, 3), rn(6)],
     lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=3),
     opts={"stride": 2, "padding": 1, "groups": 3})
case("conv2d_depthwise_dil", "conv2d", [rn(2, 4, 9, 8), rn(4, 1, 3, 5)],
     lambda x, w: F.conv2d(x, w, None, stride=(1, 2), padding=(2, 1), dilation=(2, 1), groups=4),
     args=[None], opts={"stride": [1, 2], "padding": [2, 1], "dilation": [2, 1], "groups": 4})
case("conv2d_pointwise", "conv2d", [rn(2, 5, 4, 3), rn(7, 5, 1, 1), rn(7)],
     lambda x, w, b: F.conv2d(x, w, b), opts={})
case("conv3d_mixed", "conv3d", [rn(1, 2, 5, 6, 7), rn(4, 2, 2, 3, 2), rn(4)],
     lambda x, w, b: F.conv3d(x, w, b, stride=(1, 2, 2), padding=(1, 0, 1), dilation=(2, 1, 1)),
     opts={"stride": [1, 2, 2], "padding": [1, 0, 1], "dilation": [2, 1, 1]})
case("convT1d_outpad", "convTranspose1d", [rn(2, 4, 5), rn(4, 3, 3), rn(3)],
     lambda x, w, b: F.conv_transpose1d(x, w, b, stride=3, padding=1, output_padding=2),
     opts={"stride": 3, "padding": 1, "outputPadding": 2})
case("convT2d_groups_dil", "convTranspose2d", [rn(1, 4, 3, 4), rn(4, 2, 3, 3), rn(4)],
     lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1, groups=2, dilation=2),
     opts={"stride": 2, "padding": 1, "outputPadding": 1, "groups": 2, "dilation": 2})
case("convT3d_mixed", "convTranspose3d", [rn(1, 2, 2, 3, 2), rn(2, 3, 3, 2, 2), rn(3)],
     lambda x, w, b: F.conv_transpose3d(x, w, b, stride=(2, 1, 2), padding=(1, 0, 0)),
     opts={"stride": [2, 1, 2], "padding": [1, 0, 0]})
case("unfold", "unfold", [rn(2, 3, 7, 6)],
     lambda x: F.unfold(x, (3, 2), dilation=(1, 2), padding=1, stride=(2, 1)),
     args=[[3, 2]], opts={"dilation": [1, 2], "padding": 1, "stride": [2, 1]})
case("fold", "fold", [rn(2, 12, 20)],
     lambda x: F.fold(x, (6, 7), (2, 3), padding=(1, 0), stride=(2, 1)),
     args=[[6, 7], [2, 3]], opts={"padding": [1, 0], "stride": [2, 1]})
case("pixel_shuffle", "pixelShuffle", [rn(2, 8, 3, 2)], lambda x: F.pixel_shuffle(x, 2), args=[2])
case("pixel_unshuffle", "pixelUnshuffle", [rn(1, 2, 6, 4)], lambda x: F.pixel_unshuffle(x, 2), args=[2])

# Pooling
x = rn(2, 3, 9, 8)
case("max2d_ceil_pad", "maxPool2d", [x], lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True),
     args=[3], opts={"stride": 2, "padding": 1, "ceilMode": True})
case("max2d_dilation", "maxPool2d", [x], lambda x: F.max_pool2d(x, (3, 2), (1, 2), (1, 1), dilation=(2, 1)),
     args=[[3, 2]], opts={"stride": [1, 2], "padding": [1, 1], "dilation": [2, 1]})
case("max1d_ceil", "maxPool1d", [rn(2, 3, 10)], lambda x: F.max_pool1d(x, 4, 3, ceil_mode=True),
     args=[4], opts={"stride": 3, "ceilMode": True})
case("max3d_pad", "maxPool3d", [rn(1, 2, 5, 6, 7)], lambda x: F.max_pool3d(x, 2, 2, 1),
     args=[2], opts={"stride": 2, "padding": 1})
case("avg2d_ceil_nopad", "avgPool2d", [x], lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
     args=[3], opts={"stride": 2, "padding": 1, "ceilMode": True, "countIncludePad": False})
case("avg2d_ceil_pad", "avgPool2d", [x], lambda x: F.avg_pool2d(x, (3, 2), (2, 1), (1, 1), ceil_mode=True),
     args=[[3, 2]], opts={"stride": [2, 1], "padding": [1, 1], "ceilMode": True})
case("avg2d_divisor", "avgPool2d", [x], lambda x: F.avg_pool2d(x, 3, 2, divisor_override=5),
     args=[3], opts={"stride": 2, "divisorOverride": 5})
case("avg1d", "avgPool1d", [rn(2, 3, 10)], lambda x: F.avg_pool1d(x, 3, 2, 1),
     args=[3], opts={"stride": 2, "padding": 1})
case("avg3d", "avgPool3d", [rn(1, 2, 5, 6, 7)], lambda x: F.avg_pool3d(x, (2, 3, 2), ceil_mode=True),
     args=[[2, 3, 2]], opts={"ceilMode": True})
x = rn(2, 3, 7, 10)
case("adaptive_avg2d", "adaptiveAvgPool2d", [x], lambda x: F.adaptive_avg_pool2d(x, (3, 4)), args=[[3, 4]])
case("adaptive_avg2d_global", "adaptiveAvgPool2d", [x], lambda x: F.adaptive_avg_pool2d(x, 1), args=[1])
case("adaptive_avg2d_none", "adaptiveAvgPool2d", [x], lambda x: F.adaptive_avg_pool2d(x, (None, 4)), args=[[None, 4]])
case("adaptive_avg1d", "adaptiveAvgPool1d", [rn(2, 3, 11)], lambda x: F.adaptive_avg_pool1d(x, 4), args=[4])
case("adaptive_avg3d", "adaptiveAvgPool3d", [rn(1, 2, 5, 6, 7)], lambda x: F.adaptive_avg_pool3d(x, (2, 4, 3)), args=[[2, 4, 3]])
case("adaptive_max2d", "adaptiveMaxPool2d", [x], lambda x: F.adaptive_max_pool2d(x, (3, 4)), args=[[3, 4]])
case("adaptive_max1d", "adaptiveMaxPool1d", [rn(2, 3, 11)], lambda x: F.adaptive_max_pool1d(x, 4), args=[4])

# Interpolation
x = rn(1, 3, 7, 9)


def interp(name, x, **kw):
    opts = {{"scale_factor": "scaleFactor", "align_corners": "alignCorners", "recompute_scale_factor": "recomputeScaleFactor"}.get(k, k): v
            for k, v in kw.items()}
    case(name, "interpolate", [x], lambda t: F.interpolate(t, **kw), opts=opts)


interp("nearest_x2", x, scale_factor=2)
interp("nearest_size", x, size=(5, 13))
interp("nearest_scale", x, scale_factor=(1.7, 0.6))
interp("nearest_exact", x, size=(12, 5), mode="nearest-exact")
interp("bilinear_scale", x, scale_factor=1.7, mode="bilinear", align_corners=False)
interp("bilinear_recompute", x, scale_factor=1.7, mode="bilinear", align_corners=False, recompute_scale_factor=True)
interp("bilinear_down", x, size=(4, 5), mode="bilinear", align_corners=False)
interp("bicubic_down", x, size=(4, 5), mode="bicubic", align_corners=False)
interp("bicubic_up_ac", x, size=(13, 17), mode="bicubic", align_corners=True)
interp("bicubic_aa_down", rn(1, 4, 14, 14), size=(7, 9), mode="bicubic", align_corners=False, antialias=True)
interp("bicubic_aa_up", x, size=(10, 12), mode="bicubic", align_corners=False, antialias=True)
interp("bilinear_aa_down_ac", x, size=(3, 4), mode="bilinear", align_corners=True, antialias=True)
interp("bilinear_aa_scale", x, scale_factor=0.4, mode="bilinear", antialias=True)
interp("linear_1d", rn(2, 3, 6), size=11, mode="linear", align_corners=False)
interp("linear_1d_ac", rn(2, 3, 6), size=4, mode="linear", align_corners=True)
interp("trilinear", rn(1, 2, 3, 4, 5), size=(5, 3, 7), mode="trilinear", align_corners=False)
interp("trilinear_ac", rn(1, 2, 3, 4, 5), scale_factor=(2, 1.5, 0.6), mode="trilinear", align_corners=True)
interp("nearest_3d", rn(1, 2, 3, 4, 5), size=(5, 3, 7))
interp("area", x, size=(3, 4), mode="area")

# Grid sampling (grids reach outside [-1, 1] to exercise the padding modes)
for mode in ("bilinear", "nearest"):
    for pad in ("zeros", "border", "reflection"):
        for ac in (False, True):
            xi, grid = rn(2, 3, 5, 6), 1.3 * (2 * torch.rand(2, 4, 7, 2, generator=g) - 1)
            case(f"grid_{mode}_{pad}_{'ac' if ac else 'noac'}", "gridSample", [xi, grid],
                 lambda t, gr, m=mode, p=pad, a=ac: F.grid_sample(t, gr, mode=m, padding_mode=p, align_corners=a),
                 opts={"mode": mode, "paddingMode": pad, "alignCorners": ac})
theta = torch.tensor([[[0.9, 0.2, 0.1], [-0.1, 1.1, 0.0]]]) + 0.1 * rn(1, 2, 3)
case("affine_grid_2d", "affineGrid", [theta], lambda t: F.affine_grid(t, (1, 3, 4, 5), align_corners=False),
     args=[[1, 3, 4, 5]], opts={"alignCorners": False})
theta3 = torch.eye(3, 4).unsqueeze(0) + 0.1 * rn(2, 3, 4)
case("affine_grid_3d", "affineGrid", [theta3], lambda t: F.affine_grid(t, (2, 1, 3, 4, 2), align_corners=True),
     args=[[2, 1, 3, 4, 2]], opts={"alignCorners": True})

os.makedirs(OUT, exist_ok=True)
header, blobs, off = {}, [], 0
for k in sorted(tensors):
    b = tensors[k].detach().contiguous().numpy().tobytes()
    header[k] = {"dtype": "F32", "shape": list(tensors[k].shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b)
    off += len(b)
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open(os.path.join(OUT, "torch_spatial.io.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h)))
    f.write(h)
    for b in blobs:
        f.write(b)
with open(os.path.join(OUT, "torch_spatial.json"), "w") as f:
    json.dump({"generated_by": "tools/gen_spatial_fixtures.py", "torch": torch.__version__, "cases": cases}, f, indent=1)
print(len(cases), "cases,", off, "bytes")
