#!/usr/bin/env python3
"""Train node-diffusion's built-in models: a pixel-space class-conditional DiT and a DiT-MoE on
procedurally drawn coloured shapes (32x32 RGB, 10 classes), plus the tiny CNN that scores samples.

Everything is reproducible from fixed seeds and needs nothing but PyTorch and NumPy (no downloads: the
data are drawn by this script). The diffusion networks are written here from the DiT / DiT-MoE papers
in the tensor layout node-diffusion loads (facebookresearch/DiT and DiT-MoE names), so the files this
script writes load with `loadModel()` / `Pipeline.load()` unchanged.

  /usr/bin/python3 tools/train_builtin.py all --out models          # classifier, DiT, DiT-MoE
  /usr/bin/python3 tools/train_builtin.py dit --minutes 30 --out models
  /usr/bin/python3 tools/train_builtin.py moe --minutes 30 --out models
  /usr/bin/python3 tools/train_builtin.py classifier --out models
  python3 tools/train_builtin.py dit --device cuda --steps N --out models   # on a GPU

A run is bounded by --steps (and, optionally, --minutes as a wall-clock cap; then the number of steps
reached is written into the model card, and a rerun with --steps set to it reproduces the weights).
On a CPU, Debian's PyTorch is several times faster with OpenBLAS' AVX-512 kernels:
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread OPENBLAS_CORETYPE=SkylakeX python3 ...
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

CLASS_NAMES = ["circle", "square", "triangle", "plus", "ring", "diamond", "cross", "frame", "bars", "dots"]
IMAGE_SIZE = 32


# ---------------------------------------------------------------------------------------------------
# data: anti-aliased shapes of random size, position and colours on a flat background
# ---------------------------------------------------------------------------------------------------
def shape_mask(cls, u, v):
    """Inside-mask of class `cls` ([B] long) at normalised coordinates u, v ([B, S, S])."""
    c = cls.view(-1, 1, 1)
    r = torch.sqrt(u * u + v * v)
    m = torch.maximum(u.abs(), v.abs())
    masks = [
        r <= 1.0,                                                                     # circle
        m <= 0.8,                                                                     # square
        (v <= 0.7) & (u.abs() <= 0.95 * (v + 0.95) / 1.65),                           # triangle, apex up
        ((u.abs() <= 0.28) & (v.abs() <= 0.95)) | ((v.abs() <= 0.28) & (u.abs() <= 0.95)),  # plus
        (r <= 1.0) & (r >= 0.55),                                                     # ring
        u.abs() + v.abs() <= 1.0,                                                     # diamond
        (((u - v).abs() <= 0.32) | ((u + v).abs() <= 0.32)) & (m <= 0.85),          # cross (x)
        (m <= 0.85) & (m >= 0.52),                                                    # frame
        (u.abs() <= 0.9) & (((v + 0.6).abs() <= 0.17) | (v.abs() <= 0.17) | ((v - 0.6).abs() <= 0.17)),  # bars
        (((u.abs() - 0.5) ** 2 + (v.abs() - 0.5) ** 2) <= 0.32 ** 2),                 # dots (2x2)
    ]
    out = torch.zeros_like(u, dtype=torch.bool)
    for k, mk in enumerate(masks):
        out = torch.where(c == k, mk, out)
    return out


def draw_shapes(cls, gen, positions="anywhere"):
    """Images [B, 3, 32, 32] in [-1, 1] for the classes `cls`, drawn with generator `gen`. positions:
    'anywhere' (the whole shape inside the image) or 'centered' (the centre within 3 px of the middle)."""
    B, S, ss = cls.shape[0], IMAGE_SIZE, 4  # 4x4 supersampling
    radius = 7.0 + 5.0 * torch.rand(B, generator=gen)
    if positions == "centered":
        cx = S / 2 + 6.0 * (torch.rand(B, generator=gen) - 0.5)
        cy = S / 2 + 6.0 * (torch.rand(B, generator=gen) - 0.5)
    else:
        cx = radius + 1 + (S - 2 * radius - 2) * torch.rand(B, generator=gen)
        cy = radius + 1 + (S - 2 * radius - 2) * torch.rand(B, generator=gen)
    g = (torch.arange(S * ss, dtype=torch.float32) + 0.5) / ss
    yy, xx = torch.meshgrid(g, g, indexing="ij")
    u = (xx[None] - cx.view(-1, 1, 1)) / radius.view(-1, 1, 1)
    v = (yy[None] - cy.view(-1, 1, 1)) / radius.view(-1, 1, 1)
    cover = F.avg_pool2d(shape_mask(cls, u, v).float()[:, None], ss)  # [B, 1, S, S]
    bg = torch.rand(B, 3, generator=gen)
    fg = torch.rand(B, 3, generator=gen)
    for _ in range(64):  # resample foregrounds too close to their background (rejection, deterministic)
        bad = (fg - bg).norm(dim=1) < 0.6
        if not bad.any():
            break
        fg = torch.where(bad[:, None], torch.rand(B, 3, generator=gen), fg)
    img = bg.view(B, 3, 1, 1) * (1 - cover) + fg.view(B, 3, 1, 1) * cover
    return img * 2 - 1


def batch(gen, n, classes=10, positions="anywhere"):
    y = torch.randint(0, classes, (n,), generator=gen)
    return draw_shapes(y, gen, positions), y


# ---------------------------------------------------------------------------------------------------
# safetensors (write only)
# ---------------------------------------------------------------------------------------------------
def save_safetensors(path, tensors, metadata, dtype, dtypes=None):
    kinds = {"f32": ("F32", np.float32), "f16": ("F16", np.float16), "u8": ("U8", np.uint8)}
    header, blobs, off = {"__metadata__": {k: str(v) for k, v in metadata.items()}}, [], 0
    for name in sorted(tensors):
        st = kinds[(dtypes or {}).get(name, dtype)]
        a = np.ascontiguousarray(tensors[name].detach().cpu().float().numpy().astype(st[1]))
        header[name] = {"dtype": st[0], "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    kinds = {"F32": np.float32, "F16": np.float16}
    return {k: torch.from_numpy(np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]], kinds[v["dtype"]])
                                .astype(np.float32).reshape(v["shape"]))
            for k, v in header.items() if k != "__metadata__"}


# ---------------------------------------------------------------------------------------------------
# DiT / DiT-MoE (parameter names = the original layouts)
# ---------------------------------------------------------------------------------------------------
def timestep_embedding(t, dim=256):
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    a = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(a), torch.sin(a)], dim=1)


def pos_table(D, gh, gw):
    q = D // 4
    w = 1.0 / (10000.0 ** (torch.arange(q, dtype=torch.float64) / q))
    r, c = torch.meshgrid(torch.arange(gh, dtype=torch.float64), torch.arange(gw, dtype=torch.float64), indexing="ij")
    r, c = r.reshape(-1, 1) * w, c.reshape(-1, 1) * w
    return torch.cat([torch.sin(c), torch.cos(c), torch.sin(r), torch.cos(r)], dim=1).float()


class Embedder(nn.Module):
    def __init__(self, D):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(256, D), nn.SiLU(), nn.Linear(D, D))


class LabelEmbedder(nn.Module):
    def __init__(self, classes, D):
        super().__init__()
        self.embedding_table = nn.Embedding(classes + 1, D)  # the last row is the CFG null class


class PatchEmbed(nn.Module):
    def __init__(self, C, D, p):
        super().__init__()
        self.proj = nn.Conv2d(C, D, p, p)


class Attention(nn.Module):
    def __init__(self, D, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(D, 3 * D)
        self.proj = nn.Linear(D, D)

    def forward(self, x):
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D // self.heads), dim=-1)
        return self.proj((a @ v).transpose(1, 2).reshape(B, T, D))


class Mlp(nn.Module):
    def __init__(self, D, H):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(D, H), nn.Linear(H, D)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class SwiGlu(nn.Module):
    def __init__(self, D, H):
        super().__init__()
        self.gate_proj, self.up_proj = nn.Linear(D, H, bias=False), nn.Linear(D, H, bias=False)
        self.down_proj = nn.Linear(H, D, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Gate(nn.Module):
    def __init__(self, D, E):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(E, D) * 0.02)


class Moe(nn.Module):
    """Softmax router, top-k weighted by the raw probabilities, plus a shared expert; the Switch
    load-balancing loss keeps every expert in use."""

    def __init__(self, D, H, E, K, shared_hidden):
        super().__init__()
        self.K = K
        self.gate = Gate(D, E)
        self.experts = nn.ModuleList([SwiGlu(D, H) for _ in range(E)])
        self.shared_experts = SwiGlu(D, shared_hidden)
        self.aux = torch.zeros(())

    def forward(self, x):
        B, T, D = x.shape
        z = x.reshape(-1, D)
        probs = torch.softmax(z @ self.gate.weight.t(), dim=-1)
        topv, topi = probs.topk(self.K, dim=-1)
        E = probs.shape[1]
        weight = torch.zeros_like(probs).scatter(1, topi, topv)  # [N, E], zero for unchosen experts
        out = self.shared_experts(z)
        for e in range(E):
            rows = (topi == e).any(dim=1).nonzero(as_tuple=True)[0]
            if rows.numel():
                out = out.index_add(0, rows, self.experts[e](z[rows]) * weight[rows, e:e + 1])
        frac = F.one_hot(topi, E).float().sum(1).mean(0) / self.K
        self.aux = E * (frac * probs.mean(0)).sum()
        return out.view(B, T, D)


def modulate(x, shift, scale):
    return x * (1 + scale[:, None]) + shift[:, None]


class Block(nn.Module):
    def __init__(self, D, heads, mlp, moe):
        super().__init__()
        self.attn = Attention(D, heads)
        if moe is None:
            self.mlp = Mlp(D, mlp)
        else:
            self.moe = Moe(D, **moe)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(D, 6 * D))

    def forward(self, x, c):
        sm, cm, gm, sf, cf, gf = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gm[:, None] * self.attn(modulate(F.layer_norm(x, x.shape[-1:], eps=1e-6), sm, cm))
        ff = self.mlp if hasattr(self, "mlp") else self.moe
        return x + gf[:, None] * ff(modulate(F.layer_norm(x, x.shape[-1:], eps=1e-6), sf, cf))


class FinalLayer(nn.Module):
    def __init__(self, D, p, C):
        super().__init__()
        self.linear = nn.Linear(D, p * p * C)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(D, 2 * D))


class Dit(nn.Module):
    def __init__(self, C, D, depth, heads, patch, classes, mlp_ratio=4.0, moe=None):
        super().__init__()
        self.C, self.D, self.p, self.classes = C, D, patch, classes
        self.x_embedder = PatchEmbed(C, D, patch)
        self.t_embedder = Embedder(D)
        self.y_embedder = LabelEmbedder(classes, D)
        self.blocks = nn.ModuleList([Block(D, heads, int(mlp_ratio * D), moe) for _ in range(depth)])
        self.final_layer = FinalLayer(D, patch, C)
        g = IMAGE_SIZE // patch
        self.register_buffer("pos", pos_table(D, g, g)[None], persistent=False)
        for m in self.modules():  # the DiT initialisation: xavier linears, adaLN-Zero, zero output
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        w = self.x_embedder.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.x_embedder.proj.bias)
        nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)
        for lin in (self.t_embedder.mlp[0], self.t_embedder.mlp[2]):
            nn.init.normal_(lin.weight, std=0.02)
        for blk in self.blocks:
            nn.init.zeros_(blk.adaLN_modulation[1].weight)
            nn.init.zeros_(blk.adaLN_modulation[1].bias)
            if hasattr(blk, "moe"):
                nn.init.normal_(blk.moe.gate.weight, std=0.02)
        for lin in (self.final_layer.adaLN_modulation[1], self.final_layer.linear):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, x, t, y):
        B, C, H, W = x.shape
        p = self.p
        h = self.x_embedder.proj(x).flatten(2).transpose(1, 2) + self.pos
        c = self.t_embedder.mlp(timestep_embedding(t)) + self.y_embedder.embedding_table(y)
        for blk in self.blocks:
            h = blk(h, c)
        shift, scale = self.final_layer.adaLN_modulation(c).chunk(2, dim=1)
        h = self.final_layer.linear(modulate(F.layer_norm(h, h.shape[-1:], eps=1e-6), shift, scale))
        h = h.view(B, H // p, W // p, p, p, C).permute(0, 5, 1, 3, 2, 4)
        return h.reshape(B, C, H, W)

    def aux_loss(self):
        return sum((blk.moe.aux for blk in self.blocks if hasattr(blk, "moe")), torch.zeros(()))


# ---------------------------------------------------------------------------------------------------
# the classifier that scores samples (lib/classifier.ts runs the same network)
# ---------------------------------------------------------------------------------------------------
class ShapeClassifier(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):  # x in [-1, 1]
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.conv3(x)).mean(dim=(2, 3))
        return self.fc(x)


# ---------------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------------
MODELS = {
    # name: constructor arguments, storage dtype
    "dit": dict(file="shapes", family="dit", C=3, D=96, depth=6, heads=3, patch=4, classes=10, mlp_ratio=4.0, moe=None),
    # active MLP per token: two routed SwiGLU experts and the shared one, 3 * 3 * 96 * 96 (dense: 2 * 4 * 96 * 96)
    "moe": dict(file="shapes-moe", family="dit-moe", C=3, D=96, depth=6, heads=3, patch=4, classes=10, mlp_ratio=1.0,
                moe=dict(H=96, E=4, K=2, shared_hidden=96)),
}
SCHEDULE = dict(kind="vpDiscrete", betaSchedule="linear", betaStart=1e-4, betaEnd=0.02, numTrainTimesteps=1000)


def alphas_cumprod():
    betas = torch.linspace(SCHEDULE["betaStart"], SCHEDULE["betaEnd"], SCHEDULE["numTrainTimesteps"], dtype=torch.float64)
    return torch.cumprod(1 - betas, 0).float()


@torch.no_grad()
def ddim_sample(model, y, gen, steps=20, scale=3.0):
    """Deterministic DDIM with CFG: the script's own check of what it trained."""
    ab = alphas_cumprod()
    ts = torch.linspace(999, 0, steps).round().long()
    x = torch.randn(y.shape[0], 3, IMAGE_SIZE, IMAGE_SIZE, generator=gen)
    null = torch.full_like(y, model.classes)
    for i, t in enumerate(ts):
        tt = torch.full((y.shape[0],), int(t))
        e = model(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([y, null]))
        ec, eu = e.chunk(2)
        e = eu + scale * (ec - eu)
        a = ab[t]
        x0 = ((x - (1 - a).sqrt() * e) / a.sqrt()).clamp(-1, 1)
        a_next = ab[ts[i + 1]] if i + 1 < steps else torch.tensor(1.0)
        x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * e
    return x


