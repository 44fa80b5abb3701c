#!/usr/bin/env node
// prebuildify only knows node-gyp: it runs `<node-gyp> rebuild --target=V --devdir=D --arch=A --release`.
// This shim translates that call into a cmake-js build. The addon is Node-API (one binary for every
// Node version), so --target is ignored: cmake-js takes the Node-API headers from node-api-headers
// instead of downloading a specific Node's headers. ND_CUDA in the environment picks the variant.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const argv = process.argv.slice(2);
const opt = (name) => {
  const a = argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : undefined;
};
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const args = [cmakeJs, 'rebuild', '--config', argv.includes('--debug') ? 'Debug' : 'Release',
  `--CDND_CUDA=${process.env.ND_CUDA || 'OFF'}`];
if (opt('arch')) args.push(`--arch=${opt('arch')}`);
if (process.env.CMAKE_CUDA_ARCHITECTURES) args.push(`--CDCMAKE_CUDA_ARCHITECTURES=${process.env.CMAKE_CUDA_ARCHITECTURES}`);
const r = spawnSync(process.execPath, args, { cwd: path.join(__dirname, '..'), stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
