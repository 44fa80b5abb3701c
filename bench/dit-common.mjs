// Shared by the model benchmarks: random DiT / DiT-MoE checkpoints in the original layouts, and the
// multiply-add count of a dense DiT forward.
import { saveSafetensors, Tensor } from '../dist/index.js';

// ---- random checkpoints in the original DiT / DiT-MoE layout ----------------------------------------
let seed = 12345;
function fill(n, std) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    a[i] = ((seed >>> 8) / 16777216 - 0.5) * 3.4641 * std;  // uniform with this std
  }
  return a;
}
export async function writeDit(path, { depth, D, p, classes = 1000, moe, dtype = 'f32' }) {
  const t = {};
  const put = (name, shape, std = 0.02) => { t[name] = Tensor.from(fill(shape.reduce((a, b) => a * b, 1), std), { shape }); };
  put('x_embedder.proj.weight', [D, 4, p, p]); put('x_embedder.proj.bias', [D]);
  put('t_embedder.mlp.0.weight', [D, 256]); put('t_embedder.mlp.0.bias', [D]);
  put('t_embedder.mlp.2.weight', [D, D]); put('t_embedder.mlp.2.bias', [D]);
  put('y_embedder.embedding_table.weight', [classes + 1, D]);
  for (let i = 0; i < depth; i++) {
    const b = `blocks.${i}.`;
    put(b + 'attn.qkv.weight', [3 * D, D]); put(b + 'attn.qkv.bias', [3 * D]);
    put(b + 'attn.proj.weight', [D, D]); put(b + 'attn.proj.bias', [D]);
    put(b + 'adaLN_modulation.1.weight', [6 * D, D]); put(b + 'adaLN_modulation.1.bias', [6 * D]);
    if (moe) {
      put(b + 'moe.gate.weight', [moe.experts, D], 1);
      for (let e = 0; e < moe.experts; e++) {
        put(b + `moe.experts.${e}.gate_proj.weight`, [moe.hidden, D]);
        put(b + `moe.experts.${e}.up_proj.weight`, [moe.hidden, D]);
        put(b + `moe.experts.${e}.down_proj.weight`, [D, moe.hidden]);
      }
      if (moe.shared) {
        put(b + 'moe.shared_experts.gate_proj.weight', [moe.shared, D]);
        put(b + 'moe.shared_experts.up_proj.weight', [moe.shared, D]);
        put(b + 'moe.shared_experts.down_proj.weight', [D, moe.shared]);
      }
    } else {
      put(b + 'mlp.fc1.weight', [4 * D, D]); put(b + 'mlp.fc1.bias', [4 * D]);
      put(b + 'mlp.fc2.weight', [D, 4 * D]); put(b + 'mlp.fc2.bias', [D]);
    }
  }
  put('final_layer.linear.weight', [p * p * 8, D]); put('final_layer.linear.bias', [p * p * 8]);
  put('final_layer.adaLN_modulation.1.weight', [2 * D, D]); put('final_layer.adaLN_modulation.1.bias', [2 * D]);
  if (dtype !== 'f32') for (const k of Object.keys(t)) { const c = await t[k].cast(dtype); t[k].dispose(); t[k] = c; }
  await saveSafetensors(path, t);
  for (const v of Object.values(t)) v.dispose();
}

// Multiply-adds of one forward (every Linear, the attention matmuls, the patch embedding).
export function denseMacs({ depth, D, p }, n, h, w) {
  const T = (h / p) * (w / p);
  const perBlock = T * (3 * D * D + D * D + 8 * D * D) + 2 * T * T * D + 6 * D * D;
  return n * (T * D * 4 * p * p + 256 * D + D * D + depth * perBlock + T * D * p * p * 8 + 2 * D * D);
}

