#!/usr/bin/env python3
# =====================================================================================================
# dit_reference.py -- independent float64 PyTorch reference of DiT and DiT-MoE (ground truth for the
# node-diffusion engine tests).
#
# Written from the specification in shared/research/models.md (sections 1.2-1.4, 2.1, 3, 7) and
# shared/research/parallel_moe_cache.md section 5, NOT from the engine's code and not from the
# facebookresearch/DiT, feizc/DiT-MoE, diffusers or timm sources.
#
# Requirements: /usr/bin/python3 with torch (CPU, tested with 1.13) and numpy. No safetensors package is
# needed: a minimal safetensors reader/writer is included (F64/F32/F16/BF16/I64/I32/I16/I8/U8/BOOL).
#
# Subcommands
#   make     random weights -> safetensors, in one of three key layouts:
#              original   facebookresearch/DiT names (blocks.*, pos_embed stored for --grid)
#              diffusers  DiTTransformer2DModel names (per-block duplicated embedders, split q/k/v,
#                         proj_out_1/2, no pos_embed)
#              dit-moe    feizc/DiT-MoE names (= original names, blocks.{i}.moe.* instead of
#                         blocks.{i}.mlp.*; with --qk-norm 1 the flash-attention names attn.Wqkv,
#                         attn.q_norm, attn.k_norm, attn.out_proj)
#            'original' and 'dit-moe' are one naming scheme: a dense DiT written with --layout dit-moe is
#            identical to --layout original. The diffusers layout supports only dense DiT without qk-norm.
#            The parameters are drawn ONCE, in float64, in the canonical original-layout order (the order
#            of the key list below), with torch.Generator().manual_seed(seed), then stored as f32 (or
#            f16/bf16, which are rounded from the f32 value) and *mapped* to the requested layout, so one seed
#            gives the same model in every layout. Distributions:
#              * every weight and bias                      N(0, std)            std = --std (0.02)
#              * y_embedder.embedding_table.weight          N(0, std)
#              * blocks.{i}.moe.gate.weight (router)        N(0, gate_std)       gate_std = --gate-std (1.0)
#                (large so that the top-k choices are well separated, no near-ties)
#              * attn.q_norm.weight / attn.k_norm.weight    1 + N(0, std)        (deliberate: N(0,0.02) scales
#                would make every attention map uniform, so the test could not see ordering errors)
#              * attn.q_norm.bias / attn.k_norm.bias        N(0, std)
#              * pos_embed (original/dit-moe only)          the fixed 2-D sin-cos table for --grid GH GW
#                (stored in the requested dtype)
#            --zero-init 1 then zeroes every adaLN_modulation and final_layer weight/bias (output == 0).
#            The config used is stored, for information only, in __metadata__ = {"nd_test_config": json}.
#            Generation order per block (canonical): attn.qkv.w, attn.qkv.b, [q_norm.w, q_norm.b, k_norm.w,
#            k_norm.b], attn.proj.w, attn.proj.b, then mlp.fc1.w, fc1.b, fc2.w, fc2.b  OR  moe.gate.w,
#            experts.{e}.gate_proj/up_proj/down_proj for e = 0..E-1, shared gate_proj/up_proj/down_proj,
#            then adaLN_modulation.1.w, .b. Trunk order: x_embedder w,b; t_embedder mlp.0 w,b, mlp.2 w,b;
#            embedding table; blocks; final_layer.linear w,b; final_layer.adaLN_modulation.1 w,b.
#   inputs   x [B,C,H,W] F32 ~ N(0,1); t [B] F32: integers spread over 0..999 (t[0] = 999, t[B-1] = 0 when
#            B >= 2, the others random integers), with --t-float values in (0,1] (t[0] = 1.0, the others
#            uniform in (0,1]); y [B] I64 random classes in [0, classes) with y[B-1] = classes (the CFG null
#            class) when B >= 2.
#   run      float64 forward; writes `out` [B,outC,H,W] F64 and intermediates (all F64 unless noted):
#              x_emb [B,T,D] (patch embed + pos embed), t_emb [B,D], c [B,D] (t_emb + y_emb),
#              block0 [B,T,D] (output of block 0), final_in [B,T,D] (input of the final layer),
#              and per MoE layer i: experts_l{i} [B,T,K] I64 (chosen expert ids, descending probability),
#              topk_prob_l{i} [B,T,K] F64 (their softmax probabilities), kept_l{i} [B,T,K] I64 (1 kept,
#              0 dropped by capacity), tokens_per_expert_l{i} [B,E] I64 (kept assignments per expert),
#              route_gap_l{i} [B,T] F64 (smallest difference between adjacent sorted router probabilities
#              among ranks 1..K+1: how close the token's routing is to a tie).
#            For the diffusers layout t_emb/c are those of block 0 (each block uses its own duplicated
#            embedder copy, as diffusers does; the final layer uses block 0's, as diffusers does).
#   cfg      classifier-free guidance (models.md 1.4): cond = forward(x,t,y), uncond = forward(x,t,null)
#            with null = classes; out[:, :g] = uncond + S*(cond - uncond), out[:, g:] = cond[:, g:].
#            Writes out, cond, uncond (F64).
#   selftest internal verification (see below).
#
# Forward semantics (models.md 1.3):
#   * patch embed = Conv2d(k=p, s=p) with bias; tokens row-major (r*W'+c).
#   * pos embed recomputed for the input's grid (H/p x W/p) in float64:
#       token (r,c) = [sin(c*w) | cos(c*w) | sin(r*w) | cos(r*w)], each D/4 wide, w_k = 1/10000^(k/(D/4)).
#     A stored pos_embed is never used; if present and its T matches the grid it is asserted equal to the
#     recomputed table (tolerance 1e-6 for F32/F64, 2e-3 for F16, 1e-2 for BF16 storage).
#   * timestep embedding: dim = in-features of t_embedder.mlp.0 (256), half = dim/2,
#     freqs_k = exp(-ln(10000) * k / (half - freq_shift)), emb = [cos(t*f) | sin(t*f)];
#     te = L2(SiLU(L1(emb))). freq_shift 0 = original DiT (default for original/dit-moe), 1 = diffusers
#     (default for the diffusers layout).
#   * c = te + table[y]. adaLN: Linear(SiLU(c)).chunk(6) = shift_msa, scale_msa, gate_msa, shift_mlp,
#     scale_mlp, gate_mlp; modulate(z) = z*(1+scale) + shift; LayerNorm without affine (biased variance).
#     LN1 eps 1e-6, pre-MLP LN2 eps = --norm3-eps (default 1e-6; 1e-5 for the diffusers layout, = diffusers'
#     norm3), final LN eps 1e-6.
#   * attention: qkv columns [q | k | v], head h owns columns [h*hd,(h+1)*hd) of each; optional qk-norm =
#     LayerNorm(hd, eps 1e-6, affine) on q and k per head; softmax(q k^T / sqrt(hd)) v; proj.
#   * MLP = fc2(gelu_tanh(fc1(z))).  MoE (parallel_moe_cache.md 5): probs = softmax(z Wg^T) over E; top-K by
#     probability (ties -> lower expert index); out = sum_k prob_k * down(silu(gate(z)) * up(z)) (no top-k
#     renormalisation) + shared(z). Capacity (only with --capacity-factor CF): per sample and per layer each
#     expert accepts at most C = ceil((CF * T * K) / E) assignments (computed in double in that order);
#     assignments are taken in priority order: all tokens' 1st choices in token order, then all 2nd choices,
#     ...; an assignment whose expert is already full is dropped (contributes nothing, nothing renormalised;
#     the shared expert and the residual still apply).
#   * final layer: Linear(SiLU(c)).chunk(2) = shift, scale; linear(modulate(LN(h))).
#   * unpatchify: out[n, ch, r*p+pi, c*p+qj] = tok[n, r*W'+c, (pi*p+qj)*outC + ch].
#   * top-K for MoE (not inferable from the weights): --top-k, else nd_test_config.top_k from the
#     weights' metadata, else 2. heads: --heads is required.
#
# GEMM backend: every Linear and attention matmul goes through one float64 GEMM helper. If an OpenBLAS
#   shared library is found (env DIT_REF_BLAS, --blas PATH, a system libopenblas*.so, or the
#   libscipy_openblas bundled in a numpy/scipy wheel of any local Python) its cblas_dgemm is called through
#   ctypes; otherwise torch.matmul (which may be the slow netlib reference BLAS). --blas torch forces torch.
#   The backend in use is printed on stderr.
#
# CLI
#   python3 test/reference/dit_reference.py make --family dit|dit-moe --depth D --hidden H --heads NH
#       --patch P [--in-channels 4] [--classes 1000] [--learn-sigma 1] [--mlp-ratio 4]
#       [--experts E --top-k K --shared-mult 2] [--qk-norm 0|1] --seed S [--dtype f32|f16|bf16|f64]
#       --layout original|diffusers|dit-moe --grid GH GW [--std 0.02] [--gate-std 1.0] [--zero-init 0|1]
#       --out weights.safetensors
#   python3 test/reference/dit_reference.py inputs --batch B [--channels 4] --height H --width W
#       [--classes 1000] --seed S [--t-float] --out in.safetensors
#   python3 test/reference/dit_reference.py run --weights W --layout original|diffusers|dit-moe --heads NH
#       --inputs in.safetensors --out out.safetensors [--freq-shift 0|1] [--norm3-eps E]
#       [--capacity-factor CF] [--top-k K] [--threads 2] [--blas auto|torch|PATH]
#   python3 test/reference/dit_reference.py cfg --weights W --layout L --heads NH --inputs in.safetensors
#       --scale S [--guided-channels 3|4] --out out.safetensors  (+ the run flags)
#   python3 test/reference/dit_reference.py selftest [--threads 2] [--blas auto|torch|PATH]
#
# selftest checks: (1) a second, independently written forward (explicit loops for the pos/timestep
# tables, unfold+matmul patch embed, per-head attention loops with a hand-written softmax, hand-written
# LayerNorm/GELU/SiLU, per-token MoE routing with a Python sort and Python capacity counters, loop
# unpatchify) agrees with the main forward to 1e-12 * max(1, max|out|) for tiny DiT / DiT-MoE (qk-norm on/off, capacity
# on/off, square and non-square grids, weight std 0.02 and 0.15); (2) original vs diffusers layout files
# from one seed give bit-identical float64 outputs with freq_shift 0 / norm3 eps 1e-6 (and differ with the
# diffusers defaults); (3) zero adaLN + final layer -> output exactly 0; (4) safetensors round trip incl.
# F16/BF16 rounding against torch's conversions; (5) the stored pos_embed equals the recomputed table.
# =====================================================================================================
import argparse
import json
import math
import os
import struct
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

