#!/usr/bin/env node
// `npm run build`: builds the native addon from source with cmake-js into build/Release.
//   npm run build                 CUDA backend when nvcc is found (ND_CUDA=AUTO)
//   npm run build -- --cuda       require CUDA (fails without nvcc)
//   npm run build -- --no-cuda    CPU only
//   npm run build -- --debug      Debug build
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const os = require('node:os');

const root = path.join(__dirname, '..');
const args = process.argv.slice(2);
let cuda = process.env.ND_CUDA || 'AUTO';
if (args.includes('--cuda')) cuda = 'ON';
if (args.includes('--no-cuda')) cuda = 'OFF';
const config = args.includes('--debug') ? 'Debug' : 'Release';
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const jobs = String(Math.max(1, Math.min(os.availableParallelism ? os.availableParallelism() : os.cpus().length, 8)));
const cmakeArgs = [cmakeJs, 'compile', '--config', config, '--parallel', jobs, `--CDND_CUDA=${cuda}`];
if (process.env.CMAKE_CUDA_ARCHITECTURES) cmakeArgs.push(`--CDCMAKE_CUDA_ARCHITECTURES=${process.env.CMAKE_CUDA_ARCHITECTURES}`);
const r = spawnSync(process.execPath, cmakeArgs, { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error(
    '\nnode-diffusion: building the native addon failed.\n' +
      '  It needs cmake >= 3.24, a C++20 compiler (g++ >= 11 or clang >= 14) and make or ninja;\n' +
      '  on Debian/Ubuntu: apt-get install cmake g++ make. For the CUDA backend, the CUDA toolkit (nvcc).\n',
  );
  process.exit(r.status || 1);
}
console.log(`node-diffusion: built ${path.join(root, 'build', config, 'node_diffusion.node')} (ND_CUDA=${cuda})`);
