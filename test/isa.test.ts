// The prebuilt binary must run on any x86-64 CPU: AVX2/AVX-512 instructions may only appear in the
// run-time-dispatched kernels (the *_avx2.cpp / *_avx512.cpp translation units, the only ones built
// with those flags), and on a CPU without AVX the baseline path is chosen. The hazard that can slip
// AVX into the baseline path is vague linkage: an inline or template function (std:: containers
// included) instantiated in an AVX unit and in a baseline unit is one weak symbol, and the linker
// may keep the AVX copy for both. So no function with AVX instructions may be weak, and every one
// must be ours (nd::).
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { loadBinding } from '../lib/binding.js';

const binary = loadBinding().path;
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

describe('CPU instruction sets', () => {
  it('AVX (VEX/EVEX) instructions occur only in our dispatched kernels, never in a weak (inline/template) symbol', () => {
    expect(has('objdump'), 'objdump (binutils) is needed for this check').toBe(true);
    const dis = spawnSync('objdump', ['-d', '-C', '--no-show-raw-insn', binary], { encoding: 'utf8', maxBuffer: 1 << 30 });
    expect(dis.status).toBe(0);
    expect(dis.stdout.includes('<nd::'), `${binary} has no symbols (a stripped prebuild); run the tests on a source build`).toBe(true);
    const nm = spawnSync('nm', ['-C', '--defined-only', binary], { encoding: 'utf8', maxBuffer: 1 << 30 });
    expect(nm.status).toBe(0);
    const weak = new Set<string>();
    for (const line of nm.stdout.split('\n')) {
      const m = /^[0-9a-f]+ ([A-Za-z]) (.*)$/.exec(line);
      if (m && 'WVuw'.includes(m[1])) weak.add(m[2]);
    }
    expect(weak.size).toBeGreaterThan(0);  // the binary has vague-linkage symbols, so the check can fail
    let fn = '';
    const offenders = new Set<string>();
    const avxFunctions = new Set<string>();
    for (const line of dis.stdout.split('\n')) {
      const head = /^[0-9a-f]+ <(.*)>:$/.exec(line);
      if (head) { fn = head[1]; continue; }
      if (/\tv[a-z0-9]+\s/.test(line) || /%[yz]mm/.test(line)) {
        avxFunctions.add(fn);
        // Template instances print with their return type first ("void nd::...").
        if (weak.has(fn) || !/^([\w:]+\s+)?nd::/.test(fn)) offenders.add(fn);
      }
    }
    expect([...offenders]).toEqual([]);
    // The check sees the AVX2 and AVX-512 kernels, so it can fail.
    expect([...avxFunctions].some((f) => f.startsWith('nd::avx2::'))).toBe(true);
    expect([...avxFunctions].some((f) => f.includes('Avx512') || f.includes('avx512'))).toBe(true);
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