F64 = torch.float64

# -----------------------------------------------------------------------------------------------------
# minimal safetensors
# -----------------------------------------------------------------------------------------------------
_ST_NP = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U8": np.dtype("u1"), "BOOL": np.dtype("u1"),
}
_ST_SIZE = {k: v.itemsize for k, v in _ST_NP.items()}


def f32_to_bf16_bits(a):
    """float32 array -> uint16 bf16 bit patterns, round to nearest even (NaN kept quiet)."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    u = a.view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(a)
    if nan.any():
        r[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return r


def bf16_bits_to_f32(b):
    return (np.asarray(b, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def to_storage(x, dtype):
    """torch/numpy float array -> (numpy array in storage form, safetensors dtype string)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    d = dtype.upper()
    if d == "F64":
        return x.astype("<f8"), "F64"
    if d == "F32":
        return x.astype("<f4"), "F32"
    if d == "F16":  # via f32 (f64 -> f32 -> f16, each round-to-nearest-even)
        return x.astype("<f4").astype("<f2"), "F16"
    if d == "BF16":  # upper 16 bits of the f32, RNE
        return f32_to_bf16_bits(x.astype("<f4")), "BF16"
    if d in ("I64", "I32", "I16", "I8", "U8"):
        return x.astype(_ST_NP[d]), d
    raise ValueError("unsupported dtype " + dtype)


def write_safetensors(path, items, metadata=None):
    """items: list of (name, tensor_or_array, dtype_str). Stored in that order, except that tensors are
    stably sorted by element size (largest first) so every tensor is naturally aligned. Streams one tensor
    at a time (large models)."""
    items = [(name, arr, dt.upper()) for name, arr, dt in items]
    items.sort(key=lambda it: -_ST_SIZE[it[2]])  # stable
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    off = 0
    for name, arr, d in items:
        shape = [int(v) for v in arr.shape]
        nbytes = int(np.prod(shape, dtype=np.int64)) * _ST_SIZE[d]
        header[name] = {"dtype": d, "shape": shape, "data_offsets": [off, off + nbytes]}
        off += nbytes
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for name, arr, d in items:
            a, d2 = to_storage(arr, d)
            assert d2 == d
            b = np.ascontiguousarray(a).tobytes()
            assert len(b) == header[name]["data_offsets"][1] - header[name]["data_offsets"][0]
            f.write(b)


