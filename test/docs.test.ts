// Every ```js example in README.md and docs/api.md runs as written (with the package name pointed
// at this checkout), so the documentation cannot drift from the API.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const entry = resolve('dist/index.js');
const blocks = ['README.md', 'docs/api.md'].flatMap((file) =>
  [...readFileSync(file, 'utf8').matchAll(/```js\n([\s\S]*?)```/g)].map((m, i) => ({ name: `${file} #${i + 1}`, code: m[1] })));

describe('documentation examples', () => {
  it('there are examples to run', () => expect(blocks.length).toBeGreaterThanOrEqual(8));
  for (const { name, code } of blocks) {
    it(name, () => {
      const dir = mkdtempSync(join(tmpdir(), 'nd-doc-'));
      const file = join(dir, 'example.mjs');
      writeFileSync(file, code.replaceAll("from 'node-diffusion'", `from ${JSON.stringify(entry)}`));
      const r = spawnSync(process.execPath, [file], { cwd: dir, encoding: 'utf8' });
      rmSync(dir, { recursive: true, force: true });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    });
  }
});
