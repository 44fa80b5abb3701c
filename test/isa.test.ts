// The prebuilt binary must run on any x86-64 CPU: AVX2/FMA/F16C instructions may only appear in
// the run-time-dispatched nd::avx2 kernels, and on a CPU without AVX the baseline path is chosen.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { loadBinding } from '../lib/binding.js';

const binary = loadBinding().path;
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

describe('CPU instruction sets', () => {
  it('AVX (VEX/EVEX) instructions occur only in nd::avx2 functions', () => {
    expect(has('objdump'), 'objdump (binutils) is needed for this check').toBe(true);
    const dis = spawnSync('objdump', ['-d', '-C', '--no-show-raw-insn', binary], { encoding: 'utf8', maxBuffer: 1 << 30 });
    expect(dis.status).toBe(0);
    expect(dis.stdout.includes('<nd::'), `${binary} has no symbols (a stripped prebuild); run the tests on a source build`).toBe(true);
    let fn = '';
    const offenders = new Set<string>();
    let avx2Functions = 0;
    const seen = new Set<string>();
    for (const line of dis.stdout.split('\n')) {
      const head = /^[0-9a-f]+ <(.*)>:$/.exec(line);
      if (head) { fn = head[1]; continue; }
      if (/\tv[a-z0-9]+\s/.test(line) || /%[yz]mm/.test(line)) {
        if (fn.startsWith('nd::avx2::')) { if (!seen.has(fn)) { seen.add(fn); avx2Functions++; } }
        else offenders.add(fn);
      }
    }
    expect([...offenders]).toEqual([]);
    expect(avx2Functions).toBeGreaterThan(0); // the check sees the AVX2 kernels, so it can fail
  });

  // Needs qemu-user (Debian: qemu-user); .ci/run installs it, elsewhere the test says it skipped.
  it.skipIf(!has('qemu-x86_64'))('on an emulated CPU without AVX (qemu64) the baseline path runs and gives the same bits', () => {
    const script = `
      const nd = require('./dist/index.cjs');
      (async () => {
        const x = nd.Tensor.from(Float32Array.from({ length: 4099 }, (_, i) => Math.sin(i) * 1e3));
        const h = await (await x.cast('f16')).data();
        const b = await (await x.cast('bf16')).data();
        let hash = 0;
        for (const v of [...h, ...b]) hash = (Math.imul(hash, 31) + v) | 0;
        console.log(JSON.stringify({ isa: nd.backendInfo().cpu.isa, avx2: nd.backendInfo().cpu.features.avx2, hash }));
      })();`;
    const env = { ...process.env, ND_BACKEND: 'cpu' };
    const emulated = spawnSync('qemu-x86_64', ['-cpu', 'qemu64', process.execPath, '-e', script], { encoding: 'utf8', env, timeout: 120_000 });
    const native = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env });
    expect(emulated.status, emulated.stderr).toBe(0);
    const e = JSON.parse(emulated.stdout);
    const n = JSON.parse(native.stdout);
    expect(e.isa).toBe('baseline');
    expect(e.avx2).toBe(false);
    expect(e.hash).toBe(n.hash);
  });
});
