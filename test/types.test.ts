// The published declarations type-check for TypeScript consumers compiling to CommonJS and to ESM
// (node16 resolution, skipLibCheck off), and import/require share one copy of the library.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const repo = resolve('.');
const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
const source = `
import { Tensor, randn, DiffusionError, openSafetensors, type DType } from 'node-diffusion';
async function main(): Promise<void> {
  const t = Tensor.from(new Float32Array([1, 2]), { shape: [2] });
  const r = await randn([1, 2], { seed: [1], dtype: 'f32' satisfies DType });
  const d: Float32Array = await r.data<'f32'>();
  console.log(t.shape, d.length, DiffusionError.name, typeof openSafetensors);
}
void main();
`;

describe('package types', () => {
  for (const type of ['commonjs', 'module']) {
    it(`type-checks for a "${type}" consumer`, () => {
      const dir = mkdtempSync(join(tmpdir(), 'nd-types-'));
      mkdirSync(join(dir, 'node_modules'));
      symlinkSync(repo, join(dir, 'node_modules', 'node-diffusion'));
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ type }));
      writeFileSync(join(dir, 'a.ts'), source);
      writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
        compilerOptions: { module: 'node16', moduleResolution: 'node16', strict: true, skipLibCheck: false, noEmit: true,
          typeRoots: [join(repo, 'node_modules', '@types')], types: ['node'], lib: ['ES2023', 'ESNext.Disposable'] },
        files: ['a.ts'],
      }));
      const r = spawnSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8' });
      rmSync(dir, { recursive: true, force: true });
      expect(r.stdout + r.stderr).toBe('');
      expect(r.status).toBe(0);
    });
  }

  it('import and require give the same classes', () => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `
      import * as esm from ${JSON.stringify(join(repo, 'dist', 'index.js'))};
      import { createRequire } from 'node:module';
      const cjs = createRequire(import.meta.url)(${JSON.stringify(join(repo, 'dist', 'index.cjs'))});
      const t = esm.Tensor.from([1]);
      console.log(esm.Tensor === cjs.Tensor, t instanceof cjs.Tensor, esm.Tensor.name);`], { encoding: 'utf8' });
    expect(r.stdout.trim()).toBe('true true Tensor');
  });
});
