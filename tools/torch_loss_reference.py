"""Torch reference values for test/ops/loss.test.ts and test/ops/batch_norm.test.ts.

Run with Debian's torch, then format for the linter:
  /usr/bin/python3 tools/torch_loss_reference.py > test/ops/loss_reference.json
  npx biome format --write test/ops/loss_reference.json
Every case stores its inputs and torch's outputs (float32 values as JSON numbers); gradients are of
sum(output * upstream) with the stored upstream, or of the scalar output itself.
"""
import json
import warnings

import torch
import torch.nn.functional as F

torch.manual_seed(0)
warnings.simplefilter("ignore")  # kl_div reduction="mean" is checked on purpose
cases = {}


def lst(t):
    return t.detach().reshape(-1).tolist()


def put(name, **tensors):
    cases[name] = {k: {"shape": list(v.shape), "data": lst(v)} if torch.is_tensor(v) else v
                   for k, v in tensors.items()}


def grad_of(out, *xs):
    return torch.autograd.grad(out, xs)


# cross-entropy: index targets, weights, ignoreIndex, label smoothing, every reduction
x = torch.randn(5, 4).mul(2).requires_grad_(True)
t = torch.tensor([2, -100, 0, 3, 1])
w = torch.tensor([0.3, 1.2, 0.8, 2.0])
mean = F.cross_entropy(x, t, weight=w, label_smoothing=0.15)
put("ce_index_weighted", logits=x, target=t, weight=w, smoothing=0.15, mean=mean,
    sum=F.cross_entropy(x, t, weight=w, label_smoothing=0.15, reduction="sum"),
    none=F.cross_entropy(x, t, weight=w, label_smoothing=0.15, reduction="none"),
    grad_mean=grad_of(mean, x)[0])
put("ce_index_ignore_smoothing", logits=x, target=t, smoothing=0.2,
    mean=F.cross_entropy(x, t, label_smoothing=0.2))

# segmentation: (N, C, H, W) with a custom ignore index
x = torch.randn(2, 3, 2, 3).mul(1.5).requires_grad_(True)
t = torch.tensor([[[0, 2, 255], [1, 1, 0]], [[2, 255, 255], [0, 1, 2]]])
w = torch.tensor([1.0, 2.0, 0.5])
mean = F.cross_entropy(x, t, weight=w, ignore_index=255, label_smoothing=0.1)
put("ce_segmentation", logits=x, target=t, weight=w, smoothing=0.1, ignore_index=255, mean=mean,
    grad_mean=grad_of(mean, x)[0])

# probability targets (Mixup/CutMix)
x = torch.randn(3, 4).mul(2).requires_grad_(True)
p = torch.softmax(torch.randn(3, 4), 1)
w = torch.tensor([0.5, 1.0, 1.5, 2.0])
mean = F.cross_entropy(x, p, weight=w, label_smoothing=0.1)
put("ce_probs", logits=x, target=p, weight=w, smoothing=0.1, mean=mean,
    none=F.cross_entropy(x, p, weight=w, label_smoothing=0.1, reduction="none"), grad_mean=grad_of(mean, x)[0])

x = torch.randn(4)
put("ce_unbatched", logits=x, target=torch.tensor(2), value=F.cross_entropy(x, torch.tensor(2)))

# nll
lp = torch.log_softmax(torch.randn(4, 3), 1)
t = torch.tensor([1, 0, -100, 2])
w = torch.tensor([0.2, 1.0, 3.0])
put("nll", input=lp, target=t, weight=w, mean=F.nll_loss(lp, t, weight=w), sum=F.nll_loss(lp, t, weight=w, reduction="sum"))

# binary cross-entropy with logits: weight and pos_weight
x = torch.randn(3, 4).mul(3).requires_grad_(True)
t = torch.tensor([[0, 1, 1, 0], [1, 0, 0.3, 1], [0, 0, 1, 0.7]])
w = torch.tensor([1.0, 0.5, 2.0, 1.5])
pw = torch.tensor([2.0, 0.5, 1.0, 3.0])
mean = F.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw)
put("bce_logits", input=x, target=t, weight=w, pos_weight=pw, mean=mean,
    none=F.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw, reduction="none"),
    grad_mean=grad_of(mean, x)[0])