def train_diffusion(key, args):
    spec = dict(MODELS[key])
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed + 1)
    model = Dit(spec["C"], spec["D"], spec["depth"], spec["heads"], spec["patch"], spec["classes"], spec["mlp_ratio"], spec["moe"])
    ema = Dit(spec["C"], spec["D"], spec["depth"], spec["heads"], spec["patch"], spec["classes"], spec["mlp_ratio"], spec["moe"])
    if args.init:  # continue from shipped (EMA) weights: model and EMA start there, the optimizer afresh
        init = load_safetensors(args.init)
        missing, unexpected = model.load_state_dict(init, strict=False)
        if [k for k in missing if k != "pos"] or unexpected:
            raise SystemExit(f"--init {args.init}: missing {missing}, unexpected {unexpected}")
    ema.load_state_dict(model.state_dict())
    dev = torch.device(args.device)
    model.to(dev)
    ema.to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    ab = alphas_cumprod().to(dev)
    t0, step, log = time.time(), 0, []
    while step < args.steps and (args.minutes is None or time.time() - t0 < 60 * args.minutes):
        x0, y = batch(gen, args.batch, positions=args.positions)
        y = torch.where(torch.rand(y.shape, generator=gen) < 0.1, torch.full_like(y, spec["classes"]), y)  # CFG dropout
        t = torch.randint(0, 1000, (args.batch,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        # the data and the noise are drawn on the CPU (one generator), so a GPU run sees the same batches
        x0, y, t, noise = x0.to(dev), y.to(dev), t.to(dev), noise.to(dev)
        a = ab[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        if args.min_snr > 0:  # Min-SNR-gamma (Hang et al. 2023) for eps: weight min(SNR, gamma) / SNR per sample
            snr = a.view(-1) / (1 - a.view(-1))
            w = torch.clamp(snr, max=args.min_snr) / snr
            loss = (w * ((model(xt, t, y) - noise) ** 2).mean(dim=(1, 2, 3))).mean()
        else:
            loss = F.mse_loss(model(xt, t, y), noise)
        aux = model.aux_loss()
        lr = args.lr * min(1.0, (step + 1) / 200)
        for g_ in opt.param_groups:
            g_["lr"] = lr
        opt.zero_grad(set_to_none=True)
        (loss + 0.01 * aux).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(decay).add_(pm, alpha=1 - decay)
        step += 1
        if step % 50 == 0 or step == 1:
            el = time.time() - t0
            log.append(dict(step=step, loss=round(loss.item(), 5), aux=round(float(aux), 4), seconds=round(el, 1)))
            print(f"[{key}] step {step} loss {loss.item():.4f} aux {float(aux):.3f} {el:.0f}s", flush=True)
    elapsed = time.time() - t0
    return spec, ema.cpu(), step, elapsed, log


def save_model(key, spec, ema, steps, elapsed, log, args):
    os.makedirs(args.out, exist_ok=True)
    base = os.path.join(args.out, spec["file"])
    sd = {k: v for k, v in ema.state_dict().items() if k != "pos"}
    n_params = sum(v.numel() for v in sd.values())
    save_safetensors(base + ".safetensors", sd, {"format": "pt", "node_diffusion_builtin": spec["file"]}, args.dtype)
    # the script's own quick score (DDIM 20 steps, CFG 3), for the record: the engine's figures are in docs/models.md
    acc = None
    clf_path = os.path.join(args.out, "shapes-classifier.safetensors")
    if os.path.exists(clf_path):
        clf = ShapeClassifier()
        clf.load_state_dict(load_safetensors(clf_path))
        g = torch.Generator().manual_seed(1234)
        y = torch.arange(200) % 10
        with torch.no_grad():
            imgs = ddim_sample(ema, y, g)
            acc = float((clf(imgs).argmax(1) == y).float().mean())
        print(f"[{key}] DDIM-20 CFG 3 classifier accuracy (PyTorch): {acc:.3f}", flush=True)
    card = {
        "name": spec["file"],
        "description": ("Class-conditional pixel-space " + ("DiT-MoE" if spec["moe"] else "DiT") +
                        " trained on procedurally drawn coloured shapes (32x32 RGB)."),
        "family": spec["family"],
        "heads": spec["heads"],
        **({"topK": spec["moe"]["K"], "experts": spec["moe"]["E"]} if spec["moe"] else {}),
        "config": {"inChannels": spec["C"], "hidden": spec["D"], "depth": spec["depth"], "heads": spec["heads"],
                   "patch": spec["patch"], "classes": spec["classes"], "mlpRatio": spec["mlp_ratio"],
                   "learnSigma": False, "moe": spec["moe"], "parameters": n_params, "dtype": args.dtype},
        "imageSize": [IMAGE_SIZE, IMAGE_SIZE],
        "classNames": CLASS_NAMES,
        "prediction": "eps",
        "schedule": SCHEDULE,
        "valueRange": [-1, 1],
        "defaults": {"sampler": "dpmpp-2m", "steps": 20, "guidanceScale": 3},
        "classifier": "shapes-classifier",
        "data": f"tools/train_builtin.py draw_shapes: 10 shapes, radius 7-12 px, positions '{args.positions}', random "
                "foreground and background colours (RGB distance >= 0.6), 4x4 supersampled; a fresh batch every step",
        "training": {"command": f"tools/train_builtin.py {key} --steps {steps} --seed {args.seed}" + (f" --init {args.init}" if args.init else ""),
                     **({"initialisedFrom": args.init_card} if args.init else {}),
                     "steps": steps, "batch": args.batch, "lr": args.lr, "emaDecay": args.ema, "seed": args.seed,
                     "labelDropout": 0.1, "positions": args.positions, "minSnrGamma": args.min_snr, "loss": "eps MSE" + (" + 0.01 * Switch load balance" if spec["moe"] else ""),
                     "seconds": round(elapsed), "torch": torch.__version__, "threads": torch.get_num_threads(),
                     "lossLog": log[-5:]},
        "quality": {"pytorchDdim20Cfg3ClassifierAccuracy": acc},
    }
    with open(base + ".json", "w") as f:
        json.dump(card, f, indent=2)
        f.write("\n")
    print(f"[{key}] wrote {base}.safetensors ({os.path.getsize(base + '.safetensors')} bytes), {n_params} parameters")


def train_classifier(args):
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed + 7)
    clf = ShapeClassifier()
    opt = torch.optim.Adam(clf.parameters(), lr=2e-3)
    t0 = time.time()
    for step in range(args.classifier_steps):
        x, y = batch(gen, 128)
        x = x + 0.05 * torch.randn(x.shape, generator=gen)  # samples are never exactly flat
        loss = F.cross_entropy(clf(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 200 == 0:
            print(f"[classifier] step {step} loss {loss.item():.4f}", flush=True)
    gtest = torch.Generator().manual_seed(999)
    x, y = batch(gtest, 2000)
    with torch.no_grad():
        acc = float((clf(x).argmax(1) == y).float().mean())
    print(f"[classifier] held-out accuracy {acc:.4f} ({time.time() - t0:.0f}s)")
    os.makedirs(args.out, exist_ok=True)
    base = os.path.join(args.out, "shapes-classifier")
    save_safetensors(base + ".safetensors", dict(clf.state_dict()), {"format": "pt"}, "f32")
    with open(base + ".json", "w") as f:
        json.dump({"name": "shapes-classifier", "classNames": CLASS_NAMES, "inputRange": [-1, 1],
                   "architecture": "conv3x3(3->16) relu maxpool2, conv3x3(16->32) relu maxpool2, conv3x3(32->64) relu, "
                                   "global mean, linear(64->10)",
                   "training": {"steps": args.classifier_steps, "batch": 128, "seed": args.seed, "inputNoise": 0.05},
                   "heldOutAccuracy": acc}, f, indent=2)
        f.write("\n")
    # fixture for the TypeScript classifier's test: 64 held-out images (uint8) and PyTorch's logits on them
    xs, ys = batch(torch.Generator().manual_seed(4242), 64)
    q = ((xs + 1) * 127.5).round().clamp(0, 255)
    with torch.no_grad():
        logits = clf(q / 127.5 - 1)
    save_safetensors(os.path.join(args.out, "shapes-classifier-check.safetensors"),
                     {"images": q, "labels": ys, "logits": logits}, {"format": "pt"}, "f32", {"images": "u8", "labels": "u8"})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["all", "dit", "moe", "classifier", "sample"])
    ap.add_argument("--out", default="models")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--minutes", type=float, default=None)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=6e-4)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=["f32", "f16"], default="f16")
    ap.add_argument("--classifier-steps", type=int, default=1500)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--device", default="cpu", help="cpu, or cuda with a CUDA build of PyTorch")
    ap.add_argument("--positions", choices=["anywhere", "centered"], default="centered",
                    help="where the diffusion models' training shapes sit (the classifier always sees 'anywhere')")
    ap.add_argument("--min-snr", type=float, default=0.0, help="Min-SNR-gamma loss weighting (0: plain eps MSE)")
    ap.add_argument("--init", default=None, help="start from these weights (a previous run's .safetensors)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.init_card = None
    if args.init:  # keep the earlier run's record: the card of the weights we continue from
        card_path = args.init[:-len(".safetensors")] + ".json"
        if os.path.exists(card_path):
            with open(card_path) as f:
                args.init_card = json.load(f).get("training")
    if args.what in ("all", "classifier"):
        train_classifier(args)
    for key in ("dit", "moe"):
        if args.what in ("all", key):
            save_model(key, *train_diffusion(key, args), args)


if __name__ == "__main__":
    main()
