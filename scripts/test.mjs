// `npm test`: native unit tests (ctest), then the vitest suites against the built addon.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

function run(cmd, args) {
  console.log(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

let hasAddon = true;
try {
  require('node-gyp-build').path(root);
} catch {
  hasAddon = false;
}
if (!hasAddon) run(process.execPath, [join(root, 'scripts', 'build-native.cjs')]);
if (!existsSync(join(root, 'dist', 'index.js'))) run(process.execPath, [join(root, 'scripts', 'build-ts.mjs')]);
run(process.execPath, [join(root, 'scripts', 'test-native.mjs')]);
run(process.execPath, [join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run']);
