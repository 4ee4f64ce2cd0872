"""One-off helper for bench/resampler-vs-pillow.mjs (not a project dependency).

Reads manifest.json from the folder given as argv[1]: a list of jobs
{"input": "x.rgb", "width": W, "height": H, "outWidth": w, "outHeight": h, "filter": "bicubic", "output": "y.rgb"}.
Filters: Pillow's "nearest", "bilinear", "bicubic", "lanczos", and "torch-bicubic" (a numpy version of
torch.nn.functional.interpolate(mode='bicubic', align_corners=False, antialias=False): Keys a = -0.75,
4 taps, border clamp, float then round + clamp to uint8, as torchvision does for uint8 tensors).
"""
import json
import os
import sys

import numpy as np

try:
    from PIL import Image
except ImportError:  # pragma: no cover
    Image = None


def cubic_weights(t, a=-0.75):
    def k(x):
        x = np.abs(x)
        return np.where(
            x <= 1,
            ((a + 2) * x - (a + 3)) * x * x + 1,
            np.where(x < 2, ((a * x - 5 * a) * x + 8 * a) * x - 4 * a, 0.0),
        )

    return np.stack([k(t + 1), k(t), k(1 - t), k(2 - t)], axis=-1)


def torch_bicubic_axis(img, out_len, axis):
    n = img.shape[axis]
    scale = n / out_len
    dst = np.arange(out_len, dtype=np.float64)
    src = (dst + 0.5) * scale - 0.5
    i0 = np.floor(src).astype(np.int64)
    t = src - i0
    w = cubic_weights(t)  # (out_len, 4)
    idx = np.clip(i0[:, None] + np.arange(-1, 3)[None, :], 0, n - 1)  # (out_len, 4)
    moved = np.moveaxis(img, axis, 0)  # (n, ...)
    gathered = moved[idx]  # (out_len, 4, ...)
    out = np.einsum("ok,ok...->o...", w, gathered)
    return np.moveaxis(out, 0, axis)


def torch_bicubic(arr, out_w, out_h):
    x = arr.astype(np.float64)
    x = torch_bicubic_axis(x, out_h, 0)
    x = torch_bicubic_axis(x, out_w, 1)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def main():
    folder = sys.argv[1]
    with open(os.path.join(folder, "manifest.json")) as f:
        jobs = json.load(f)
    filters = {}
    if Image is not None:
        filters = {
            "nearest": Image.NEAREST,
            "bilinear": Image.BILINEAR,
            "bicubic": Image.BICUBIC,
            "lanczos": Image.LANCZOS,
        }
    for job in jobs:
        raw = np.fromfile(os.path.join(folder, job["input"]), dtype=np.uint8)
        arr = raw.reshape(job["height"], job["width"], 3)
        size = (job["outWidth"], job["outHeight"])
        if job["filter"] == "torch-bicubic":
            out = torch_bicubic(arr, *size)
        else:
            if Image is None:
                continue
            out = np.asarray(Image.fromarray(arr, "RGB").resize(size, filters[job["filter"]]))
        out.astype(np.uint8).tofile(os.path.join(folder, job["output"]))
    print(json.dumps({"pillow": getattr(Image, "__version__", None) if Image else None, "numpy": np.__version__}))


if __name__ == "__main__":
    main()
