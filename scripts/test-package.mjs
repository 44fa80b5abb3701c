// The install story, end to end (CI runs it; it takes a few minutes):
//  1. `npm run prebuild` (CPU variant, plus the CUDA variant when nvcc exists), then `npm pack`;
//  2. in an empty project, `npm install ./node-diffusion-*.tgz` with no compiler and no cmake on PATH:
//     require('node-diffusion') and `npx node-diffusion info` work;
//  3. the same with --ignore-scripts;
//  4. with the prebuilds deleted, loading fails with the build-from-source hint, and `npm run build`
//     inside the installed package (toolchain back on PATH) builds the addon from source;
//  5. with a prebuild that does not load, the install script says why and builds from source.
// Prints 'N passed, M failed' and exits non-zero on any failure.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const work = mkdtempSync(join(tmpdir(), 'nd-package-'));
const keep = process.argv.includes('--keep');
const skipPrebuild = process.argv.includes('--skip-prebuild');
let passed = 0, failed = 0;

function check(name, ok, detail = '') {
  if (ok) { passed++; console.log(`ok   ${name}`); } else { failed++; console.log(`FAIL ${name}\n${detail}`); }
}

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}`, stdout: r.stdout ?? '' };
}

// A PATH with node, npm, npx and a shell, but no compiler, cmake or make.
const bareBin = join(work, 'bare-bin');
mkdirSync(bareBin);
const which = (c) => execFileSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' }).trim();
for (const tool of ['node', 'npm', 'npx', 'sh', 'env']) symlinkSync(which(tool), join(bareBin, tool));
const bareEnv = { ...process.env, PATH: bareBin };
delete bareEnv.ND_BINDING_PATH;
for (const c of ['cc', 'c++', 'g++', 'gcc', 'cmake', 'make', 'nvcc']) {
  check(`no ${c} on the bare PATH`, sh('sh', ['-c', `command -v ${c}`], { env: bareEnv }).status !== 0);
}

if (!skipPrebuild) {
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'prebuild.cjs')], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) { console.log('FAIL npm run prebuild'); process.exit(1); }
}
check('CPU prebuild exists', existsSync(join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'node-diffusion.glibc.node')));
const pack = sh('npm', ['pack', '--pack-destination', work], { cwd: root });
const tgz = readdirSync(work).find((f) => f.endsWith('.tgz'));
check('npm pack', pack.status === 0 && tgz, pack.out);
if (!tgz) process.exit(1);

function project(name, extraArgs) {
  const dir = join(work, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `consumer-${name}`, version: '1.0.0', private: true }));
  const r = sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...extraArgs, join(work, tgz)], { cwd: dir, env: bareEnv });
  check(`npm install ${extraArgs.join(' ')} without a toolchain`, r.status === 0, r.out);
  return dir;
}

const useScript = `
  const nd = require('node-diffusion');
  (async () => {
    const t = nd.Tensor.from(new Float32Array([1, 2, 3]));
    const h = await t.cast('f16');
    const r = await nd.randn([2, 2], { seed: 1 });
    console.log(JSON.stringify({ h: Array.from(await h.data()), n: (await r.data()).length, kind: nd.backendInfo().binary.kind }));
  })().catch((e) => { console.error(e); process.exit(1); });`;

for (const [name, extra] of [['with-scripts', []], ['ignore-scripts', ['--ignore-scripts']]]) {
  const dir = project(name, extra);
  const cjs = sh('node', ['-e', useScript], { cwd: dir, env: bareEnv });
  check(`${name}: require('node-diffusion') works`, cjs.status === 0 && cjs.stdout.includes('"h":[15360,16384,16896]') && cjs.stdout.includes('"kind":"prebuild"'), cjs.out);
  const esm = sh('node', ['--input-type=module', '-e', "import { Tensor } from 'node-diffusion'; console.log(Tensor.from([1]).dtype)"], { cwd: dir, env: bareEnv });
  check(`${name}: import from ESM works`, esm.status === 0 && esm.stdout.trim() === 'f32', esm.out);
  const info = sh('npx', ['node-diffusion', 'info'], { cwd: dir, env: bareEnv });
  check(`${name}: npx node-diffusion info`, info.status === 0 && /backend: +cpu/.test(info.stdout) && info.stdout.includes('[prebuild'), info.out);
  // The main job from the installed package: the built-in model ships inside it.
  const gen = sh('npx', ['node-diffusion', 'generate', '-o', 'out.png', '--steps', '4', '--quiet'], { cwd: dir, env: bareEnv });
  const png = existsSync(join(dir, 'out.png')) ? readFileSync(join(dir, 'out.png')) : Buffer.alloc(0);
  check(`${name}: npx node-diffusion generate -o out.png writes a PNG`, gen.status === 0 && png.subarray(1, 4).toString() === 'PNG', gen.out);

  if (name === 'with-scripts') {
    const pkgDir = join(dir, 'node_modules', 'node-diffusion');
    rmSync(join(pkgDir, 'prebuilds'), { recursive: true, force: true });
    rmSync(join(pkgDir, 'prebuilds-cuda'), { recursive: true, force: true });
    const missing = sh('node', ['-e', "require('node-diffusion').Tensor.from([1])"], { cwd: dir, env: bareEnv });
    check('without prebuilds: a clear error naming `npm run build`', missing.status !== 0 && missing.out.includes('Could not load the node-diffusion native addon') && missing.out.includes('npm run build'), missing.out);
    const build = sh('npm', ['run', 'build'], { cwd: pkgDir, env: { ...process.env, ND_CUDA: process.env.ND_PACKAGE_TEST_CUDA ?? 'OFF' } });
    check('npm run build in the installed package builds from source', build.status === 0, build.out.slice(-3000));
    const after = sh('node', ['-e', useScript], { cwd: dir, env: bareEnv });
    check('the source build loads', after.status === 0 && after.stdout.includes('"kind":"source-build"'), after.out);
  }
}

// A prebuilt binary that exists but does not load (corrupt, wrong libc, ...): the install script
// says why and falls back to a source build when a toolchain is present.
{
  const dir = project('broken-prebuild', ['--ignore-scripts']);
  const pkgDir = join(dir, 'node_modules', 'node-diffusion');
  writeFileSync(join(pkgDir, 'prebuilds', `${process.platform}-${process.arch}`, 'node-diffusion.glibc.node'), 'not an ELF file');
  const rebuild = sh('npm', ['rebuild', 'node-diffusion', '--foreground-scripts'], { cwd: dir, env: { ...process.env, ND_CUDA: 'OFF' } });
  check('a prebuild that does not load: the install script says why and builds from source',
    rebuild.status === 0 && /does not load: .*building the native addon from source/.test(rebuild.out) && existsSync(join(pkgDir, 'build', 'Release', 'node_diffusion.node')), rebuild.out.slice(-3000));
  const after = sh('node', ['-e', useScript], { cwd: dir, env: bareEnv });
  check('after the fallback build the package loads the source build', after.status === 0 && after.stdout.includes('"kind":"source-build"'), after.out);
}

if (!keep) rmSync(work, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
