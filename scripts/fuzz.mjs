// Builds the libFuzzer targets with clang and runs each for a while (default 60 s) over a copy of
// its seed corpus. Needs clang with libFuzzer (Debian: clang libclang-rt-14-dev).
//   node scripts/fuzz.mjs [seconds]
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const seconds = process.argv[2] ?? '60';
const dir = join(root, 'build-fuzz');

function run(cmd, args, env = process.env) {
  console.log(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

const env = { ...process.env, CC: 'clang', CXX: 'clang++' };
run('cmake', ['-S', '.', '-B', dir, '-DND_FUZZ=ON', '-DND_CUDA=OFF', '-DCMAKE_BUILD_TYPE=RelWithDebInfo'], env);
const targets = readdirSync(join(root, 'test', 'fuzz')).filter((f) => /^fuzz_.*\.cpp$/.test(f)).map((f) => f.replace(/\.cpp$/, ''));
run('cmake', ['--build', dir, '--parallel', '2', '--target', ...targets], env);
for (const t of targets) {
  // libFuzzer adds new inputs to the first corpus directory: fuzz a scratch copy, keep the seeds clean.
  const scratch = mkdtempSync(join(tmpdir(), `${t}-`));
  cpSync(join(root, 'test', 'fuzz', 'corpus'), scratch, { recursive: true });
  run(join(dir, t), [`-max_total_time=${seconds}`, '-rss_limit_mb=2048', '-max_len=65536', '-print_final_stats=1', scratch]);
  rmSync(scratch, { recursive: true, force: true });
}
