"""PyTorch baseline for the LoRA training step on a Stable Diffusion 1.x UNet (no diffusers needed).

The UNet is diffusers' `UNet2DConditionModel` (SD 1.x / 2.x shape) written by hand in plain torch, with
the same module names, so a diffusers state dict loads with strict=True. LoRA (rank r, alpha r, scale 1,
peft init: A ~ kaiming_uniform(a=sqrt 5), B = 0) sits on to_q/to_k/to_v/to_out.0 of attn1 and attn2 of
every transformer block; base weights are frozen. The timed training step is
    pred = unet(noisy_latents, t, ehs); loss = mse(pred, noise); backward; clip_grad_norm(1.0); AdamW(5e-5, wd 1e-2)
and the timed forward is the same UNet call under no_grad. fp32; on CUDA TF32 is off unless --tf32.

Timing (default):  python3 torch_sd_unet.py --device cuda --batch 1 --resolution 512
Cross-check:       python3 torch_sd_unet.py --device cpu --config unet/config.json \
                       --state unet.safetensors [--lora-state pytorch_lora_weights.safetensors] \
                       --inputs DIR --out DIR
  reads sample.npy (or noisy_latents.npy), timestep.npy (or timesteps.npy), encoder_hidden_states.npy,
  writes out_sample.npy; if DIR has noise.npy also loss.npy and lora_grads/<diffusers lora key>.npy.
  A diffusers-keyed unet.safetensors for an exported ONNX UNet: node tooling/device/unet-state.mjs;
  a LoRA trained by @diffmix/lora-finetune against this script: node tooling/device/lora-roundtrip.mjs.
Prints one JSON document on stdout; progress goes to stderr.
"""
import argparse
import json
import math
import os
import resource
import statistics
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------- config

SD15_CONFIG = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "downsample_padding": 1,
    "mid_block_scale_factor": 1,
    "use_linear_projection": False,
    "act_fn": "silu",
}
SD15_PARAMS = 859_520_964

# Supported fields (value used when absent).
SUPPORTED = {
    "in_channels": 4, "out_channels": 4, "block_out_channels": None, "layers_per_block": 2,
    "down_block_types": None, "up_block_types": None, "mid_block_type": "UNetMidBlock2DCrossAttn",
    "cross_attention_dim": 1280, "attention_head_dim": 8, "norm_num_groups": 32, "norm_eps": 1e-5,
    "flip_sin_to_cos": True, "freq_shift": 0, "downsample_padding": 1, "mid_block_scale_factor": 1,
    "use_linear_projection": False, "act_fn": "silu", "transformer_layers_per_block": 1,
    "resnet_time_scale_shift": "default", "upcast_attention": False,
}
# Fields accepted only at their diffusers default (anything else is a different architecture).
MUST_BE_DEFAULT = {
    "center_input_sample": False, "only_cross_attention": False, "dropout": 0.0,
    "reverse_transformer_layers_per_block": None, "encoder_hid_dim": None, "encoder_hid_dim_type": None,
    "num_attention_heads": None, "dual_cross_attention": False, "class_embed_type": None,
    "addition_embed_type": None, "addition_time_embed_dim": None, "num_class_embeds": None,
    "resnet_skip_time_act": False, "resnet_out_scale_factor": 1.0, "time_embedding_type": "positional",
    "time_embedding_dim": None, "time_embedding_act_fn": None, "timestep_post_act": None,
    "time_cond_proj_dim": None, "conv_in_kernel": 3, "conv_out_kernel": 3,
    "projection_class_embeddings_input_dim": None, "attention_type": "default",
    "class_embeddings_concat": False, "mid_block_only_cross_attention": None, "cross_attention_norm": None,
}
IGNORED = {"sample_size", "addition_embed_type_num_heads", "_class_name", "_diffusers_version",
           "_name_or_path", "_use_default_values"}


