// The CLI and the loader run in child processes: a process loads one backend, once.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Children start from the default backend request ('auto') unless a test sets one.
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'ND_BACKEND'));
const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ['dist/cli.js', ...args], { encoding: 'utf8', env: { ...baseEnv, ...env } });
// On a machine with a usable NVIDIA GPU, 'auto' picks CUDA; these expectations follow.
const gpu = (() => {
  const r = spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8' });
  return r.status === 0 && /GPU \d/.test(r.stdout);
})();

describe('node-diffusion CLI', () => {
  it('info prints version, backends with reasons, devices, threads and CPU features', () => {
    const r = run(['info']);
    expect(r.status).toBe(0);
    const version = JSON.parse(readFileSync('package.json', 'utf8')).version;
    expect(r.stdout).toContain(`node-diffusion ${version}`);
    expect(r.stdout).toMatch(gpu ? /backend: +cuda/ : /backend: +cpu/);
    expect(r.stdout).toMatch(gpu ? /cuda +available: \d+ device/ : /cuda +not available: .{10,}/);
    expect(r.stdout).toMatch(/threads: +\d+/);
    expect(r.stdout).toMatch(/cpu +CPU, \d+ thread/);
    expect(r.stdout).toMatch(/features: .*sse2/);
  });

  it('info --json is machine-readable', () => {
    const r = run(['info', '--json'], { ND_VIRTUAL_CPUS: '2' });
    const info = JSON.parse(r.stdout);
    expect(info.backend).toBe(gpu ? 'cuda' : 'cpu');
    expect(info.fellBack).toBe(!gpu);
    expect(info.devices.map((d: { id: string }) => d.id).slice(0, 3)).toEqual(['cpu', 'cpu:0', 'cpu:1']);
    expect(typeof info.cudaUnavailableReason).toBe(gpu ? 'undefined' : 'string');
    expect(info.cpu.isa).toMatch(/baseline|avx2/);
    expect(info.binary.version).toBe(info.version);
    // On the CPU backend a binary with CUDA never touches the driver in-process.
    if (info.binary.cudaCompiled) expect(info.cuda.error).toMatch(/^CUDA is not used in this process: .+/);
  });

  it.skipIf(gpu)('--backend cuda without a GPU fails with one clear line and exit code 1', () => {
    const r = run(['info', '--backend', 'cuda']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^node-diffusion: CUDA was requested but is not available: .+ \[ERR_ND_DEVICE\]\n$/);
  });

  it('malformed environment variables are errors, not silently ignored', () => {
    const bad = run(['info'], { ND_THREADS: 'lots' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain("Expected integer in [1, 1024] for ND_THREADS but received 'lots'");
    expect(run(['info'], { ND_BACKEND: 'gpu' }).stderr).toContain("Expected one of 'auto', 'cpu', 'cuda' for ND_BACKEND but received 'gpu'");
    expect(run(['info'], { ND_CPU_ISA: 'avx512' }).stderr).toContain('for ND_CPU_ISA');
    expect(run(['info'], { ND_THREADS: '2', ND_VIRTUAL_CPUS: '1' }).status).toBe(0);
  });

  it('--backend cpu, --help, --version and unknown commands', () => {
    expect(JSON.parse(run(['info', '--json', '--backend', 'cpu']).stdout).requested).toBe('cpu');
    expect(run(['--help']).stdout).toContain('Usage: node-diffusion');
    expect(run(['info', '--help']).stdout).toContain('Usage: node-diffusion info');
    expect(run(['--version']).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const bad = run(['frobnicate']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("unknown command 'frobnicate'");
  });

  it.skipIf(gpu)('ND_BACKEND=cuda makes library use fail with DeviceError; the process survives', () => {
    const r = spawnSync(process.execPath, ['-e', `
      const nd = require('./dist/index.cjs');
      try { nd.Tensor.from([1]); console.log('no error'); }
      catch (e) { console.log(e.name, e.code, e instanceof nd.DiffusionError); }`], { encoding: 'utf8', env: { ...baseEnv, ND_BACKEND: 'cuda' } });
    expect(r.stdout.trim()).toBe('DeviceError ERR_ND_DEVICE true');
  });

  it('the child-process probe reports a binary that cannot load instead of crashing', async () => {
    const { probeInChild } = await import('../lib/binding.js');
    const r = probeInChild('/nonexistent/addon.node');
    expect(r.ok).toBe(false);
    expect(r.reason).toMatch(/exited with code 3/);
    // A binary whose loading kills the process (as a broken driver can) is reported, and we live on.
    const dir = mkdtempSync(join(tmpdir(), 'nd-probe-'));
    const bomb = join(dir, 'bomb.js');
    writeFileSync(bomb, "process.kill(process.pid, 'SIGSEGV');\n");
    const crashed = probeInChild(bomb);
    expect(crashed.ok).toBe(false);
    expect(crashed.reason).toMatch(/killed the probe process \(SIGSEGV\)/);
    // The async probe (used by init()) reaches the same verdicts while the event loop keeps running.
    const { probeInChildAsync } = await import('../lib/binding.js');
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const [crashedAsync, missingAsync] = await Promise.all([probeInChildAsync(bomb), probeInChildAsync('/nonexistent/addon.node')]);
    clearInterval(timer);
    expect(crashedAsync).toEqual(crashed);
    expect(missingAsync).toEqual(r);
    expect(ticks).toBeGreaterThan(3);
    rmSync(dir, { recursive: true, force: true });
  });
});
