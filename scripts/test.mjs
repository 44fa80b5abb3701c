// `npm test`: native unit tests (ctest), then the vitest suites against the built addon.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function run(cmd, args) {
  console.log(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

// The tests inspect the binary (symbols, instruction sets), so they run on a source build, not on a
// stripped prebuild.
if (!existsSync(join(root, 'build', 'Release', 'node_diffusion.node'))) run(process.execPath, [join(root, 'scripts', 'build-native.cjs')]);
// dist/ is what the CLI, packaging and documentation tests run; rebuild it so it is never stale.
run(process.execPath, [join(root, 'scripts', 'build-ts.mjs')]);
run(process.execPath, [join(root, 'scripts', 'test-native.mjs')]);
run(process.execPath, [join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run']);