def resolve_config(raw):
    errors = []
    for k, v in raw.items():
        if k in SUPPORTED or k in IGNORED or k.startswith("_"):
            continue
        if k in MUST_BE_DEFAULT:
            if v != MUST_BE_DEFAULT[k]:
                errors.append(f"{k}={v!r} (only {MUST_BE_DEFAULT[k]!r} is supported)")
            continue
        errors.append(f"{k}={v!r} (unknown field)")
    cfg = {k: raw.get(k, d) for k, d in SUPPORTED.items()}
    if cfg["block_out_channels"] is None or cfg["down_block_types"] is None or cfg["up_block_types"] is None:
        errors.append("block_out_channels, down_block_types and up_block_types are required")
    else:
        n = len(cfg["block_out_channels"])
        if len(cfg["down_block_types"]) != n or len(cfg["up_block_types"]) != n:
            errors.append("down_block_types / up_block_types / block_out_channels lengths differ")
        for t in cfg["down_block_types"]:
            if t not in ("CrossAttnDownBlock2D", "DownBlock2D"):
                errors.append(f"down block type {t!r} unsupported")
        for t in cfg["up_block_types"]:
            if t not in ("CrossAttnUpBlock2D", "UpBlock2D"):
                errors.append(f"up block type {t!r} unsupported")
        if isinstance(cfg["attention_head_dim"], (list, tuple)) and len(cfg["attention_head_dim"]) != n:
            errors.append("attention_head_dim list length differs from block_out_channels")
    if cfg["mid_block_type"] != "UNetMidBlock2DCrossAttn":
        errors.append(f"mid_block_type={cfg['mid_block_type']!r} unsupported")
    if not isinstance(cfg["layers_per_block"], int):
        errors.append("layers_per_block must be an int")
    if not isinstance(cfg["cross_attention_dim"], int):
        errors.append("cross_attention_dim must be an int")
    tl = cfg["transformer_layers_per_block"]
    if not (tl == 1 or (isinstance(tl, (list, tuple)) and all(x == 1 for x in tl))):
        errors.append(f"transformer_layers_per_block={tl!r} (only 1)")
    if cfg["act_fn"] != "silu":
        errors.append(f"act_fn={cfg['act_fn']!r} (only silu)")
    if cfg["resnet_time_scale_shift"] != "default":
        errors.append(f"resnet_time_scale_shift={cfg['resnet_time_scale_shift']!r} (only 'default')")
    if cfg["upcast_attention"]:
        # upcast_attention only changes fp16 numerics; everything here runs in fp32.
        log("note: upcast_attention=true is a no-op in fp32")
    if errors:
        raise SystemExit("unsupported UNet config:\n  " + "\n  ".join(errors))
    return cfg


# --------------------------------------------------------------------------------------------- modules

ATTN_IMPL = {"use_sdpa": hasattr(F, "scaled_dot_product_attention")}


class LoRALinear(nn.Linear):
    """nn.Linear (same state-dict keys) plus an optional LoRA branch added by enable_lora()."""

    lora_scale = 0.0

    def enable_lora(self, rank, alpha):
        self.lora_A = nn.Parameter(torch.empty(rank, self.in_features, device=self.weight.device))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, rank, device=self.weight.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # peft: U(+-1/sqrt(in))
        self.lora_scale = alpha / rank

    def forward(self, x):
        y = F.linear(x, self.weight, self.bias)
        if self.lora_scale:
            y = y + F.linear(F.linear(x, self.lora_A), self.lora_B) * self.lora_scale
        return y


class Attention(nn.Module):
    def __init__(self, query_dim, heads, dim_head, cross_attention_dim=None):
        super().__init__()
        inner = heads * dim_head
        kv_dim = cross_attention_dim or query_dim
        self.heads = heads
        self.scale = dim_head ** -0.5
        self.to_q = LoRALinear(query_dim, inner, bias=False)
        self.to_k = LoRALinear(kv_dim, inner, bias=False)
        self.to_v = LoRALinear(kv_dim, inner, bias=False)
        self.to_out = nn.ModuleList([LoRALinear(inner, query_dim, bias=True), nn.Dropout(0.0)])

    def forward(self, x, context=None):
        context = x if context is None else context
        b, n, _ = x.shape
        h = self.heads
        q = self.to_q(x).view(b, n, h, -1).transpose(1, 2)
        k = self.to_k(context).view(b, context.shape[1], h, -1).transpose(1, 2)
        v = self.to_v(context).view(b, context.shape[1], h, -1).transpose(1, 2)
        if ATTN_IMPL["use_sdpa"]:
            o = F.scaled_dot_product_attention(q, k, v)
        else:
            o = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * self.scale, dim=-1) @ v
        o = o.transpose(1, 2).reshape(b, n, -1)
        return self.to_out[1](self.to_out[0](o))


