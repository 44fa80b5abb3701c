// The package's install script: a convenience, never a requirement. The runtime loader works with
// --ignore-scripts; this only checks that a prebuilt binary loads and, when none fits and a
// toolchain is present, builds from source. It never fails `npm install` for a missing toolchain.
//   ND_BUILD_FROM_SOURCE=1 (or npm_config_build_from_source=true) forces a source build.
//   ND_POSTINSTALL=skip skips everything.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');
if (process.env.ND_POSTINSTALL === 'skip') process.exit(0);
const force = process.env.ND_BUILD_FROM_SOURCE === '1' || process.env.npm_config_build_from_source === 'true';

// Returns null when a prebuilt binary loads (checked in a child process), else why not.
function prebuildProblem() {
  let file;
  try {
    file = require('node-gyp-build').path(root);
  } catch (err) {
    return `no prebuilt binary for ${process.platform}-${process.arch} (${String(err.message).split('\n')[0]})`;
  }
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(file)})`], { encoding: 'utf8' });
  if (r.status === 0) return null;
  const why = (r.stderr || '').trim().split('\n').filter(Boolean).slice(-1)[0] || `exit code ${r.status}`;
  return `${file} does not load: ${why}`;
}

function have(cmd) {
  return spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
}

const problem = force ? 'a source build was requested' : prebuildProblem();
if (!problem) process.exit(0);
if (!have('cmake') || !(have('c++') || have('g++') || have('clang++'))) {
  console.warn(
    `node-diffusion: ${problem}, and no C++ toolchain was found, so the\n` +
      'native addon is not built. Install cmake and a C++20 compiler, then run `npm run build` in\n' +
      `${root}.`,
  );
  process.exit(0);
}
console.log(`node-diffusion: ${problem}; building the native addon from source (npm run build).`);
const r = spawnSync(process.execPath, [path.join(__dirname, 'build-native.cjs')], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) console.warn('node-diffusion: the source build failed; see above. The package is installed without a native addon.');
process.exit(0);
