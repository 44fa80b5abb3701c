// The addon in worker_threads: each thread gets its own handles; ending a worker while native jobs
// are in flight must not take the process down.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { loadBinding } from '../lib/binding.js';

const entry = JSON.stringify(resolve('dist/index.cjs'));

function runScript(code: string) {
  return spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 60_000 });
}

describe('worker_threads', () => {
  it('terminating a worker with jobs in flight leaves the process alive', () => {
    const r = runScript(`
      const { Worker } = require('node:worker_threads');
      const body = \`
        const nd = require(${entry});
        const { parentPort } = require('node:worker_threads');
        for (let i = 0; i < 8; i++) nd.randn([1, 2000000], { seed: i }).catch(() => {});
        nd.Tensor.zeros([4000000]).catch(() => {});
        parentPort.postMessage('started');
      \`;
      (async () => {
        for (let k = 0; k < 5; k++) {
          const w = new Worker(body, { eval: true });
          await new Promise((r) => w.once('message', r));
          await w.terminate();
        }
        const w2 = new Worker(body + ';process.exit(0);', { eval: true });
        await new Promise((r) => w2.once('exit', r));
        const nd = require(${entry});
        const t = await nd.randn([1, 10], { seed: 1 });
        console.log('alive', (await t.data()).length);
      })();`);
    expect(r.stderr).not.toMatch(/terminate called|Aborted|Segmentation/);
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('alive 10');
  });

  it('the addon is never unmapped (-z nodelete): Node dlcloses it when the last worker that loaded it exits', () => {
    const r = spawnSync('readelf', ['-d', loadBinding().path], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/FLAGS_1.*NODELETE/);
  });

  it('tensors work independently in several workers at once (repeatedly: exits used to race the thread pool)', () => {
    for (let round = 0; round < 8; round++) {
      const r = runScript(`
      const { Worker } = require('node:worker_threads');
      const body = \`
        const nd = require(${entry});
        const { parentPort, workerData } = require('node:worker_threads');
        nd.randn([2, 1000], { seed: workerData }).then(async (t) => parentPort.postMessage(Array.from((await t.data()).slice(0, 2))));
      \`;
      Promise.all([7, 7, 8].map((seed) => new Promise((res) => new Worker(body, { eval: true, workerData: seed }).once('message', res))))
        .then((out) => console.log(JSON.stringify(out)));`);
      expect(r.signal).toBe(null);
      expect(r.status).toBe(0);
      const [a, b, c] = JSON.parse(r.stdout) as number[][];
      expect(a).toEqual(b);
      expect(a).not.toEqual(c);
    }
  });
});
