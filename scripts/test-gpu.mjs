// `npm run test:gpu`: the CUDA tests. Needs an NVIDIA GPU; without one it says why and skips.
//  1. native GPU tests (ctest -L gpu) from a CUDA build in build-gpu/, then the kernel tests under
//     compute-sanitizer memcheck (skipped with --no-native,
//     e.g. on a GPU machine that only received the built addon);
//  2. test/gpu/*.test.mjs with node's test runner against the built addon, ND_BACKEND=cuda.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const hasGpu = spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8' });
if (hasGpu.status !== 0 || !/GPU \d/.test(hasGpu.stdout)) {
  console.log('test:gpu: skipped: no NVIDIA GPU found (nvidia-smi -L lists none)');
  process.exit(0);
}
console.log(hasGpu.stdout.trim());
let failed = false;
if (!process.argv.includes('--no-native') && spawnSync('cmake', ['--version']).status === 0) {
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'test-native.mjs'), '--gpu'], { cwd: root, stdio: 'inherit' });
  failed ||= r.status !== 0;
  // The kernel tests once more under compute-sanitizer's memcheck: any out-of-bounds or misaligned
  // device access, or a leaked allocation, fails the run.
  const sanitizer = ['compute-sanitizer', '/usr/local/cuda/bin/compute-sanitizer'].find((c) => spawnSync(c, ['--version']).status === 0);
  if (sanitizer) {
    const m = spawnSync(sanitizer, ['--tool', 'memcheck', '--leak-check', 'full', '--error-exitcode', '1', join(root, 'build-gpu', 'gputest_kernels')], { cwd: root, stdio: 'inherit' });
    failed ||= m.status !== 0;
  } else {
    console.log('test:gpu: compute-sanitizer not found; memcheck not run');
  }
}
if (!existsSync(join(root, 'dist', 'index.cjs'))) {
  console.error('test:gpu: dist/ is missing; run `npm run build:ts` first');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', join(root, 'test', 'gpu')], {
  cwd: root, stdio: 'inherit', env: { ...process.env, ND_BACKEND: process.env.ND_BACKEND ?? 'cuda', ND_EXPECT_GPU: '1' },
});
failed ||= r.status !== 0;
process.exit(failed ? 1 : 0);
