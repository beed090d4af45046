"""Cuts the committed Fashion-MNIST test slice (test/fixtures/fashion_mnist_slice/) from the full set.

Run: /usr/bin/python3 tools/make_fashion_mnist_slice.py [/usr/share/datasets/fashion-mnist]
The first 500 training and first 200 test images with their labels, as gzip'd IDX files with the
upstream names, so the same loader reads the slice and the full set.
"""
import gzip
import struct
import sys
from pathlib import Path

src = Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist")
out = Path(__file__).resolve().parent.parent / "test/fixtures/fashion_mnist_slice"
out.mkdir(parents=True, exist_ok=True)

for split, n in (("train", 500), ("t10k", 200)):
    images = gzip.decompress((src / f"{split}-images-idx3-ubyte.gz").read_bytes())
    labels = gzip.decompress((src / f"{split}-labels-idx1-ubyte.gz").read_bytes())
    magic, count, rows, cols = struct.unpack(">IIII", images[:16])
    assert magic == 0x803 and rows == 28 and cols == 28, (magic, rows, cols)
    assert struct.unpack(">II", labels[:8])[0] == 0x801
    img = struct.pack(">IIII", 0x803, n, rows, cols) + images[16 : 16 + n * rows * cols]
    lab = struct.pack(">II", 0x801, n) + labels[8 : 8 + n]
    # mtime=0 keeps the gzip bytes reproducible.
    (out / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(img, mtime=0))
    (out / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(lab, mtime=0))
    print(split, n, "labels histogram", [lab[8:].count(bytes([c])) for c in range(10)])