# binary cross-entropy on probabilities, including exact 0 and 1 (logs clamp at -100)
p = torch.tensor([[0.0, 0.2, 0.9, 1.0], [0.5, 0.01, 0.99, 0.3]])
t = torch.tensor([[0.0, 0.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.6]])
put("bce", input=p, target=t, none=F.binary_cross_entropy(p, t, reduction="none"))

a = torch.randn(3, 5)
b = torch.randn(3, 5)
put("regression", a=a, b=b, mse=F.mse_loss(a, b), l1_sum=F.l1_loss(a, b, reduction="sum"),
    smooth_l1=F.smooth_l1_loss(a, b, beta=0.5, reduction="none"), huber=F.huber_loss(a, b, delta=0.7))

lp = torch.log_softmax(torch.randn(3, 4), 1)
q = torch.softmax(torch.randn(3, 4), 1)
q[0, 1] = 0
lq = torch.log_softmax(torch.randn(3, 4), 1)
put("kl_div", input=lp, target=q, batchmean=F.kl_div(lp, q, reduction="batchmean"),
    mean=F.kl_div(lp, q, reduction="mean"), log_target_input=lq,
    log_target=F.kl_div(lp, lq, reduction="sum", log_target=True))

x1 = torch.randn(3, 5)
x2 = torch.randn(1, 5)
v = torch.randn(2, 3, 4)
put("similarity", x1=x1, x2=x2, cosine=F.cosine_similarity(x1, x2, dim=1), v=v,
    normalize_p2=F.normalize(v, dim=1), normalize_p1_dim2=F.normalize(v, p=1, dim=2))

# batch norm: one training step of nn.BatchNorm2d then eval
bn = torch.nn.BatchNorm2d(3, momentum=0.2)
with torch.no_grad():
    bn.weight.copy_(torch.randn(3))
    bn.bias.copy_(torch.randn(3))
    bn.running_mean.copy_(torch.randn(3))
    bn.running_var.copy_(torch.rand(3) + 0.5)
x = (torch.randn(4, 3, 2, 3) * 2 + 1).requires_grad_(True)
up = torch.randn(4, 3, 2, 3)
w0, b0 = bn.weight.detach().clone(), bn.bias.detach().clone()
rm0, rv0 = bn.running_mean.clone(), bn.running_var.clone()
y = bn(x)
gx, gw, gb = grad_of((y * up).sum(), x, bn.weight, bn.bias)
bn.eval()
xe = torch.randn(2, 3, 2, 3)
put("batch_norm2d", x=x, weight=w0, bias=b0, running_mean0=rm0, running_var0=rv0, momentum=0.2, train_out=y,
    running_mean=bn.running_mean, running_var=bn.running_var, upstream=up, grad_x=gx, grad_weight=gw, grad_bias=gb,
    eval_x=xe, eval_out=bn(xe))

# cumulative average (momentum None) over two batches of BatchNorm1d
bn = torch.nn.BatchNorm1d(3, momentum=None)
x_a = torch.randn(5, 3)
x_b = torch.randn(4, 3, 2) + 3
bn(x_a)
bn(x_b)
put("batch_norm1d_cumulative", x_a=x_a, x_b=x_b, running_mean=bn.running_mean, running_var=bn.running_var,
    num_batches_tracked=int(bn.num_batches_tracked))

x = torch.randn(2, 6, 3).requires_grad_(True)
w = torch.randn(6)
b = torch.randn(6)
up = torch.randn(2, 6, 3)
y = F.group_norm(x, 3, w, b)
put("group_norm", x=x, weight=w, bias=b, groups=3, out=y, upstream=up, grad_x=grad_of((y * up).sum(), x)[0])

print(json.dumps({"generated_by": "tools/torch_loss_reference.py", "torch": torch.__version__, "cases": cases}))
