#!/usr/bin/env node
// `npm run prebuild`: the binaries that ship on npm, made with prebuildify through the cmake-js shim.
//   prebuilds/linux-x64/node-diffusion.glibc.node        CPU variant (baseline x86-64 + runtime AVX2)
//   prebuilds-cuda/linux-x64/node-diffusion.glibc.node   CUDA variant (sm_80/86/89/90 + PTX), when nvcc exists
//   npm/linux-x64-cuda/prebuilds/...                     the same CUDA binary for the optional package
// Flags: --cpu-only, --cuda-only. Compiling CUDA needs no GPU.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');

// npm (and yarn v1) run a script named "prebuild" as a hook before "build". `npm run build` (the
// source build) must not trigger the prebuilt-binary build, so skip when an ancestor process is
// running the "build" script: `npm run build`, `yarn build`, `yarn run build`, `pnpm build`, ...
function invokedAsBuildHook() {
  if (process.env.npm_lifecycle_event !== 'prebuild') return false;
  const runners = /^(npm|npm-cli\.js|yarn|yarn\.js|yarn\.cjs|pnpm|pnpm\.cjs|pnpm\.js|bun)$/;
  let pid = process.ppid;
  for (let depth = 0; depth < 5 && pid > 1; depth++) {
    try {
      // npm retitles itself ("npm run build" as one string), so split on spaces too.
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split(/[\0\s]+/).filter(Boolean);
      const r = argv.findIndex((a) => runners.test(path.basename(a)));
      if (r >= 0) {
        const rest = argv.slice(r + 1).filter((a) => !a.startsWith('-'));
        const script = ['run', 'run-script', 'rum', 'urn'].includes(rest[0]) ? rest[1] : rest[0];
        return script === 'build';
      }
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      pid = Number(/PPid:\s+(\d+)/.exec(status)?.[1] ?? 0);
    } catch {
      return false;
    }
  }
  return false;
}
if (invokedAsBuildHook()) process.exit(0);

const args = process.argv.slice(2);
const platformDir = `${process.platform}-${process.arch}`;
const prebuildify = require.resolve('prebuildify/bin.js');
const shim = path.join(__dirname, 'cmake-js-as-node-gyp.cjs');

function hasNvcc() {
  const candidates = [process.env.CUDACXX, 'nvcc', '/usr/local/cuda/bin/nvcc'].filter(Boolean);
  return candidates.some((c) => spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0);
}

function build(variant, outDir) {
  fs.rmSync(path.join(root, 'build'), { recursive: true, force: true }); // prebuildify takes the first .node it finds
  const tmp = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'nd-prebuild-'));
  const env = { ...process.env, ND_CUDA: variant === 'cuda' ? 'ON' : 'OFF' };
  console.log(`prebuild: ${variant} variant`);
  const r = spawnSync(process.execPath, [prebuildify, '--napi', '--strip', '--tag-libc', '--node-gyp', shim, '--out', tmp],
    { cwd: root, stdio: 'inherit', env });
  if (r.status !== 0) process.exit(r.status || 1);
  const from = path.join(tmp, 'prebuilds', platformDir);
  for (const dir of outDir) {
    const to = path.join(dir, platformDir);
    fs.rmSync(to, { recursive: true, force: true });
    fs.mkdirSync(to, { recursive: true });
    for (const f of fs.readdirSync(from)) fs.copyFileSync(path.join(from, f), path.join(to, f));
    console.log(`prebuild: wrote ${to}`);
  }
  fs.rmSync(tmp, { recursive: true, force: true });
}

// The optional CUDA package must carry the main package's version (the loader rejects a mismatch).
const version = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version;
const cudaPkgJson = path.join(root, 'npm', 'linux-x64-cuda', 'package.json');
const cudaPkg = JSON.parse(fs.readFileSync(cudaPkgJson, 'utf8'));
if (cudaPkg.version !== version) fs.writeFileSync(cudaPkgJson, JSON.stringify({ ...cudaPkg, version }, null, 2) + '\n');

if (!args.includes('--cuda-only')) build('cpu', [path.join(root, 'prebuilds')]);
if (!args.includes('--cpu-only')) {
  if (hasNvcc()) build('cuda', [path.join(root, 'prebuilds-cuda'), path.join(root, 'npm', 'linux-x64-cuda', 'prebuilds')]);
  else if (args.includes('--cuda-only')) { console.error('prebuild: nvcc not found; cannot build the CUDA variant'); process.exit(1); }
  else console.log('prebuild: nvcc not found; skipping the CUDA variant');
}
// Leave no stale variant in build/: node-gyp-build prefers build/Release over prebuilds/.
fs.rmSync(path.join(root, 'build'), { recursive: true, force: true });