def read_safetensors(path, as_f64=True):
    """-> (ordered dict name -> torch tensor, metadata dict, dtypes dict). Float tensors become float64
    (as_f64) and integer tensors int64."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", None) or {}
    base = 8 + n
    out, dtypes = {}, {}
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        d = info["dtype"]
        b, e = info["data_offsets"]
        shape = info["shape"]
        a = np.frombuffer(raw, dtype=_ST_NP[d], count=(e - b) // _ST_SIZE[d], offset=base + b)
        if d == "BF16":
            a = bf16_bits_to_f32(a)
        a = a.reshape(shape)
        if d in ("F64", "F32", "F16", "BF16"):
            t = torch.from_numpy(a.astype(np.float64 if as_f64 else a.dtype, copy=True))
        else:
            t = torch.from_numpy(a.astype(np.int64, copy=True))
        out[name] = t
        dtypes[name] = d
    return out, meta, dtypes


# -----------------------------------------------------------------------------------------------------
# float64 GEMM backend. The torch 1.13 of /usr/bin/python3 here is linked against the netlib reference
# BLAS (~2 GFLOP/s in float64), far too slow for DiT-XL sizes, so when an OpenBLAS shared library can be
# found (env DIT_REF_BLAS=path, --blas PATH, a system libopenblas, or the libscipy_openblas bundled with a
# numpy/scipy wheel of any Python on the machine) every Linear / attention matmul calls its cblas_dgemm
# through ctypes. It is still a plain float64 GEMM; results differ from torch's only in summation order
# (~1e-16 relative). --blas torch forces torch.matmul. The selftest compares the two paths.
# -----------------------------------------------------------------------------------------------------
class _Gemm:
    def __init__(self):
        self.fn = None
        self.name = "torch"
        self.threads = 1

    def _candidates(self, spec):
        import glob
        import site
        if spec and spec not in ("auto", "torch"):
            return [spec]
        c = []
        if os.environ.get("DIT_REF_BLAS"):
            c.append(os.environ["DIT_REF_BLAS"])
        for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu/openblas-pthread",
                  "/usr/lib/x86_64-linux-gnu/openblas-openmp", "/usr/lib64", "/usr/local/lib", "/usr/lib"):
            c += sorted(glob.glob(os.path.join(d, "libopenblas*.so*")))
        roots = []
        try:
            roots += site.getsitepackages() + [site.getusersitepackages()]
        except Exception:
            pass
        roots += glob.glob("/root/.pyenv/versions/*/lib/python*/site-packages")
        roots += glob.glob(os.path.expanduser("~/.pyenv/versions/*/lib/python*/site-packages"))
        roots += glob.glob("/usr/local/lib/python3*/*-packages") + glob.glob("/usr/lib/python3/dist-packages")
        for r in roots:
            for sub in ("numpy.libs", "scipy.libs", "numpy/.libs", "scipy_openblas64/lib", "scipy_openblas32/lib"):
                c += sorted(glob.glob(os.path.join(r, sub, "lib*openblas*.so*")))
        seen, out = set(), []
        for x in c:
            if x not in seen:
                seen.add(x)
                out.append(x)
        return out

    def setup(self, spec="auto", threads=2):
        import ctypes
        self.fn, self.name, self.threads = None, "torch", max(1, int(threads))
        if spec == "torch":
            return self
        for path in self._candidates(spec):
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            base = os.path.basename(path)
            for sym, ilp64 in (("scipy_cblas_dgemm64_", True), ("cblas_dgemm64_", True),
                               ("scipy_cblas_dgemm", False), ("cblas_dgemm", "64" in base)):
                fn = getattr(lib, sym, None)
                if fn is None:
                    continue
                I = ctypes.c_int64 if ilp64 else ctypes.c_int
                E, Dd, P = ctypes.c_int, ctypes.c_double, ctypes.c_void_p
                fn.argtypes = [E, E, E, I, I, I, Dd, P, I, P, I, Dd, P, I]
                fn.restype = None
                for tsym in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                             "openblas_set_num_threads64_", "openblas_set_num_threads"):
                    tf = getattr(lib, tsym, None)
                    if tf is not None:
                        tf.argtypes = [ctypes.c_int]
                        tf.restype = None
                        tf(self.threads)
                        break
                self.fn, self.name = fn, "%s:%s" % (path, sym)
                a = torch.randn(37, 19, dtype=F64)
                b = torch.randn(23, 19, dtype=F64)
                if (self.mm(a, b, True) - a @ b.t()).abs().max().item() < 1e-12:
                    return self
                self.fn, self.name = None, "torch"
                break
        if spec not in ("auto", "torch"):
            raise SystemExit("--blas %s: no usable cblas_dgemm" % spec)
        return self

    def mm(self, a, b, trans_b, out=None):
        """a [M,K] @ (b [N,K]^T if trans_b else b [K,N]) -> [M,N], float64 (written into `out` if given)."""
        a = a.contiguous()
        b = b.contiguous()
        M, K = a.shape
        N = b.shape[0] if trans_b else b.shape[1]
        if out is not None and self.fn is None:
            out.copy_(a @ (b.t() if trans_b else b))
            return out
        if self.fn is None:
            bt = b.t() if trans_b else b
            if self.threads > 1 and M >= 256:  # netlib BLAS is single-threaded: split rows over threads
                from concurrent.futures import ThreadPoolExecutor
                parts = torch.chunk(a, self.threads, dim=0)
                with ThreadPoolExecutor(self.threads) as ex:
                    return torch.cat(list(ex.map(lambda x: x @ bt, parts)), dim=0)
            return a @ bt
        c = torch.empty(M, N, dtype=F64) if out is None else out
        assert c.is_contiguous() and c.shape == (M, N)
        if M == 0 or N == 0:
            return c
        if K == 0:
            return c.zero_()
        self.fn(101, 111, 112 if trans_b else 111, M, N, K, 1.0, a.data_ptr(), K, b.data_ptr(),
                K if trans_b else N, 0.0, c.data_ptr(), N)
        return c

    def bmm(self, a, b, trans_b):
        """batched over leading dims: a [...,M,K], b [...,N,K] (trans_b) or [...,K,N]."""
        if self.fn is None:
            return torch.matmul(a, b.transpose(-1, -2) if trans_b else b)
        lead = a.shape[:-2]
        a2 = a.reshape(-1, *a.shape[-2:])
        b2 = b.reshape(-1, *b.shape[-2:])
        M, N = a.shape[-2], (b.shape[-2] if trans_b else b.shape[-1])
        c = torch.empty(a2.shape[0], M, N, dtype=F64)
        for i in range(a2.shape[0]):
            self.mm(a2[i], b2[i], trans_b, out=c[i])
        return c.reshape(*lead, M, N)


GEMM = _Gemm()


def linear(x, w, b=None):
    """x [..., K] @ w[N, K]^T + b."""
    shp = x.shape
    y = GEMM.mm(x.reshape(-1, shp[-1]), w, True).reshape(*shp[:-1], w.shape[0])
    return y if b is None else y + b


# -----------------------------------------------------------------------------------------------------
# fixed tables
# -----------------------------------------------------------------------------------------------------
def pos_embed_table(D, gh, gw):
    """[gh*gw, D] float64: token (r,c) = [sin(c w) | cos(c w) | sin(r w) | cos(r w)], w_k = 1/10000^(k/(D/4))."""
    assert D % 4 == 0, "hidden size must be divisible by 4 for the 2-D sin-cos table"
    q = D // 4
    omega = torch.arange(q, dtype=F64) / q
    omega = 1.0 / (10000.0 ** omega)
    r = torch.arange(gh, dtype=F64).repeat_interleave(gw)  # token index r*gw + c
    c = torch.arange(gw, dtype=F64).repeat(gh)
    ac = c[:, None] * omega[None]
    ar = r[:, None] * omega[None]
    return torch.cat([torch.sin(ac), torch.cos(ac), torch.sin(ar), torch.cos(ar)], dim=1)


def timestep_table(t, dim, freq_shift):
    half = dim // 2
    k = torch.arange(half, dtype=F64)
    freqs = torch.exp(-math.log(10000.0) * k / (half - freq_shift))
    args = t.to(F64)[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


# -----------------------------------------------------------------------------------------------------
# canonical parameter generation (original-layout names, in registration order)
# -----------------------------------------------------------------------------------------------------
def canonical_spec(cfg):
    """List of (name, shape, kind) in canonical order. kind: 'w' N(0,std), 'gate' N(0,gate_std),
    'normw' 1+N(0,std), 'pos' fixed table."""
    D, C, p = cfg["hidden"], cfg["in_channels"], cfg["patch"]
    outC = C * 2 if cfg["learn_sigma"] else C
    hd = D // cfg["heads"]
    Hm = int(cfg["mlp_ratio"] * D)
    spec = [("pos_embed", None, "pos"),
            ("x_embedder.proj.weight", [D, C, p, p], "w"), ("x_embedder.proj.bias", [D], "w"),
            ("t_embedder.mlp.0.weight", [D, 256], "w"), ("t_embedder.mlp.0.bias", [D], "w"),
            ("t_embedder.mlp.2.weight", [D, D], "w"), ("t_embedder.mlp.2.bias", [D], "w"),
            ("y_embedder.embedding_table.weight", [cfg["classes"] + 1, D], "w")]
    for i in range(cfg["depth"]):
        b = "blocks.%d." % i
        if cfg["qk_norm"]:
            spec += [(b + "attn.Wqkv.weight", [3 * D, D], "w"), (b + "attn.Wqkv.bias", [3 * D], "w"),
                     (b + "attn.q_norm.weight", [hd], "normw"), (b + "attn.q_norm.bias", [hd], "w"),
                     (b + "attn.k_norm.weight", [hd], "normw"), (b + "attn.k_norm.bias", [hd], "w"),
                     (b + "attn.out_proj.weight", [D, D], "w"), (b + "attn.out_proj.bias", [D], "w")]
        else:
            spec += [(b + "attn.qkv.weight", [3 * D, D], "w"), (b + "attn.qkv.bias", [3 * D], "w"),
                     (b + "attn.proj.weight", [D, D], "w"), (b + "attn.proj.bias", [D], "w")]
        if cfg["family"] == "dit-moe":
            E, Hs = cfg["experts"], cfg["shared_mult"] * D
            spec.append((b + "moe.gate.weight", [E, D], "gate"))
            for e in range(E):
                x = b + "moe.experts.%d." % e
                spec += [(x + "gate_proj.weight", [Hm, D], "w"), (x + "up_proj.weight", [Hm, D], "w"),
                         (x + "down_proj.weight", [D, Hm], "w")]
            x = b + "moe.shared_experts."
            spec += [(x + "gate_proj.weight", [Hs, D], "w"), (x + "up_proj.weight", [Hs, D], "w"),
                     (x + "down_proj.weight", [D, Hs], "w")]
        else:
            spec += [(b + "mlp.fc1.weight", [Hm, D], "w"), (b + "mlp.fc1.bias", [Hm], "w"),
                     (b + "mlp.fc2.weight", [D, Hm], "w"), (b + "mlp.fc2.bias", [D], "w")]
        spec += [(b + "adaLN_modulation.1.weight", [6 * D, D], "w"), (b + "adaLN_modulation.1.bias", [6 * D], "w")]
    spec += [("final_layer.linear.weight", [p * p * outC, D], "w"), ("final_layer.linear.bias", [p * p * outC], "w"),
             ("final_layer.adaLN_modulation.1.weight", [2 * D, D], "w"),
             ("final_layer.adaLN_modulation.1.bias", [2 * D], "w")]
    return spec


def generate_canonical(cfg):
    """-> ordered dict original-name -> float64 tensor (pos_embed [1,T,D] included)."""
    g = torch.Generator().manual_seed(int(cfg["seed"]))
    std, gstd = float(cfg["std"]), float(cfg["gate_std"])
    sd = {}
    for name, shape, kind in canonical_spec(cfg):
        if kind == "pos":
            gh, gw = cfg["grid"]
            sd[name] = pos_embed_table(cfg["hidden"], gh, gw)[None]
            continue
        z = torch.randn(shape, generator=g, dtype=F64)
        if kind == "w":
            sd[name] = z * std
        elif kind == "gate":
            sd[name] = z * gstd
        elif kind == "normw":
            sd[name] = 1.0 + z * std
    if cfg.get("zero_init"):
        for k in sd:
            if "adaLN_modulation" in k or k.startswith("final_layer."):
                sd[k] = torch.zeros_like(sd[k])
    return sd


def to_diffusers(sd, depth):
    """original-name dict (dense DiT, no qk-norm) -> diffusers-name ordered dict."""
    out = {}
    out["pos_embed.proj.weight"] = sd["x_embedder.proj.weight"]
    out["pos_embed.proj.bias"] = sd["x_embedder.proj.bias"]
    for i in range(depth):
        b, d = "blocks.%d." % i, "transformer_blocks.%d." % i
        out[d + "norm1.emb.timestep_embedder.linear_1.weight"] = sd["t_embedder.mlp.0.weight"]
        out[d + "norm1.emb.timestep_embedder.linear_1.bias"] = sd["t_embedder.mlp.0.bias"]
        out[d + "norm1.emb.timestep_embedder.linear_2.weight"] = sd["t_embedder.mlp.2.weight"]
        out[d + "norm1.emb.timestep_embedder.linear_2.bias"] = sd["t_embedder.mlp.2.bias"]
        out[d + "norm1.emb.class_embedder.embedding_table.weight"] = sd["y_embedder.embedding_table.weight"]
        out[d + "norm1.linear.weight"] = sd[b + "adaLN_modulation.1.weight"]
        out[d + "norm1.linear.bias"] = sd[b + "adaLN_modulation.1.bias"]
        qw, kw, vw = torch.chunk(sd[b + "attn.qkv.weight"], 3, dim=0)
        qb, kb, vb = torch.chunk(sd[b + "attn.qkv.bias"], 3, dim=0)
        out[d + "attn1.to_q.weight"], out[d + "attn1.to_q.bias"] = qw, qb
        out[d + "attn1.to_k.weight"], out[d + "attn1.to_k.bias"] = kw, kb
        out[d + "attn1.to_v.weight"], out[d + "attn1.to_v.bias"] = vw, vb
        out[d + "attn1.to_out.0.weight"] = sd[b + "attn.proj.weight"]
        out[d + "attn1.to_out.0.bias"] = sd[b + "attn.proj.bias"]
        out[d + "ff.net.0.proj.weight"] = sd[b + "mlp.fc1.weight"]
        out[d + "ff.net.0.proj.bias"] = sd[b + "mlp.fc1.bias"]
        out[d + "ff.net.2.weight"] = sd[b + "mlp.fc2.weight"]
        out[d + "ff.net.2.bias"] = sd[b + "mlp.fc2.bias"]
    out["proj_out_1.weight"] = sd["final_layer.adaLN_modulation.1.weight"]
    out["proj_out_1.bias"] = sd["final_layer.adaLN_modulation.1.bias"]
    out["proj_out_2.weight"] = sd["final_layer.linear.weight"]
    out["proj_out_2.bias"] = sd["final_layer.linear.bias"]
    return out


def make_weights(cfg, out_path):
    sd = generate_canonical(cfg)
    if cfg["layout"] == "diffusers":
        if cfg["family"] != "dit" or cfg["qk_norm"]:
            raise SystemExit("diffusers layout supports only --family dit without qk-norm")
        sd = to_diffusers(sd, cfg["depth"])
    dt = {"f32": "F32", "f16": "F16", "bf16": "BF16", "f64": "F64"}[cfg["dtype"]]
    items = [(k, v, dt) for k, v in sd.items()]
    write_safetensors(out_path, items, {"nd_test_config": json.dumps(cfg, sort_keys=True)})
    return sd


# -----------------------------------------------------------------------------------------------------
# loading into the internal representation
# -----------------------------------------------------------------------------------------------------
class Model:
    pass


def _blocks_count(keys, prefix):
    idx = set()
    for k in keys:
        if k.startswith(prefix):
            idx.add(int(k[len(prefix):].split(".", 1)[0]))
    if not idx:
        return 0
    n = max(idx) + 1
    assert idx == set(range(n)), "non-contiguous block indices"
    return n


def load_model(path, layout, heads, top_k=None):
    sd, meta, dtypes = read_safetensors(path)
    return build_model(sd, layout, heads, top_k, meta, dtypes)


def build_model(sd, layout, heads, top_k=None, meta=None, dtypes=None):
    meta = meta or {}
    m = Model()
    m.dtypes = dtypes or {}
    info = {}
    if "nd_test_config" in meta:
        try:
            info = json.loads(meta["nd_test_config"])
        except Exception:
            info = {}
    keys = list(sd.keys())
    m.stored_pos = None
    if layout == "diffusers":
        if not any(k.startswith("transformer_blocks.") for k in keys):
            raise SystemExit("--layout diffusers but the file has no transformer_blocks.* keys")
        depth = _blocks_count(keys, "transformer_blocks.")
        m.patch_w, m.patch_b = sd["pos_embed.proj.weight"], sd["pos_embed.proj.bias"]
        m.final_ada_w, m.final_ada_b = sd["proj_out_1.weight"], sd["proj_out_1.bias"]
        m.final_w, m.final_b = sd["proj_out_2.weight"], sd["proj_out_2.bias"]
        m.blocks = []
        for i in range(depth):
            d = "transformer_blocks.%d." % i
            blk = {
                "emb": (sd[d + "norm1.emb.timestep_embedder.linear_1.weight"],
                        sd[d + "norm1.emb.timestep_embedder.linear_1.bias"],
                        sd[d + "norm1.emb.timestep_embedder.linear_2.weight"],
                        sd[d + "norm1.emb.timestep_embedder.linear_2.bias"],
                        sd[d + "norm1.emb.class_embedder.embedding_table.weight"]),
                "ada_w": sd[d + "norm1.linear.weight"], "ada_b": sd[d + "norm1.linear.bias"],
                "qkv_w": torch.cat([sd[d + "attn1.to_q.weight"], sd[d + "attn1.to_k.weight"],
                                    sd[d + "attn1.to_v.weight"]], 0),
                "qkv_b": torch.cat([sd[d + "attn1.to_q.bias"], sd[d + "attn1.to_k.bias"],
                                    sd[d + "attn1.to_v.bias"]], 0),
                "proj_w": sd[d + "attn1.to_out.0.weight"], "proj_b": sd[d + "attn1.to_out.0.bias"],
                "qk_norm": None,
                "mlp": (sd[d + "ff.net.0.proj.weight"], sd[d + "ff.net.0.proj.bias"],
                        sd[d + "ff.net.2.weight"], sd[d + "ff.net.2.bias"]),
                "moe": None,
            }
            m.blocks.append(blk)
        m.emb = m.blocks[0]["emb"]
        m.per_block_emb = True
    elif layout in ("original", "dit-moe"):
        if not any(k.startswith("blocks.") for k in keys):
            raise SystemExit("--layout %s but the file has no blocks.* keys" % layout)
        depth = _blocks_count(keys, "blocks.")
        m.patch_w, m.patch_b = sd["x_embedder.proj.weight"], sd["x_embedder.proj.bias"]
        m.emb = (sd["t_embedder.mlp.0.weight"], sd["t_embedder.mlp.0.bias"], sd["t_embedder.mlp.2.weight"],
                 sd["t_embedder.mlp.2.bias"], sd["y_embedder.embedding_table.weight"])
        m.final_ada_w = sd["final_layer.adaLN_modulation.1.weight"]
        m.final_ada_b = sd["final_layer.adaLN_modulation.1.bias"]
        m.final_w, m.final_b = sd["final_layer.linear.weight"], sd["final_layer.linear.bias"]
        if "pos_embed" in sd:
            m.stored_pos = sd["pos_embed"]
            m.stored_pos_dtype = m.dtypes.get("pos_embed", "F32")
        m.blocks = []
        for i in range(depth):
            b = "blocks.%d." % i
            blk = {"emb": None, "ada_w": sd[b + "adaLN_modulation.1.weight"], "ada_b": sd[b + "adaLN_modulation.1.bias"]}
            if b + "attn.Wqkv.weight" in sd:
                blk["qkv_w"], blk["qkv_b"] = sd[b + "attn.Wqkv.weight"], sd[b + "attn.Wqkv.bias"]
                blk["proj_w"], blk["proj_b"] = sd[b + "attn.out_proj.weight"], sd[b + "attn.out_proj.bias"]
                blk["qk_norm"] = (sd[b + "attn.q_norm.weight"], sd[b + "attn.q_norm.bias"],
                                  sd[b + "attn.k_norm.weight"], sd[b + "attn.k_norm.bias"])
            else:
                blk["qkv_w"], blk["qkv_b"] = sd[b + "attn.qkv.weight"], sd[b + "attn.qkv.bias"]
                blk["proj_w"], blk["proj_b"] = sd[b + "attn.proj.weight"], sd[b + "attn.proj.bias"]
                blk["qk_norm"] = None
            if b + "moe.gate.weight" in sd:
                gw = sd[b + "moe.gate.weight"]
                E = gw.shape[0]
                ex = b + "moe.experts."
                blk["moe"] = {
                    "gate": gw,
                    "g": [sd[ex + "%d.gate_proj.weight" % e] for e in range(E)],
                    "u": [sd[ex + "%d.up_proj.weight" % e] for e in range(E)],
                    "d": [sd[ex + "%d.down_proj.weight" % e] for e in range(E)],
                    "shared": (sd[b + "moe.shared_experts.gate_proj.weight"], sd[b + "moe.shared_experts.up_proj.weight"],
                               sd[b + "moe.shared_experts.down_proj.weight"]),
                }
                blk["mlp"] = None
            else:
                blk["moe"] = None
                blk["mlp"] = (sd[b + "mlp.fc1.weight"], sd[b + "mlp.fc1.bias"], sd[b + "mlp.fc2.weight"], sd[b + "mlp.fc2.bias"])
            m.blocks.append(blk)
        m.per_block_emb = False
    else:
        raise SystemExit("unknown layout " + layout)
    D, C, p, p2 = m.patch_w.shape
    assert p == p2, "non-square patch"
    m.depth, m.hidden, m.in_channels, m.patch = depth, D, C, p
    assert m.final_w.shape[0] % (p * p) == 0
    m.out_channels = m.final_w.shape[0] // (p * p)
    m.classes = m.emb[4].shape[0] - 1
    m.freq_dim = m.emb[0].shape[1]
    if heads is None or D % heads:
        raise SystemExit("--heads must divide the hidden size %d" % D)
    m.heads, m.head_dim = heads, D // heads
    for blk in m.blocks:
        if blk["qk_norm"] is not None and blk["qk_norm"][0].shape[0] != m.head_dim:
            raise SystemExit("q_norm size %d != hidden/heads = %d" % (blk["qk_norm"][0].shape[0], m.head_dim))
    m.is_moe = any(blk["moe"] is not None for blk in m.blocks)
    if top_k is None:
        top_k = int(info.get("top_k") or 2)
    m.top_k = int(top_k)
    return m


# -----------------------------------------------------------------------------------------------------
# main float64 forward
# -----------------------------------------------------------------------------------------------------
def modulate(z, shift, scale):
    return z * (1.0 + scale[:, None, :]) + shift[:, None, :]


def embed_c(emb, t, y, freq_dim, freq_shift):
    w1, b1, w2, b2, table = emb
    te = timestep_table(t, freq_dim, freq_shift)
    te = linear(F.silu(linear(te, w1, b1)), w2, b2)
    return te, te + table[y]


def attention(z, blk, heads):
    B, T, D = z.shape
    hd = D // heads
    qkv = linear(z, blk["qkv_w"], blk["qkv_b"]).reshape(B, T, 3, heads, hd).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]  # [B, NH, T, hd]
    if blk["qk_norm"] is not None:
        qw, qb, kw, kb = blk["qk_norm"]
        q = F.layer_norm(q, (hd,), qw, qb, eps=1e-6)
        k = F.layer_norm(k, (hd,), kw, kb, eps=1e-6)
    s = GEMM.bmm(q, k, True) / math.sqrt(hd)
    a = torch.softmax(s, dim=-1)
    o = GEMM.bmm(a, v, False).transpose(1, 2).reshape(B, T, D)
    return linear(o, blk["proj_w"], blk["proj_b"])


def swiglu(z, g, u, d):
    return linear(F.silu(linear(z, g)) * linear(z, u), d)


def moe_forward(z, moe, K, cf):
    B, T, D = z.shape
    E = moe["gate"].shape[0]
    assert 1 <= K <= E
    probs = torch.softmax(linear(z, moe["gate"]), dim=-1)  # [B,T,E]
    sp, si = torch.sort(probs, dim=-1, descending=True, stable=True)  # ties -> lower index first
    topi, topp = si[..., :K].contiguous(), sp[..., :K].contiguous()
    if cf is None:
        kept = torch.ones_like(topi)
    else:
        C = math.ceil((float(cf) * T * K) / E)
        seq = topi.transpose(1, 2).reshape(B, K * T)  # priority order: rank-major, token-minor
        oh = F.one_hot(seq, E)
        pos = (oh.cumsum(dim=1) * oh).sum(-1) - 1  # how many earlier assignments went to the same expert
        kept = (pos < C).to(torch.int64).reshape(B, K, T).transpose(1, 2).contiguous()
    zf = z.reshape(B * T, D)
    routed = torch.zeros_like(zf)
    tok_base = torch.arange(B * T).reshape(B, T, 1).expand(B, T, K)
    for e in range(E):
        mask = (topi == e) & (kept == 1)
        if not bool(mask.any()):
            continue
        tok = tok_base[mask]
        w = topp[mask]
        ye = swiglu(zf[tok], moe["g"][e], moe["u"][e], moe["d"][e]) * w[:, None]
        routed.index_add_(0, tok, ye)
    out = routed.reshape(B, T, D) + swiglu(z, *moe["shared"])
    tpe = torch.stack([((topi == e) & (kept == 1)).reshape(B, -1).sum(1) for e in range(E)], dim=1)
    # smallest gap between adjacent sorted probabilities among ranks 0..K (ordering + top-K set margin)
    gaps = sp[..., :min(K + 1, E)]
    gap = (gaps[..., :-1] - gaps[..., 1:]).min(dim=-1).values if gaps.shape[-1] > 1 else torch.ones(B, T, dtype=F64)
    return out, {"experts": topi, "topk_prob": topp, "kept": kept, "tokens_per_expert": tpe.to(torch.int64),
                 "route_gap": gap}


def check_stored_pos(m, gh, gw):
    if m.stored_pos is None:
        return
    sp = m.stored_pos.reshape(-1, m.hidden)
    if sp.shape[0] != gh * gw:
        return  # stored for another grid; not comparable (token count differs)
    ref = pos_embed_table(m.hidden, gh, gw)
    tol = {"F64": 1e-6, "F32": 1e-6, "F16": 2e-3, "BF16": 1e-2}.get(getattr(m, "stored_pos_dtype", "F32"), 1e-6)
    err = (sp - ref).abs().max().item()
    assert err <= tol, "stored pos_embed differs from the recomputed table by %g (tol %g)" % (err, tol)


def forward(m, x, t, y, freq_shift=0, norm3_eps=1e-6, cf=None, top_k=None):
    """x [B,C,H,W], t [B], y [B] -> (out [B,outC,H,W] float64, dict of intermediates)."""
    K = m.top_k if top_k is None else int(top_k)
    x = x.to(F64)
    B, C, H, W = x.shape
    p, D = m.patch, m.hidden
    assert C == m.in_channels and H % p == 0 and W % p == 0
    gh, gw = H // p, W // p
    check_stored_pos(m, gh, gw)
    y = y.to(torch.int64)
    h = F.conv2d(x, m.patch_w, m.patch_b, stride=p).flatten(2).transpose(1, 2)
    h = h + pos_embed_table(D, gh, gw)[None]
    inter = {"x_emb": h}
    te, c = embed_c(m.emb, t, y, m.freq_dim, freq_shift)
    inter["t_emb"], inter["c"] = te, c
    for i, blk in enumerate(m.blocks):
        ci = c if blk["emb"] is None else embed_c(blk["emb"], t, y, m.freq_dim, freq_shift)[1]
        mod = linear(F.silu(ci), blk["ada_w"], blk["ada_b"])
        sh1, sc1, g1, sh2, sc2, g2 = mod.chunk(6, dim=1)
        z = modulate(F.layer_norm(h, (D,), eps=1e-6), sh1, sc1)
        h = h + g1[:, None, :] * attention(z, blk, m.heads)
        z = modulate(F.layer_norm(h, (D,), eps=norm3_eps), sh2, sc2)
        if blk["moe"] is not None:
            f, rinfo = moe_forward(z, blk["moe"], K, cf)
            for k, v in rinfo.items():
                inter["%s_l%d" % (k, i)] = v
        else:
            w1, b1, w2, b2 = blk["mlp"]
            f = linear(F.gelu(linear(z, w1, b1), approximate="tanh"), w2, b2)
        h = h + g2[:, None, :] * f
        if i == 0:
            inter["block0"] = h
    inter["final_in"] = h
    shift, scale = linear(F.silu(c), m.final_ada_w, m.final_ada_b).chunk(2, dim=1)
    tok = linear(modulate(F.layer_norm(h, (D,), eps=1e-6), shift, scale), m.final_w, m.final_b)
    oc = m.out_channels
    out = tok.reshape(B, gh, gw, p, p, oc).permute(0, 5, 1, 3, 2, 4).reshape(B, oc, gh * p, gw * p)
    return out.contiguous(), inter


# -----------------------------------------------------------------------------------------------------
# second, independently written forward (selftest only): works on the original-name state dict
# -----------------------------------------------------------------------------------------------------
def naive_forward(sd, heads, x, t, y, freq_shift=0, norm3_eps=1e-6, cf=None, K=2):
    x = x.to(F64)
    B, C, H, W = x.shape
    wpe = sd["x_embedder.proj.weight"]
    D, _, p, _ = wpe.shape
    gh, gw = H // p, W // p
    T = gh * gw
    hd = D // heads

    def ln(v, eps, w=None, b=None):
        mu = v.mean(-1, keepdim=True)
        var = ((v - mu) ** 2).mean(-1, keepdim=True)
        r = (v - mu) / torch.sqrt(var + eps)
        if w is not None:
            r = r * w + b
        return r

    def silu(v):
        return v * (1.0 / (1.0 + torch.exp(-v)))

    def gelu(v):
        return 0.5 * v * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (v + 0.044715 * v * v * v)))

    def lin(v, w, b=None):
        r = torch.einsum("...i,oi->...o", v, w)
        return r if b is None else r + b

    # patch embedding via unfold + matmul
    cols = F.unfold(x, kernel_size=p, stride=p).transpose(1, 2)  # [B, T, C*p*p] in (c, pi, qj) order
    h = cols @ wpe.reshape(D, -1).t() + sd["x_embedder.proj.bias"]
    # pos table with explicit loops
    q4 = D // 4
    pe = torch.zeros(T, D, dtype=F64)
    for r in range(gh):
        for c in range(gw):
            for k in range(q4):
                w = 10000.0 ** (-k / q4)
                pe[r * gw + c, k] = math.sin(c * w)
                pe[r * gw + c, q4 + k] = math.cos(c * w)
                pe[r * gw + c, 2 * q4 + k] = math.sin(r * w)
                pe[r * gw + c, 3 * q4 + k] = math.cos(r * w)
    h = h + pe
    # timestep table with explicit loops
    fd = sd["t_embedder.mlp.0.weight"].shape[1]
    half = fd // 2
    tt = torch.zeros(B, fd, dtype=F64)
    for n in range(B):
        for k in range(half):
            a = float(t[n]) * math.exp(-math.log(10000.0) * k / (half - freq_shift))
            tt[n, k] = math.cos(a)
            tt[n, half + k] = math.sin(a)
    te = lin(silu(lin(tt, sd["t_embedder.mlp.0.weight"], sd["t_embedder.mlp.0.bias"])),
             sd["t_embedder.mlp.2.weight"], sd["t_embedder.mlp.2.bias"])
    c = te + torch.stack([sd["y_embedder.embedding_table.weight"][int(y[n])] for n in range(B)])
    sc = silu(c)
    depth = _blocks_count(sd.keys(), "blocks.")
    routing = {}
    for i in range(depth):
        b = "blocks.%d." % i
        mod = lin(sc, sd[b + "adaLN_modulation.1.weight"], sd[b + "adaLN_modulation.1.bias"])
        sh1, sc1, g1, sh2, sc2, g2 = [mod[:, j * D:(j + 1) * D] for j in range(6)]
        z = ln(h, 1e-6) * (1 + sc1[:, None]) + sh1[:, None]
        qkn = b + "attn.Wqkv.weight" in sd
        if qkn:
            qkv = lin(z, sd[b + "attn.Wqkv.weight"], sd[b + "attn.Wqkv.bias"])
        else:
            qkv = lin(z, sd[b + "attn.qkv.weight"], sd[b + "attn.qkv.bias"])
        att = torch.zeros(B, T, D, dtype=F64)
        for n in range(B):
            for hh in range(heads):
                qh = qkv[n, :, hh * hd:(hh + 1) * hd]
                kh = qkv[n, :, D + hh * hd:D + (hh + 1) * hd]
                vh = qkv[n, :, 2 * D + hh * hd:2 * D + (hh + 1) * hd]
                if qkn:
                    qh = ln(qh, 1e-6, sd[b + "attn.q_norm.weight"], sd[b + "attn.q_norm.bias"])
                    kh = ln(kh, 1e-6, sd[b + "attn.k_norm.weight"], sd[b + "attn.k_norm.bias"])
                s = (qh @ kh.t()) * (1.0 / math.sqrt(hd))
                s = s - s.max(dim=1, keepdim=True).values
                e = torch.exp(s)
                a = e / e.sum(dim=1, keepdim=True)
                att[n, :, hh * hd:(hh + 1) * hd] = a @ vh
        if qkn:
            att = lin(att, sd[b + "attn.out_proj.weight"], sd[b + "attn.out_proj.bias"])
        else:
            att = lin(att, sd[b + "attn.proj.weight"], sd[b + "attn.proj.bias"])
        h = h + g1[:, None] * att
        z = ln(h, norm3_eps) * (1 + sc2[:, None]) + sh2[:, None]
        if b + "moe.gate.weight" in sd:
            gwt = sd[b + "moe.gate.weight"]
            E = gwt.shape[0]

            def mlp(v, pre):
                return lin(silu(lin(v, sd[pre + "gate_proj.weight"])) * lin(v, sd[pre + "up_proj.weight"]),
                           sd[pre + "down_proj.weight"])

            f = torch.zeros(B, T, D, dtype=F64)
            ex_ids = torch.zeros(B, T, K, dtype=torch.int64)
            kept = torch.zeros(B, T, K, dtype=torch.int64)
            tpe = torch.zeros(B, E, dtype=torch.int64)
            for n in range(B):
                choices = []
                for tk in range(T):
                    lg = [float(v) for v in lin(z[n, tk], gwt)]
                    mx = max(lg)
                    ex = [math.exp(v - mx) for v in lg]
                    s = sum(ex)
                    pr = [v / s for v in ex]
                    order = sorted(range(E), key=lambda e_: (-pr[e_], e_))[:K]
                    choices.append([(e_, pr[e_]) for e_ in order])
                cap = None if cf is None else math.ceil((float(cf) * T * K) / E)
                cnt = [0] * E
                for kk in range(K):
                    for tk in range(T):
                        e_, pr_ = choices[tk][kk]
                        ex_ids[n, tk, kk] = e_
                        if cap is None or cnt[e_] < cap:
                            cnt[e_] += 1
                            kept[n, tk, kk] = 1
                            f[n, tk] = f[n, tk] + pr_ * mlp(z[n, tk], b + "moe.experts.%d." % e_)
                for e_ in range(E):
                    tpe[n, e_] = cnt[e_]
            f = f + mlp(z, b + "moe.shared_experts.")
            routing["experts_l%d" % i] = ex_ids
            routing["kept_l%d" % i] = kept
            routing["tokens_per_expert_l%d" % i] = tpe
        else:
            f = lin(gelu(lin(z, sd[b + "mlp.fc1.weight"], sd[b + "mlp.fc1.bias"])),
                    sd[b + "mlp.fc2.weight"], sd[b + "mlp.fc2.bias"])
        h = h + g2[:, None] * f
    fm = lin(sc, sd["final_layer.adaLN_modulation.1.weight"], sd["final_layer.adaLN_modulation.1.bias"])
    shift, scale = fm[:, :D], fm[:, D:]
    tok = lin(ln(h, 1e-6) * (1 + scale[:, None]) + shift[:, None], sd["final_layer.linear.weight"],
              sd["final_layer.linear.bias"])
    oc = tok.shape[-1] // (p * p)
    out = torch.zeros(B, oc, H, W, dtype=F64)
    for r in range(gh):
        for cc in range(gw):
            for pi in range(p):
                for qj in range(p):
                    for ch in range(oc):
                        out[:, ch, r * p + pi, cc * p + qj] = tok[:, r * gw + cc, (pi * p + qj) * oc + ch]
    return out, routing


# -----------------------------------------------------------------------------------------------------
# inputs
# -----------------------------------------------------------------------------------------------------
def make_inputs(B, C, H, W, classes, seed, t_float=False):
    g = torch.Generator().manual_seed(int(seed))
    x = torch.randn(B, C, H, W, generator=g, dtype=F64).to(torch.float32)
    if t_float:
        t = 1.0 - torch.rand(B, generator=g, dtype=F64)  # (0, 1]
        t[0] = 1.0
        t = t.to(torch.float32)
    else:
        t = torch.randint(0, 1000, (B,), generator=g).to(torch.float32)
        if B >= 2:
            t[0], t[B - 1] = 999.0, 0.0
    y = torch.randint(0, classes, (B,), generator=g, dtype=torch.int64)
    if B >= 2:
        y[B - 1] = classes
    return x, t, y


def read_inputs(path):
    d, _, _ = read_safetensors(path)
    return d["x"], d["t"], d["y"]


# -----------------------------------------------------------------------------------------------------
# CLI
# -----------------------------------------------------------------------------------------------------
def _defaults(layout, freq_shift, norm3_eps):
    if freq_shift is None:
        freq_shift = 1 if layout == "diffusers" else 0
    if norm3_eps is None:
        norm3_eps = 1e-5 if layout == "diffusers" else 1e-6
    return int(freq_shift), float(norm3_eps)


def _out_items(out, inter):
    items = [("out", out, "F64")]
    for k, v in inter.items():
        items.append((k, v, "I64" if v.dtype == torch.int64 else "F64"))
    return items


def cmd_make(a):
    cfg = {
        "family": a.family, "depth": a.depth, "hidden": a.hidden, "heads": a.heads, "patch": a.patch,
        "in_channels": a.in_channels, "classes": a.classes, "learn_sigma": int(a.learn_sigma),
        "mlp_ratio": a.mlp_ratio, "qk_norm": int(a.qk_norm), "seed": a.seed, "dtype": a.dtype,
        "layout": a.layout, "grid": [a.grid[0], a.grid[1]], "std": a.std, "gate_std": a.gate_std,
        "zero_init": int(a.zero_init),
    }
    if a.hidden % a.heads:
        raise SystemExit("--heads must divide --hidden")
    if a.family == "dit-moe":
        if a.experts is None:
            raise SystemExit("--family dit-moe needs --experts")
        cfg.update({"experts": a.experts, "top_k": a.top_k, "shared_mult": a.shared_mult})
        if a.layout == "diffusers":
            raise SystemExit("--family dit-moe needs --layout dit-moe (or original)")
    if a.mlp_ratio * a.hidden != int(a.mlp_ratio * a.hidden):
        raise SystemExit("mlp_ratio * hidden must be an integer")
    make_weights(cfg, a.out)
    print("wrote", a.out, json.dumps(cfg, sort_keys=True))


def cmd_inputs(a):
    x, t, y = make_inputs(a.batch, a.channels, a.height, a.width, a.classes, a.seed, a.t_float)
    write_safetensors(a.out, [("x", x, "F32"), ("t", t, "F32"), ("y", y, "I64")])
    print("wrote", a.out, "t =", [float(v) for v in t], "y =", [int(v) for v in y])


def cmd_run(a):
    fs, n3 = _defaults(a.layout, a.freq_shift, a.norm3_eps)
    m = load_model(a.weights, a.layout, a.heads, a.top_k)
    x, t, y = read_inputs(a.inputs)
    t0 = time.time()
    with torch.no_grad():
        out, inter = forward(m, x, t, y, fs, n3, a.capacity_factor)
    dt = time.time() - t0
    meta = {"nd_reference": json.dumps({"layout": a.layout, "heads": a.heads, "freq_shift": fs, "norm3_eps": n3,
                                        "capacity_factor": a.capacity_factor,
                                        "top_k": m.top_k if m.is_moe else None, "depth": m.depth,
                                        "hidden": m.hidden, "patch": m.patch, "out_channels": m.out_channels})}
    write_safetensors(a.out, _out_items(out, inter), meta)
    print("wrote %s (forward %.2fs, depth %d, D %d, heads %d, p %d, outC %d, freq_shift %d, norm3_eps %g%s)" % (
        a.out, dt, m.depth, m.hidden, m.heads, m.patch, m.out_channels, fs, n3,
        (", moe top_k %d cf %s" % (m.top_k, a.capacity_factor)) if m.is_moe else ""))


def cmd_cfg(a):
    fs, n3 = _defaults(a.layout, a.freq_shift, a.norm3_eps)
    m = load_model(a.weights, a.layout, a.heads, a.top_k)
    x, t, y = read_inputs(a.inputs)
    g = int(a.guided_channels)
    with torch.no_grad():
        cond, _ = forward(m, x, t, y, fs, n3, a.capacity_factor)
        uncond, _ = forward(m, x, t, torch.full_like(y, m.classes), fs, n3, a.capacity_factor)
    out = cond.clone()
    out[:, :g] = uncond[:, :g] + float(a.scale) * (cond[:, :g] - uncond[:, :g])
    write_safetensors(a.out, [("out", out, "F64"), ("cond", cond, "F64"), ("uncond", uncond, "F64")],
                      {"nd_reference": json.dumps({"scale": a.scale, "guided_channels": g, "freq_shift": fs,
                                                   "norm3_eps": n3})})
    print("wrote", a.out)


# -----------------------------------------------------------------------------------------------------
# selftest
# -----------------------------------------------------------------------------------------------------
def _tiny_cfg(**kw):
    cfg = {"family": "dit", "depth": 2, "hidden": 64, "heads": 4, "patch": 2, "in_channels": 4, "classes": 10,
           "learn_sigma": 1, "mlp_ratio": 4, "qk_norm": 0, "seed": 1, "dtype": "f64", "layout": "original",
           "grid": [8, 8], "std": 0.02, "gate_std": 1.0, "zero_init": 0}
    cfg.update(kw)
    return cfg


def _maxdiff(a, b):
    return (a.to(F64) - b.to(F64)).abs().max().item()


def cmd_selftest(a):
    torch.manual_seed(0)
    ok = True
    tmp = tempfile.mkdtemp(prefix="dit_ref_selftest_")

    def check(name, cond, detail=""):
        nonlocal ok
        print(("PASS " if cond else "FAIL ") + name + ((" " + detail) if detail else ""))
        ok = ok and bool(cond)

    # (1) two implementations, dense and MoE, several settings
    cases = [
        ("dit std0.02 8x8", _tiny_cfg(), 8, 8, 0, 1e-6, None),
        ("dit std0.15 8x8", _tiny_cfg(std=0.15, seed=2), 8, 8, 0, 1e-6, None),
        ("dit std0.15 6x10 grid shift1 eps1e-5 p2", _tiny_cfg(std=0.15, seed=3), 6, 10, 1, 1e-5, None),
        ("dit std0.15 p4 learn_sigma0", _tiny_cfg(std=0.15, seed=4, patch=4, learn_sigma=0), 4, 6, 0, 1e-6, None),
        ("moe E4K2 std0.15", _tiny_cfg(family="dit-moe", experts=4, top_k=2, shared_mult=2, std=0.15, seed=5,
                                     layout="dit-moe"), 8, 8, 0, 1e-6, None),
        ("moe E4K2 qknorm std0.15", _tiny_cfg(family="dit-moe", experts=4, top_k=2, shared_mult=2, std=0.15, seed=6,
                                            layout="dit-moe", qk_norm=1), 8, 8, 0, 1e-6, None),
        ("moe E4K2 qknorm cf1.0", _tiny_cfg(family="dit-moe", experts=4, top_k=2, shared_mult=2, std=0.15, seed=7,
                                           layout="dit-moe", qk_norm=1), 8, 8, 0, 1e-6, 1.0),
        ("moe E8K3 cf0.5 6x8", _tiny_cfg(family="dit-moe", experts=8, top_k=3, shared_mult=2, std=0.15, seed=8,
                                        layout="dit-moe", mlp_ratio=2), 6, 8, 0, 1e-6, 0.5),
        ("moe E4K2 qknorm std0.02 cf1.0", _tiny_cfg(family="dit-moe", experts=4, top_k=2, shared_mult=2, seed=10,
                                                   layout="dit-moe", qk_norm=1), 8, 8, 0, 1e-6, 1.0),
        ("moe E4K1 cf1.25", _tiny_cfg(family="dit-moe", experts=4, top_k=1, shared_mult=2, std=0.15, seed=9,
                                     layout="dit-moe"), 8, 8, 0, 1e-6, 1.25),
    ]
    for name, cfg, gh, gw, fs, n3, cf in cases:
        sd = generate_canonical(cfg)
        m = build_model(sd, "original", cfg["heads"], cfg.get("top_k"))
        p = cfg["patch"]
        x, t, y = make_inputs(3, 4, gh * p, gw * p, cfg["classes"], 11)
        if cfg["family"] == "dit-moe":
            t = torch.tensor([1.0, 0.37, 0.002], dtype=torch.float32)
        with torch.no_grad():
            o1, i1 = forward(m, x, t, y, fs, n3, cf)
            o2, r2 = naive_forward(sd, cfg["heads"], x, t, y, fs, n3, cf, cfg.get("top_k", 2))
        d = _maxdiff(o1, o2)
        extra = ""
        rout_ok = True
        for k, v in r2.items():
            rout_ok = rout_ok and torch.equal(i1[k], v)
        if r2:
            dropped = sum(int((i1[k] == 0).sum()) for k in i1 if k.startswith("kept_l"))
            extra = " routing_equal=%s dropped=%d" % (rout_ok, dropped)
            if cf is not None and cf < 1.5:
                rout_ok = rout_ok and dropped > 0
            if cf is None:
                rout_ok = rout_ok and dropped == 0
        scale = max(1.0, o1.abs().max().item())  # 1e-12 absolute for O(1) outputs, relative for larger ones
        check("two-implementations[%s]" % name, d <= 1e-12 * scale and rout_ok and o1.abs().max().item() > 1e-3,
              "maxdiff=%.3g max|out|=%.3g maxdiff/max(1,max|out|)=%.3g%s" % (d, o1.abs().max().item(), d / scale, extra))

    # (1b) the OpenBLAS GEMM path (if any) against torch.matmul
    if GEMM.fn is not None:
        cfg = _tiny_cfg(family="dit-moe", experts=4, top_k=2, shared_mult=2, std=0.15, seed=15, layout="dit-moe",
                        qk_norm=1)
        sd = generate_canonical(cfg)
        m = build_model(sd, "original", 4, 2)
        x, t, y = make_inputs(2, 4, 16, 16, 10, 16)
        o1, _ = forward(m, x, t, y, 0, 1e-6, 1.0)
        saved = (GEMM.fn, GEMM.name)
        GEMM.fn, GEMM.name = None, "torch"
        o2, _ = forward(m, x, t, y, 0, 1e-6, 1.0)
        GEMM.fn, GEMM.name = saved
        d = _maxdiff(o1, o2)
        check("openblas-vs-torch-gemm", d <= 1e-12 * max(1.0, o1.abs().max().item()), "maxdiff=%.3g" % d)
    else:
        print("SKIP openblas-vs-torch-gemm (no OpenBLAS found; using torch.matmul)")

    # (2) layouts: original vs diffusers from the same seed, via files, f32 and bf16 storage
    for dt in ("f32", "bf16", "f16"):
        cfg_o = _tiny_cfg(std=0.15, seed=21, dtype=dt)
        cfg_d = dict(cfg_o, layout="diffusers")
        po, pd = os.path.join(tmp, "o_%s.safetensors" % dt), os.path.join(tmp, "d_%s.safetensors" % dt)
        make_weights(cfg_o, po)
        make_weights(cfg_d, pd)
        mo = load_model(po, "original", 4)
        md = load_model(pd, "diffusers", 4)
        x, t, y = make_inputs(4, 4, 16, 16, 10, 12)
        with torch.no_grad():
            oo, io = forward(mo, x, t, y, 0, 1e-6)
            od, idd = forward(md, x, t, y, 0, 1e-6)
            od2, _ = forward(md, x, t, y, *_defaults("diffusers", None, None))
        same = torch.equal(oo, od) and all(torch.equal(io[k], idd[k]) for k in io)
        check("layouts-bit-identical[%s]" % dt, same, "maxdiff=%.3g" % _maxdiff(oo, od))
        check("diffusers-defaults-differ[%s]" % dt, _maxdiff(oo, od2) > 0, "maxdiff=%.3g" % _maxdiff(oo, od2))
        # stored (rounded) values are what the model uses; compare with torch's own conversions
        sd64 = generate_canonical(cfg_o)
        sd_file, _, _ = read_safetensors(po)
        tdt = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[dt]
        conv_ok = all(torch.equal(sd_file[k], sd64[k].to(torch.float32).to(tdt).to(F64)) for k in sd64)
        check("storage-rounding-matches-torch[%s]" % dt, conv_ok)

    # (3) zero init -> exactly zero output
    for fam in ("dit", "dit-moe"):
        extra = {"family": fam, "experts": 4, "top_k": 2, "shared_mult": 2, "layout": "dit-moe", "qk_norm": 1} \
            if fam == "dit-moe" else {}
        cfg = _tiny_cfg(std=0.15, seed=31, zero_init=1, **extra)
        sd = generate_canonical(cfg)
        m = build_model(sd, "original", 4, 2)
        x, t, y = make_inputs(2, 4, 16, 16, 10, 13)
        with torch.no_grad():
            o, inter = forward(m, x, t, y, 0, 1e-6, 1.0 if fam == "dit-moe" else None)
        check("zero-init-output-exactly-0[%s]" % fam, bool((o == 0).all()) and torch.equal(inter["final_in"], inter["x_emb"]))

    # (4) safetensors round trip and BF16 RNE
    v = torch.tensor([1.0, -2.5, 3.14159265, 1e-30, 65504.0, 1.00390625, 1.01171875, -0.0, float("inf")], dtype=F64)
    p4 = os.path.join(tmp, "rt.safetensors")
    write_safetensors(p4, [("a", v, "F64"), ("b", v, "F32"), ("c", v, "F16"), ("d", v, "BF16"),
                           ("e", torch.arange(5), "I64"), ("f", torch.arange(3), "I32")], {"k": "v"})
    r, meta, dts = read_safetensors(p4)
    with open(p4, "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
    rt_ok = (torch.equal(r["a"], v) and torch.equal(r["b"], v.float().double())
             and torch.equal(r["c"], v.float().half().double()) and torch.equal(r["d"], v.float().bfloat16().double())
             and torch.equal(r["e"], torch.arange(5)) and torch.equal(r["f"], torch.arange(3)) and meta == {"k": "v"}
             and n % 8 == 0 and dts["d"] == "BF16")
    check("safetensors-roundtrip", rt_ok)

    # (5) stored pos_embed == recomputed (non-square grid) and the assertion fires on mismatch
    cfg = _tiny_cfg(grid=[6, 10])
    sd = generate_canonical(cfg)
    m = build_model(sd, "original", 4)
    x, t, y = make_inputs(1, 4, 12, 20, 10, 14)
    forward(m, x, t, y)
    sd["pos_embed"] = sd["pos_embed"] + 1e-3
    m = build_model(sd, "original", 4)
    fired = False
    try:
        forward(m, x, t, y)
    except AssertionError:
        fired = True
    check("pos_embed-check", fired)

    # (6) cfg combine semantics on a tiny model through the CLI functions
    cfg = _tiny_cfg(std=0.15, seed=41)
    pw, pin, pout = (os.path.join(tmp, n_) for n_ in ("cw.safetensors", "cin.safetensors", "cout.safetensors"))
    make_weights(cfg, pw)
    x, t, y = make_inputs(3, 4, 16, 16, 10, 15)
    write_safetensors(pin, [("x", x, "F32"), ("t", t, "F32"), ("y", y, "I64")])
    ns = argparse.Namespace(weights=pw, layout="original", heads=4, inputs=pin, out=pout, scale=4.0,
                            guided_channels=3, freq_shift=None, norm3_eps=None, capacity_factor=None, top_k=None)
    cmd_cfg(ns)
    r, _, _ = read_safetensors(pout)
    m = load_model(pw, "original", 4)
    c_, _ = forward(m, x, t, y)
    u_, _ = forward(m, x, t, torch.full_like(y, 10))
    exp = c_.clone()
    exp[:, :3] = u_[:, :3] + 4.0 * (c_[:, :3] - u_[:, :3])
    check("cfg-combine", torch.equal(r["out"], exp) and torch.equal(r["out"][:, 3:], c_[:, 3:]))

    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
    print("SELFTEST", "OK" if ok else "FAILED")
    return 0 if ok else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description="float64 DiT / DiT-MoE reference (see the comment block at the top)")
    sp = ap.add_subparsers(dest="cmd", required=True)

    mk = sp.add_parser("make", help="random weights -> safetensors")
    mk.add_argument("--family", choices=["dit", "dit-moe"], required=True)
    mk.add_argument("--depth", type=int, required=True)
    mk.add_argument("--hidden", type=int, required=True)
    mk.add_argument("--heads", type=int, required=True)
    mk.add_argument("--patch", type=int, required=True)
    mk.add_argument("--in-channels", type=int, default=4)
    mk.add_argument("--classes", type=int, default=1000)
    mk.add_argument("--learn-sigma", type=int, default=1, choices=[0, 1])
    mk.add_argument("--experts", type=int, default=None)
    mk.add_argument("--top-k", type=int, default=2)
    mk.add_argument("--shared-mult", type=int, default=2)
    mk.add_argument("--mlp-ratio", type=float, default=4)
    mk.add_argument("--qk-norm", type=int, default=0, choices=[0, 1])
    mk.add_argument("--seed", type=int, required=True)
    mk.add_argument("--dtype", choices=["f32", "f16", "bf16", "f64"], default="f32")
    mk.add_argument("--layout", choices=["original", "diffusers", "dit-moe"], required=True)
    mk.add_argument("--grid", type=int, nargs=2, metavar=("GH", "GW"), required=True)
    mk.add_argument("--std", type=float, default=0.02)
    mk.add_argument("--gate-std", type=float, default=1.0)
    mk.add_argument("--zero-init", type=int, default=0, choices=[0, 1])
    mk.add_argument("--out", required=True)

    inp = sp.add_parser("inputs", help="random x, t, y")
    inp.add_argument("--batch", type=int, required=True)
    inp.add_argument("--channels", type=int, default=4)
    inp.add_argument("--height", type=int, required=True)
    inp.add_argument("--width", type=int, required=True)
    inp.add_argument("--classes", type=int, default=1000)
    inp.add_argument("--seed", type=int, required=True)
    inp.add_argument("--t-float", action="store_true")
    inp.add_argument("--out", required=True)

    for name in ("run", "cfg"):
        r = sp.add_parser(name, help="float64 forward" if name == "run" else "classifier-free guidance combine")
        r.add_argument("--weights", required=True)
        r.add_argument("--layout", choices=["original", "diffusers", "dit-moe"], required=True)
        r.add_argument("--heads", type=int, required=True)
        r.add_argument("--inputs", required=True)
        r.add_argument("--out", required=True)
        r.add_argument("--freq-shift", type=int, choices=[0, 1], default=None,
                       help="default 0 (original/dit-moe), 1 (diffusers)")
        r.add_argument("--norm3-eps", type=float, default=None, help="default 1e-6 (original/dit-moe), 1e-5 (diffusers)")
        r.add_argument("--capacity-factor", type=float, default=None)
        r.add_argument("--top-k", type=int, default=None)
        r.add_argument("--threads", type=int, default=2)
        r.add_argument("--blas", default="auto", help="auto (OpenBLAS via ctypes if found, else torch) | torch | PATH")
        if name == "cfg":
            r.add_argument("--scale", type=float, required=True)
            r.add_argument("--guided-channels", type=int, default=3)

    st = sp.add_parser("selftest", help="internal verification")
    st.add_argument("--threads", type=int, default=2)
    st.add_argument("--blas", default="auto")

    a = ap.parse_args(argv)
    torch.set_num_threads(getattr(a, "threads", 2))
    if a.cmd in ("run", "cfg", "selftest"):
        GEMM.setup(a.blas, a.threads)
        print("gemm backend:", GEMM.name, file=sys.stderr)
    if a.cmd == "make":
        return cmd_make(a)
    if a.cmd == "inputs":
        return cmd_inputs(a)
    if a.cmd == "run":
        return cmd_run(a)
    if a.cmd == "cfg":
        return cmd_cfg(a)
    if a.cmd == "selftest":
        return cmd_selftest(a)


if __name__ == "__main__":
    sys.exit(main() or 0)
