"""PyTorch reference timings on the GPU machine, for the same workloads our benches run, so every
speed figure we report is a ratio measured side by side on one card.

Workloads (fp32, eager, cudnn.benchmark on — what a user running PyTorch would typically get):
- ResNet-18 (torchvision layout, 200 classes) training step: train-mode forward, soft-target CE with
  label smoothing, backward, SGD(momentum 0.9, wd 5e-4) — batch 16 at 64² and 224², and batch 32 at 224²;
  eval forward at the same sizes.
- The small CNN of @diffmix/ort-train (conv3x3-BN-ReLU ×3 with 2×2 max-pools, widths 16/32/64, GAP, fc).
Prints one JSON document on stdout.
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

try:
    import torchvision
    resnet18 = lambda n: torchvision.models.resnet18(num_classes=n)  # noqa: E731
except Exception:  # torchvision absent: the same architecture by hand would be needed
    print("torchvision missing", file=sys.stderr)
    sys.exit(2)


class SmallCnn(nn.Module):
    def __init__(self, n, widths=(16, 32, 64)):
        super().__init__()
        layers, cin = [], 3
        for i, w in enumerate(widths):
            layers += [nn.Conv2d(cin, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2, 2))
            cin = w
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, n)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


def sync():
    torch.cuda.synchronize()


def bench(make, classes, batch, size, reps):
    dev = "cuda"
    model = make(classes).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 3, size, size, device=dev)
    target = torch.full((batch, classes), 0.1 / (classes - 1), device=dev)
    target[torch.arange(batch), torch.arange(batch) % classes] += 0.9

    def step():
        opt.zero_grad(set_to_none=True)
        loss = -(target * F.log_softmax(model(x), dim=-1)).sum(-1).mean()
        loss.backward()
        opt.step()

    model.train()
    for _ in range(5):
        step()
    sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter(); step(); sync(); times.append(time.perf_counter() - t0)
    step_ms = sorted(times)[len(times) // 2] * 1000
    model.eval()
    with torch.no_grad():
        for _ in range(5):
            model(x)
        sync()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter(); model(x); sync(); times.append(time.perf_counter() - t0)
    fwd_ms = sorted(times)[len(times) // 2] * 1000
    return {"trainStepMs": round(step_ms, 3), "trainImagesPerSecond": round(batch * 1000 / step_ms, 1),
            "evalForwardMs": round(fwd_ms, 3), "evalImagesPerSecond": round(batch * 1000 / fwd_ms, 1)}


torch.backends.cudnn.benchmark = True
out = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0), "results": []}
for name, make, classes in [("resnet18", resnet18, 200), ("smallcnn", SmallCnn, 10)]:
    for batch, size in [(16, 64), (16, 224), (32, 224)]:
        r = bench(make, classes, batch, size, reps=20)
        out["results"].append({"model": name, "batch": batch, "size": size, **r})
        print(name, batch, size, r, file=sys.stderr, flush=True)
print(json.dumps(out, indent=2))
