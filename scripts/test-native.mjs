// Builds and runs the native unit tests (ctest).
//   node scripts/test-native.mjs             Release build in build-tests/
//   node scripts/test-native.mjs --sanitize  ASan + UBSan build in build-asan/
//   node scripts/test-native.mjs --gpu       CUDA build in build-gpu/, runs only the GPU-labelled tests
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const sanitize = process.argv.includes('--sanitize');
const gpu = process.argv.includes('--gpu');
const dir = join(root, gpu ? 'build-gpu' : sanitize ? 'build-asan' : 'build-tests');
const jobs = String(Math.min(availableParallelism(), 8));

function run(cmd, args, env = process.env) {
  console.log(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

run('cmake', ['-S', '.', '-B', dir, '-DND_BUILD_TESTS=ON', `-DND_CUDA=${gpu ? 'ON' : 'OFF'}`,
  `-DND_SANITIZE=${sanitize ? 'ON' : 'OFF'}`, `-DCMAKE_BUILD_TYPE=${sanitize ? 'RelWithDebInfo' : 'Release'}`,
  ...(gpu && process.env.CMAKE_CUDA_ARCHITECTURES ? [`-DCMAKE_CUDA_ARCHITECTURES=${process.env.CMAKE_CUDA_ARCHITECTURES}`] : [])]);
run('cmake', ['--build', dir, '--parallel', jobs]);
const env = { ...process.env, ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0', UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1' };
run('ctest', ['--test-dir', dir, '--output-on-failure', ...(gpu ? ['-L', 'gpu'] : ['-LE', sanitize ? 'gpu|emulated-model' : 'gpu'])], env);
