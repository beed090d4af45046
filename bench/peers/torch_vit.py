"""PyTorch ViT-B/16 (torchvision vit_b_16, random weights) inference throughput for bench/vit.ts.

usage: python3 bench/peers/torch_vit.py BATCH THREADS ITERATIONS
Prints {"imagesPerSecond", "peakRssMB", "torch", "threads"} as JSON: the best of ITERATIONS timed
forwards under torch.inference_mode() after one warm-up, and the process's peak RSS.
"""
import json
import resource
import sys
import time

import torch
import torchvision

batch, threads, iterations = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(0)
model = torchvision.models.vit_b_16().eval()
x = torch.randn(batch, 3, 224, 224)
best = float("inf")
with torch.inference_mode():
    model(x)
    for _ in range(iterations):
        t0 = time.perf_counter()
        model(x)
        best = min(best, time.perf_counter() - t0)
print(
    json.dumps(
        {
            "imagesPerSecond": batch / best,
            "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        }
    )
)
