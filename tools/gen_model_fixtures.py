"""Reference fixtures for the model zoo beyond ../shared/fixtures: timm variants the shared set does not
cover (no class token with avg pooling, register tokens, LayerScale + fc_norm + pre-norm, a Swin stage as
large as its window, a Swin training step, BasicBlock ResNet in F16), position-embedding resampling on
load, and timm's resample_abs_pos_embed itself.

Needs timm 1.0.29 on top of Debian's python3-torch:
    /usr/bin/python3 -m venv --system-site-packages /tmp/pyref
    /tmp/pyref/bin/pip install --no-deps timm==1.0.29
    /tmp/pyref/bin/python tools/gen_model_fixtures.py test/fixtures/models
Writes NAME.safetensors (the model's state_dict under timm's names), NAME.io.safetensors and fixtures.json
in the layout of ../shared/fixtures/peers, so `glimpse verify test/fixtures/models NAME` checks them.
"""
import json
import math
import os
import struct
import sys

import timm
import torch
from timm.layers import resample_abs_pos_embed
from timm.models.resnet import BasicBlock, ResNet
from timm.models.swin_transformer import SwinTransformer
from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.int64: "I64"}
index = {}


def save(tensors, path):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        data = t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * ((8 - len(head) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for b in blobs:
            f.write(b)


def randomize(model, gen):
    """Weights of meaningful scale (default inits are near zero for several of these)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p[0].numel()))
            elif name.endswith("weight") or name.endswith("gamma"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=gen))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=gen))
    return model


def attention_hooks(model):
    probs = []
    for m in model.modules():
        if type(m).__name__ in ("Attention", "WindowAttention"):
            m.fused_attn = False
            m.attn_drop.register_forward_hook(lambda mod, inp, out: probs.append(inp[0].detach().clone()))
    return probs


def record(name, ctor, kwargs, input_shape, extra=None):
    index[name] = {"library": f"timm {timm.__version__} (torch {torch.__version__})", "constructor": ctor,
                   "kwargs": kwargs, "input_shape": list(input_shape), "rtol_atol": 1e-4, **(extra or {})}


def eval_fixture(name, build, ctor, kwargs, input_shape, f16=False, load_kwargs=None):
    gen = torch.Generator().manual_seed(4321 + len(index))
    model = randomize(build(kwargs), gen).eval()
    if f16:
        with torch.no_grad():
            for t in list(model.parameters()) + [b for b in model.buffers() if b.is_floating_point()]:
                t.copy_(t.half().float())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    if load_kwargs:
        # A checkpoint made for another input size, loaded the way timm loads it (resampled pos_embed).
        target = build({**kwargs, **load_kwargs}).eval()
        target.load_state_dict(checkpoint_filter_fn(state, target))
        model, kwargs = target, {**kwargs, **load_kwargs}
    probs = attention_hooks(model)
    x = torch.randn(input_shape, generator=gen)
    with torch.no_grad():
        y = model(x)
    io = {"input": x, "output": y}
    for i, p in enumerate(probs):
        io[f"attn.{i}"] = p
    save({k: (v.half() if f16 and v.is_floating_point() else v) for k, v in state.items()}, f"{OUT}/{name}.safetensors")
    save(io, f"{OUT}/{name}.io.safetensors")
    record(name, ctor, kwargs, input_shape, {"output_shape": list(y.shape), "attention_maps": len(probs)})
    print("ok", name, list(y.shape), len(probs))


def train_fixture(name, build, ctor, kwargs, input_shape, classes):
    gen = torch.Generator().manual_seed(8765 + len(index))
    model = randomize(build(kwargs), gen).train()
    x = torch.randn(input_shape, generator=gen)
    target = torch.randint(0, classes, (input_shape[0],), generator=gen)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05)
    loss = torch.nn.functional.cross_entropy(model(x), target)
    opt.zero_grad()
    loss.backward()
    io = {"input": x, "target": target, "loss": loss.detach().reshape(1)}
    for k, p in model.named_parameters():
        io[f"grad.{k}"] = p.grad
    opt.step()
    for k, p in model.named_parameters():
        io[f"after.{k}"] = p.detach()
    save(state, f"{OUT}/{name}.safetensors")
    save(io, f"{OUT}/{name}.io.safetensors")
    record(name, ctor, kwargs, input_shape,
           {"optimizer": "AdamW(lr=1e-3, betas=(0.9,0.999), eps=1e-8, weight_decay=0.05), one step",
            "loss": "cross_entropy(mean)"})
    print("ok", name, float(loss))


VIT = "timm.models.vision_transformer.VisionTransformer"
SWIN = "timm.models.swin_transformer.SwinTransformer"
vit = lambda kw: VisionTransformer(**kw)
swin = lambda kw: SwinTransformer(**kw)

eval_fixture("vit_avgpool", vit, VIT, dict(img_size=32, patch_size=8, num_classes=7, embed_dim=32, depth=2, num_heads=2,
                                           class_token=False, global_pool="avg", qkv_bias=False), (2, 3, 32, 32))
eval_fixture("vit_reg", vit, VIT, dict(img_size=40, patch_size=8, num_classes=5, embed_dim=32, depth=2, num_heads=2,
                                       reg_tokens=2, no_embed_class=True), (1, 3, 40, 40))
eval_fixture("vit_layerscale", vit, VIT, dict(img_size=32, patch_size=8, num_classes=4, embed_dim=32, depth=2, num_heads=4,
                                              init_values=0.1, global_pool="avg", fc_norm=True, pre_norm=True), (2, 3, 32, 32))
eval_fixture("vit_resampled", vit, VIT, dict(img_size=32, patch_size=8, num_classes=3, embed_dim=32, depth=1, num_heads=2),
             (1, 3, 48, 40), load_kwargs=dict(img_size=[48, 40]))
eval_fixture("swin_w7", swin, SWIN, dict(img_size=56, patch_size=4, window_size=7, embed_dim=24, depths=[2, 2],
                                         num_heads=[3, 6], num_classes=6), (1, 3, 56, 56))
# drop_path_rate=0: timm's Swin defaults to 0.1, random per sample in training (no peer could match it).
train_fixture("swin_train", swin, SWIN, dict(img_size=32, patch_size=4, window_size=4, embed_dim=16, depths=[2, 2],
                                             num_heads=[2, 4], num_classes=4, drop_path_rate=0.0), (2, 3, 32, 32), 4)
eval_fixture("resnet_basic_f16", lambda kw: ResNet(BasicBlock, **kw), "timm.models.resnet.ResNet(BasicBlock)",
             dict(layers=[1, 1, 1, 1], channels=[8, 16, 32, 64], num_classes=5), (1, 3, 48, 48), f16=True)

gen = torch.Generator().manual_seed(99)
posemb = torch.randn(1, 1 + 7 * 7, 16, generator=gen)
save({"posemb": posemb, "resampled": resample_abs_pos_embed(posemb, new_size=[10, 12], num_prefix_tokens=1)},
     f"{OUT}/resample_abs_pos_embed.io.safetensors")
index["resample_abs_pos_embed"] = {"library": f"timm {timm.__version__}", "function": "timm.layers.resample_abs_pos_embed",
                                   "kwargs": {"new_size": [10, 12], "num_prefix_tokens": 1}, "rtol_atol": 1e-4}

# timm's eval transform on a PNG: PIL decode, Resize(shorter side) with the interpolation, CenterCrop, Normalize.
from PIL import Image
from timm.data import create_transform

gen = torch.Generator().manual_seed(7)
yy, xx = torch.meshgrid(torch.linspace(0, 1, 45), torch.linspace(0, 1, 67), indexing="ij")
smooth = torch.stack([xx, yy, (xx + yy) / 2]) * 200 + 40 * torch.rand(3, 45, 67, generator=gen)
pixels = smooth.clamp(0, 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
Image.fromarray(pixels).save(f"{OUT}/eval_transform.png")
image = Image.open(f"{OUT}/eval_transform.png").convert("RGB")
cases = {"bicubic_32_0.875": dict(input_size=(3, 32, 32), crop_pct=0.875, interpolation="bicubic",
                                  mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
         "bilinear_24_0.9": dict(input_size=(3, 24, 24), crop_pct=0.9, interpolation="bilinear",
                                 mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))}
save({name: create_transform(**kw)(image) for name, kw in cases.items()}, f"{OUT}/eval_transform.io.safetensors")
index["eval_transform"] = {"library": f"timm {timm.__version__}, PIL", "function": "timm.data.create_transform (eval)",
                           "kwargs": {k: {**v, "input_size": list(v["input_size"])} for k, v in cases.items()},
                           "image": "eval_transform.png", "rtol_atol": 1e-4}

json.dump({"generated_by": "tools/gen_model_fixtures.py", "torch": torch.__version__, "timm": timm.__version__,
           "fixtures": index}, open(f"{OUT}/fixtures.json", "w"), indent=1)