class GEGLU(nn.Module):
    def __init__(self, dim_in, dim_out):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x):
        hidden, gate = self.proj(x).chunk(2, dim=-1)
        return hidden * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim, mult=4):
        super().__init__()
        self.net = nn.ModuleList([GEGLU(dim, dim * mult), nn.Dropout(0.0), nn.Linear(dim * mult, dim)])

    def forward(self, x):
        for m in self.net:
            x = m(x)
        return x


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim, heads, dim_head, cross_attention_dim):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, heads, dim_head)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = Attention(dim, heads, dim_head, cross_attention_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim)

    def forward(self, x, ehs):
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x), ehs) + x
        return self.ff(self.norm3(x)) + x


class Transformer2DModel(nn.Module):
    def __init__(self, heads, channels, cross_attention_dim, groups, linear_proj):
        super().__init__()
        self.linear_proj = linear_proj
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, channels) if linear_proj else nn.Conv2d(channels, channels, 1)
        self.transformer_blocks = nn.ModuleList(
            [BasicTransformerBlock(channels, heads, channels // heads, cross_attention_dim)])
        self.proj_out = nn.Linear(channels, channels) if linear_proj else nn.Conv2d(channels, channels, 1)

    def forward(self, x, ehs):
        b, c, hh, ww = x.shape
        res = x
        x = self.norm(x)
        if self.linear_proj:
            x = self.proj_in(x.permute(0, 2, 3, 1).reshape(b, hh * ww, c))
        else:
            x = self.proj_in(x).permute(0, 2, 3, 1).reshape(b, hh * ww, c)
        for blk in self.transformer_blocks:
            x = blk(x, ehs)
        if self.linear_proj:
            x = self.proj_out(x).reshape(b, hh, ww, c).permute(0, 3, 1, 2)
        else:
            x = self.proj_out(x.reshape(b, hh, ww, c).permute(0, 3, 1, 2).contiguous())
        return x + res


class ResnetBlock2D(nn.Module):
    def __init__(self, cin, cout, temb, groups, eps, scale=1.0):
        super().__init__()
        self.scale = scale
        self.norm1 = nn.GroupNorm(groups, cin, eps=eps)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb, cout)
        self.norm2 = nn.GroupNorm(groups, cout, eps=eps)
        self.dropout = nn.Dropout(0.0)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        if self.conv_shortcut is not None:
            x = self.conv_shortcut(x)
        return (x + h) / self.scale


class Downsample2D(nn.Module):
    def __init__(self, c, padding):
        super().__init__()
        self.padding = padding
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=padding)

    def forward(self, x):
        if self.padding == 0:
            x = F.pad(x, (0, 1, 0, 1))
        return self.conv(x)


class Upsample2D(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x, size):
        return self.conv(F.interpolate(x, size=size, mode="nearest"))


class DownBlock(nn.Module):
    def __init__(self, cross, cin, cout, temb, layers, add_down, cfg, heads):
        super().__init__()
        g, eps = cfg["norm_num_groups"], cfg["norm_eps"]
        self.resnets = nn.ModuleList(
            [ResnetBlock2D(cin if i == 0 else cout, cout, temb, g, eps) for i in range(layers)])
        if cross:
            self.attentions = nn.ModuleList(
                [Transformer2DModel(heads, cout, cfg["cross_attention_dim"], g, cfg["use_linear_projection"])
                 for _ in range(layers)])
        else:
            self.attentions = None
        self.downsamplers = nn.ModuleList([Downsample2D(cout, cfg["downsample_padding"])]) if add_down else None

    def forward(self, x, temb, ehs):
        states = []
        for i, r in enumerate(self.resnets):
            x = r(x, temb)
            if self.attentions is not None:
                x = self.attentions[i](x, ehs)
            states.append(x)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
            states.append(x)
        return x, states


class UpBlock(nn.Module):
    def __init__(self, cross, cin, cout, prev, temb, layers, add_up, cfg, heads):
        super().__init__()
        g, eps = cfg["norm_num_groups"], cfg["norm_eps"]
        rs = []
        for i in range(layers):
            skip = cin if i == layers - 1 else cout
            rin = prev if i == 0 else cout
            rs.append(ResnetBlock2D(rin + skip, cout, temb, g, eps))
        self.resnets = nn.ModuleList(rs)
        if cross:
            self.attentions = nn.ModuleList(
                [Transformer2DModel(heads, cout, cfg["cross_attention_dim"], g, cfg["use_linear_projection"])
                 for _ in range(layers)])
        else:
            self.attentions = None
        self.upsamplers = nn.ModuleList([Upsample2D(cout)]) if add_up else None

    def forward(self, x, skips, temb, ehs, up_size):
        for i, r in enumerate(self.resnets):
            x = r(torch.cat([x, skips.pop()], dim=1), temb)
            if self.attentions is not None:
                x = self.attentions[i](x, ehs)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x, up_size)
        return x


