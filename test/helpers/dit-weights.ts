// Random DiT / DiT-MoE checkpoints for tests, in the original DiT (facebookresearch/DiT models.py) and
// DiT-MoE (feizc/DiT-MoE) state-dict layouts. Every weight is drawn from N(0, std) by a small seeded
// JS generator (independent of the library under test), the MoE router from N(0, gateStd) so that
// expert choices are well separated. 4 latent channels, learned sigma (8 output channels).
import { saveSafetensors, Tensor } from '../../lib/index.js';

export interface RandomDitSpec {
  depth: number;
  hidden: number;
  /** Not stored in the file (the engine needs `heads` at load time for unusual widths). */
  heads?: number;
  patch: number;
  classes: number;
  family: 'dit' | 'dit-moe';
  /** DiT-MoE: routed experts (default 4). */
  experts?: number;
  /** DiT-MoE: each routed expert's SwiGLU width (default 2 * hidden). */
  expertHidden?: number;
  /** DiT-MoE: the shared expert's SwiGLU width (default hidden; 0 = none). */
  sharedHidden?: number;
  seed: number;
  /** Std of every weight and bias (default 0.02). */
  std?: number;
  /** Std of the MoE router (default 1). */
  gateStd?: number;
  /** Latent channels (default 4). */
  inChannels?: number;
}

/** mulberry32 uniform (0, 1) + Box-Muller normals: deterministic for a seed. */
export function normalGenerator(seed: number): () => number {
  let a = (seed * 0x9e3779b9 + 0x6d2b79f5) >>> 0;
  const uniform = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    const u = uniform(), v = uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

/** Writes a random checkpoint to `path` and returns the tensor names and shapes it holds. */
export async function writeRandomDit(path: string, spec: RandomDitSpec): Promise<Record<string, number[]>> {
  const { depth, hidden: D, patch: p, classes, family, seed } = spec;
  const std = spec.std ?? 0.02;
  const gateStd = spec.gateStd ?? 1;
  const C = spec.inChannels ?? 4;
  const E = spec.experts ?? 4;
  const H = spec.expertHidden ?? 2 * D;
  const Hs = spec.sharedHidden ?? D;
  const normal = normalGenerator(seed);
  const tensors: Record<string, Tensor> = {};
  const shapes: Record<string, number[]> = {};
  const put = (name: string, shape: number[], s = std): void => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = s * normal();
    tensors[name] = Tensor.from(data, { shape });
    shapes[name] = shape;
  };
  const linear = (name: string, out: number, inp: number, bias = true): void => {
    put(`${name}.weight`, [out, inp]);
    if (bias) put(`${name}.bias`, [out]);
  };

  put('x_embedder.proj.weight', [D, C, p, p]);
  put('x_embedder.proj.bias', [D]);
  linear('t_embedder.mlp.0', D, 256);
  linear('t_embedder.mlp.2', D, D);
  put('y_embedder.embedding_table.weight', [classes + 1, D]);
  for (let i = 0; i < depth; i++) {
    const b = `blocks.${i}`;
    linear(`${b}.attn.qkv`, 3 * D, D);
    linear(`${b}.attn.proj`, D, D);
    if (family === 'dit') {
      linear(`${b}.mlp.fc1`, 4 * D, D);
      linear(`${b}.mlp.fc2`, D, 4 * D);
    } else {
      put(`${b}.moe.gate.weight`, [E, D], gateStd);
      for (let e = 0; e < E; e++) {
        const x = `${b}.moe.experts.${e}`;
        linear(`${x}.gate_proj`, H, D, false);
        linear(`${x}.up_proj`, H, D, false);
        linear(`${x}.down_proj`, D, H, false);
      }
      if (Hs > 0) {
        linear(`${b}.moe.shared_experts.gate_proj`, Hs, D, false);
        linear(`${b}.moe.shared_experts.up_proj`, Hs, D, false);
        linear(`${b}.moe.shared_experts.down_proj`, D, Hs, false);
      }
    }
    linear(`${b}.adaLN_modulation.1`, 6 * D, D);
  }
  linear('final_layer.linear', p * p * 2 * C, D);
  linear('final_layer.adaLN_modulation.1', 2 * D, D);
  try {
    await saveSafetensors(path, tensors);
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
  return shapes;
}
