// Where the benchmarks find PyTorch, and the environment that gives Debian's PyTorch its best BLAS.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A Python with torch (env PYTHON, /usr/bin/python3, python3), or null. */
export function findPython() {
  for (const py of [process.env.PYTHON, '/usr/bin/python3', 'python3'].filter(Boolean)) {
    if (spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0) return py;
  }
  return null;
}

// Debian's torch calls the system libblas.so.3, which may be the reference (netlib) BLAS: give it
// OpenBLAS when installed, with its AVX-512 kernels (OpenBLAS 0.3.21 does not recognise newer Xeons
// and would fall back to SSE3 ones), so the comparison is against PyTorch at its best on this machine.
export function tunedTorchEnv(threads) {
  const openblasDir = '/usr/lib/x86_64-linux-gnu/openblas-pthread';
  if (!existsSync(join(openblasDir, 'libblas.so.3'))) return {};
  const coretype = readFileSync('/proc/cpuinfo', 'utf8').includes('avx512f') ? 'SkylakeX' : 'Haswell';
  return { LD_LIBRARY_PATH: openblasDir, OPENBLAS_CORETYPE: coretype, OPENBLAS_NUM_THREADS: `${threads}` };
}