class MidBlock(nn.Module):
    def __init__(self, c, temb, cfg, heads):
        super().__init__()
        g, eps, s = cfg["norm_num_groups"], cfg["norm_eps"], cfg["mid_block_scale_factor"]
        self.resnets = nn.ModuleList([ResnetBlock2D(c, c, temb, g, eps, s), ResnetBlock2D(c, c, temb, g, eps, s)])
        self.attentions = nn.ModuleList(
            [Transformer2DModel(heads, c, cfg["cross_attention_dim"], g, cfg["use_linear_projection"])])

    def forward(self, x, temb, ehs):
        x = self.resnets[0](x, temb)
        x = self.attentions[0](x, ehs)
        return self.resnets[1](x, temb)


class TimestepEmbedding(nn.Module):
    def __init__(self, cin, dim):
        super().__init__()
        self.linear_1 = nn.Linear(cin, dim)
        self.act = nn.SiLU()
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x):
        return self.linear_2(self.act(self.linear_1(x)))


class UNet2DConditionModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        ch = cfg["block_out_channels"]
        n = len(ch)
        lpb = cfg["layers_per_block"]
        heads = cfg["attention_head_dim"]  # diffusers quirk: number of heads (num_attention_heads is null)
        heads = list(heads) if isinstance(heads, (list, tuple)) else [heads] * n
        temb = ch[0] * 4
        self.conv_in = nn.Conv2d(cfg["in_channels"], ch[0], 3, padding=1)
        self.time_embedding = TimestepEmbedding(ch[0], temb)
        self.down_blocks = nn.ModuleList()
        out = ch[0]
        for i, t in enumerate(cfg["down_block_types"]):
            cin, out = out, ch[i]
            self.down_blocks.append(DownBlock(t == "CrossAttnDownBlock2D", cin, out, temb, lpb, i < n - 1, cfg,
                                              heads[i]))
        self.mid_block = MidBlock(ch[-1], temb, cfg, heads[-1])
        self.up_blocks = nn.ModuleList()
        rch, rheads = list(reversed(ch)), list(reversed(heads))
        out = rch[0]
        for i, t in enumerate(cfg["up_block_types"]):
            prev, out = out, rch[i]
            cin = rch[min(i + 1, n - 1)]
            self.up_blocks.append(UpBlock(t == "CrossAttnUpBlock2D", cin, out, prev, temb, lpb + 1, i < n - 1, cfg,
                                          rheads[i]))
        self.conv_norm_out = nn.GroupNorm(cfg["norm_num_groups"], ch[0], eps=cfg["norm_eps"])
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(ch[0], cfg["out_channels"], 3, padding=1)

    def time_proj(self, t):
        dim = self.cfg["block_out_channels"][0]
        half = dim // 2
        exponent = -math.log(10000) * torch.arange(half, dtype=torch.float32, device=t.device)
        exponent = exponent / (half - self.cfg["freq_shift"])
        emb = t[:, None].float() * torch.exp(exponent)[None, :]
        emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=-1)
        if self.cfg["flip_sin_to_cos"]:
            emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
        if dim % 2 == 1:
            emb = F.pad(emb, (0, 1, 0, 0))
        return emb

    def forward(self, sample, timestep, encoder_hidden_states):
        if not torch.is_tensor(timestep):
            timestep = torch.tensor([timestep], device=sample.device)
        if timestep.dim() == 0:
            timestep = timestep[None]
        timestep = timestep.to(sample.device).expand(sample.shape[0])
        temb = self.time_embedding(self.time_proj(timestep).to(sample.dtype))
        x = self.conv_in(sample)
        skips = [x]
        for blk in self.down_blocks:
            x, states = blk(x, temb, encoder_hidden_states)
            skips += states
        x = self.mid_block(x, temb, encoder_hidden_states)
        for blk in self.up_blocks:
            k = len(blk.resnets)
            mine, skips = skips[-k:], skips[:-k]
            up_size = skips[-1].shape[2:] if skips else None
            x = blk(x, mine, temb, encoder_hidden_states, up_size)
        return self.conv_out(self.conv_act(self.conv_norm_out(x)))


