"""PyTorch torch.mm GFLOP/s for the GEMM benchmark, driven over stdin by bench/gemm.ts.

Each input line "m k n min_trials min_seconds" is answered with one JSON line {"gflops": ...}: the
best run of torch.mm(a, b), a (m, k) and b (k, n) float32 contiguous. The first line printed
reports the version, BLAS and thread count.
"""
import json
import sys
import time

import torch

threads = int(sys.argv[1])
torch.set_num_threads(threads)
torch.mm(torch.ones(8, 8), torch.ones(8, 8))  # loads the BLAS library
# Debian builds torch against the generic libblas.so.3, which the alternatives system points at a
# real BLAS: name the one actually mapped into this process.
with open("/proc/self/maps") as maps:
    libs = {line.split()[-1].rsplit("/", 1)[-1] for line in maps if "blas" in line.lower()}
blas = ", ".join(sorted(libs)) or "unknown"
print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "blas": blas}), flush=True)
for line in sys.stdin:
    m, k, n, min_trials, min_seconds = line.split()
    m, k, n, min_trials, min_seconds = int(m), int(k), int(n), int(min_trials), float(min_seconds)
    a = torch.randn(m, k)
    b = torch.randn(k, n)
    c = torch.mm(a, b)
    best = float("inf")
    start = time.perf_counter()
    trials = 0
    while trials < min_trials or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        torch.mm(a, b, out=c)
        best = min(best, time.perf_counter() - t0)
        trials += 1
    print(json.dumps({"gflops": 2.0 * m * n * k / best / 1e9}), flush=True)