def lora_modules(unet):
    for name, m in unet.named_modules():
        if isinstance(m, LoRALinear):
            yield name, m


def add_lora(unet, rank, alpha):
    params = []
    for _, m in lora_modules(unet):
        m.enable_lora(rank, alpha)
        params += [m.lora_A, m.lora_B]
    return params


# --------------------------------------------------------------------------------------------- file io

_NP_DT = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
          "I64": torch.int64, "I32": torch.int32}


def load_safetensors(path):
    try:
        from safetensors.torch import load_file
        return load_file(path)
    except ImportError:
        pass
    with open(path, "rb") as f:
        (hlen,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(hlen))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        buf = bytearray(data[a:b])
        t = torch.frombuffer(buf, dtype=_NP_DT[v["dtype"]]) if b > a else torch.empty(0, dtype=_NP_DT[v["dtype"]])
        out[k] = t.reshape(v["shape"]).clone()
    return out


def save_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    inv = {v: k for k, v in _NP_DT.items()}
    for k, t in tensors.items():
        t = t.detach().contiguous().cpu()
        raw = t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes()
        header[k] = {"dtype": inv[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def load_npy(path):
    try:
        import numpy as np
        return torch.from_numpy(np.load(path))
    except ImportError:
        pass
    with open(path, "rb") as f:
        raw = f.read()
    assert raw[:6] == b"\x93NUMPY", path
    major = raw[6]
    hl = struct.unpack("<H", raw[8:10])[0] if major == 1 else struct.unpack("<I", raw[8:12])[0]
    hs = 10 if major == 1 else 12
    hdr = eval(raw[hs:hs + hl].decode("latin1"))  # the npy header is a Python dict literal
    assert not hdr["fortran_order"], path
    dt = {"<f4": torch.float32, "<f8": torch.float64, "<i8": torch.int64, "<i4": torch.int32}[hdr["descr"]]
    return torch.frombuffer(bytearray(raw[hs + hl:]), dtype=dt).reshape(hdr["shape"]).clone()


def save_npy(path, t):
    t = t.detach().cpu().contiguous()
    try:
        import numpy as np
        np.save(path, t.numpy())
        return
    except ImportError:
        pass
    descr = {torch.float32: "<f4", torch.float64: "<f8", torch.int64: "<i8", torch.int32: "<i4"}[t.dtype]
    hdr = "{'descr': '%s', 'fortran_order': False, 'shape': %r, }" % (descr, tuple(t.shape))
    hdr += " " * (-(10 + len(hdr) + 1) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode("latin1") + t.numpy().tobytes())


# --------------------------------------------------------------------------------------------- main

def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, dev, warmup, reps, label):
    for i in range(warmup):
        fn()
        sync(dev)
        log(f"  {label} warmup {i + 1}/{warmup}")
    ts = []
    for i in range(reps):
        sync(dev)
        t0 = time.perf_counter()
        fn()
        sync(dev)
        ts.append((time.perf_counter() - t0) * 1e3)
        log(f"  {label} rep {i + 1}/{reps}: {ts[-1]:.1f} ms")
    return ts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--resolution", type=int, default=512, help="pixels; latent side = resolution/8")
    ap.add_argument("--seq", type=int, default=77)
    ap.add_argument("--rank", type=int, default=10)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--config", default=None, help="diffusers unet config.json (default: built-in SD 1.5)")
    ap.add_argument("--attn", choices=["auto", "sdpa", "math"], default="auto")
    ap.add_argument("--mode", choices=["train", "forward", "both"], default="both")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tf32", action="store_true", help="allow TF32 matmul/conv on CUDA (default off)")
    ap.add_argument("--state", default=None, help="cross-check: diffusers-keyed unet .safetensors (strict)")
    ap.add_argument("--lora-state", default=None,
                    help="cross-check: diffusers LoRA .safetensors (unet.<module>.lora.down/up.weight)")
    ap.add_argument("--inputs", default=None, help="cross-check: folder with the input .npy files")
    ap.add_argument("--out", default=None, help="cross-check: folder for out_sample.npy")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
    has_sdpa = hasattr(F, "scaled_dot_product_attention")
    if args.attn == "sdpa" and not has_sdpa:
        raise SystemExit(f"--attn sdpa: torch {torch.__version__} has no F.scaled_dot_product_attention")
    ATTN_IMPL["use_sdpa"] = has_sdpa and args.attn != "math"

    if args.config:
        with open(args.config) as f:
            cfg = resolve_config(json.load(f))
    else:
        cfg = resolve_config(SD15_CONFIG)
    torch.manual_seed(args.seed)
    unet = UNet2DConditionModel(cfg)
    n_params = sum(p.numel() for p in unet.parameters())
    log(f"unet parameters: {n_params:,}")
    if not args.config:
        assert n_params == SD15_PARAMS, f"SD 1.5 UNet should have {SD15_PARAMS:,} parameters, got {n_params:,}"
    cfg_summary = {k: cfg[k] for k in ("block_out_channels", "layers_per_block", "down_block_types",
                                       "up_block_types", "cross_attention_dim", "attention_head_dim",
                                       "norm_num_groups", "use_linear_projection")}
    cfg_summary["source"] = args.config or "built-in SD 1.5"
    device_name = (torch.cuda.get_device_name(dev) if dev.type == "cuda"
                   else f"cpu ({torch.get_num_threads()} threads)")
    attn_name = "sdpa" if ATTN_IMPL["use_sdpa"] else "math"

    if args.state or args.inputs or args.out:
        if not (args.state and args.inputs and args.out):
            raise SystemExit("cross-check needs --state, --inputs and --out together")
        return cross_check(args, unet, dev, n_params, cfg_summary, device_name, attn_name)

    for p in unet.parameters():
        p.requires_grad_(False)
    torch.manual_seed(args.seed + 1)
    lora_params = add_lora(unet, args.rank, args.rank)
    n_lora = sum(p.numel() for p in lora_params)
    log(f"lora parameters: {n_lora:,} (rank {args.rank}, {len(lora_params) // 2} linears)")
    unet.to(dev).train()

    lat = args.resolution // 8
    g = torch.Generator().manual_seed(args.seed + 2)
    x = torch.randn(args.batch, cfg["in_channels"], lat, lat, generator=g).to(dev)
    noise = torch.randn(args.batch, cfg["out_channels"], lat, lat, generator=g).to(dev)
    t = torch.randint(0, 1000, (args.batch,), generator=g).to(dev)
    ehs = torch.randn(args.batch, args.seq, cfg["cross_attention_dim"], generator=g).to(dev)

    result = {
        "torch": torch.__version__, "device": device_name, "attention": attn_name,
        "tf32": bool(args.tf32 and dev.type == "cuda"), "dtype": "float32", "config": cfg_summary,
        "params": n_params, "lora_params": n_lora, "lora_rank": args.rank, "batch": args.batch,
        "resolution": args.resolution, "latent": lat, "seq": args.seq, "reps": args.reps, "warmup": args.warmup,
    }

    def peak_reset():
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)

    def peak():
        if dev.type == "cuda":
            return {"peak_mem_bytes": torch.cuda.max_memory_allocated(dev), "peak_mem_kind": "cuda_max_allocated"}
        return {"peak_mem_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                "peak_mem_kind": "ru_maxrss (process, cumulative)"}

    if args.mode in ("forward", "both"):
        log("forward (no_grad) ...")

        def fwd():
            with torch.no_grad():
                return unet(x, t, ehs)

        peak_reset()
        ts = timed(fwd, dev, args.warmup, args.reps, "forward")
        result["forward_ms"] = statistics.median(ts)
        result["forward_ms_all"] = [round(v, 3) for v in ts]
        result["forward_memory"] = peak()

    if args.mode in ("train", "both"):
        log("train step ...")
        opt = torch.optim.AdamW(lora_params, lr=5e-5, weight_decay=1e-2)
        losses = []

        def step():
            opt.zero_grad(set_to_none=True)
            pred = unet(x, t, ehs)
            loss = F.mse_loss(pred, noise)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(lora_params, 1.0)
            opt.step()
            losses.append(loss.detach())

        peak_reset()
        ts = timed(step, dev, args.warmup, args.reps, "step")
        result["step_ms"] = statistics.median(ts)
        result["step_ms_all"] = [round(v, 3) for v in ts]
        result["steps_per_s"] = 1e3 / result["step_ms"]
        result["samples_per_s"] = args.batch * result["steps_per_s"]
        result["losses"] = [float(v) for v in losses]
        result["train_memory"] = peak()

    print(json.dumps(result, indent=1))


def cross_check(args, unet, dev, n_params, cfg_summary, device_name, attn_name):
    sd = load_safetensors(args.state)
    unet.load_state_dict(sd, strict=True)  # raises on any missing/unexpected key or shape mismatch
    log(f"loaded {len(sd)} tensors from {args.state} (strict)")
    n_lora = 0
    lora_keys = {}
    if args.lora_state:
        lsd = load_safetensors(args.lora_state)
        used = set()
        for name, m in lora_modules(unet):
            kd, ku = f"unet.{name}.lora.down.weight", f"unet.{name}.lora.up.weight"
            if kd not in lsd:
                continue
            down, up = lsd[kd], lsd[ku]
            rank = down.shape[0]
            ka = f"unet.{name}.alpha"
            alpha = float(lsd[ka]) if ka in lsd else float(rank)
            m.enable_lora(rank, alpha)
            with torch.no_grad():
                m.lora_A.copy_(down)
                m.lora_B.copy_(up)
            lora_keys[kd], lora_keys[ku] = m.lora_A, m.lora_B
            used |= {kd, ku, ka}
            n_lora += down.numel() + up.numel()
        left = sorted(set(lsd) - used)
        if left:
            raise SystemExit(f"LoRA keys not matched to a module: {left[:5]} ...")
        log(f"LoRA: {len(lora_keys)} tensors")
    for p in unet.parameters():
        p.requires_grad_(False)
    for p in lora_keys.values():
        p.requires_grad_(True)
    unet.to(dev).eval()

    def first(*names):
        for nme in names:
            p = os.path.join(args.inputs, nme)
            if os.path.exists(p):
                return load_npy(p)
        raise SystemExit(f"none of {names} in {args.inputs}")

    sample = first("sample.npy", "noisy_latents.npy").float().to(dev)
    timestep = first("timestep.npy", "timesteps.npy").to(dev)
    ehs = first("encoder_hidden_states.npy").float().to(dev)
    os.makedirs(args.out, exist_ok=True)
    with torch.set_grad_enabled(bool(lora_keys)):
        out = unet(sample, timestep, ehs)
    save_npy(os.path.join(args.out, "out_sample.npy"), out)
    result = {"torch": torch.__version__, "device": device_name, "attention": attn_name, "config": cfg_summary,
              "params": n_params, "lora_params": n_lora, "mode": "cross-check",
              "out_sample": os.path.join(args.out, "out_sample.npy"), "out_shape": list(out.shape),
              "out_abs_mean": float(out.abs().mean())}
    noise_path = os.path.join(args.inputs, "noise.npy")
    if os.path.exists(noise_path):
        loss = F.mse_loss(out, load_npy(noise_path).float().to(dev))
        save_npy(os.path.join(args.out, "loss.npy"), loss.detach().reshape(1))
        result["loss"] = float(loss)
        if lora_keys:
            loss.backward()
            gdir = os.path.join(args.out, "lora_grads")
            os.makedirs(gdir, exist_ok=True)
            for k, p in lora_keys.items():
                save_npy(os.path.join(gdir, k + ".npy"), p.grad)
            result["lora_grads"] = gdir
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
