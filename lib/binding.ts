/**
 * Finds, checks and loads the native addon.
 *
 * Candidates, in order: `ND_BINDING_PATH` (an explicit .node file); for CUDA, a source build in
 * build/Release, the CUDA prebuild (prebuilds-cuda/) and the optional package
 * `@node-diffusion/linux-x64-cuda`; for CPU, whatever node-gyp-build finds (source build first,
 * then prebuilds/). A CUDA binary is first loaded in a child process that asks the driver for
 * devices: a broken driver can abort the process that loads it, and that must not be the user's.
 * Requesting `cuda` when no candidate passes throws a DeviceError that lists every reason;
 * `auto` falls back to CPU and records why in backendInfo().
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { BindingLoadError, DeviceError } from './errors.js';
import { packageRoot } from './paths.js';
import { assertOneOf, invalidParameter } from './validate.js';

const require = createRequire(import.meta.url);

export type BackendRequest = 'auto' | 'cpu' | 'cuda';
export const BACKEND_REQUESTS: readonly BackendRequest[] = ['auto', 'cpu', 'cuda'];

export interface CudaProbe {
  compiled: boolean;
  runtimeVersion: number;
  driverVersion: number;
  deviceCount: number;
  error: string;
}

export interface CandidateReport {
  path: string;
  kind: 'env' | 'source-build' | 'prebuild' | 'prebuild-cuda' | 'package-cuda';
  verdict: string;
}

export interface LoadedBinding {
  addon: NativeAddon;
  backend: 'cpu' | 'cuda';
  requested: BackendRequest;
  path: string;
  kind: CandidateReport['kind'];
  /** Why CUDA is not in use, when it is not. */
  cudaUnavailableReason?: string;
  candidates: CandidateReport[];
}

/** The raw addon surface; never exposed from the package. */
export interface NativeAddon {
  cudaCompiled: boolean;
  fromArray(data: ArrayBufferView, shape: number[], dtype: string, copy: boolean): NativeTensorHandle;
  empty(shape: number[], dtype: string, device: string): NativeTensorHandle;
  zeros(shape: number[], dtype: string, device: string): Promise<NativeTensorHandle>;
  toDevice(t: NativeTensorHandle, device: string): Promise<NativeTensorHandle>;
  cast(t: NativeTensorHandle, dtype: string): Promise<NativeTensorHandle>;
  read(t: NativeTensorHandle, dst: ArrayBufferView): Promise<void>;
  readSync(t: NativeTensorHandle, dst: ArrayBufferView): void;
  view(t: NativeTensorHandle): ArrayBuffer;
  randn(shape: number[], dtype: string, device: string, seeds: BigUint64Array, stream: bigint, consecutive: boolean): Promise<NativeTensorHandle>;
  setThreads(n: number): void;
  getThreads(): number;
  configureVirtualCpus(count: number, threadsPerDevice: number, memoryLimit: number): void;
  listDevices(): NativeDeviceInfo[];
  memoryStats(device: string): MemoryStats;
  emptyCache(device: string): void;
  setMemoryLimit(device: string, bytes: number): void;
  setCpuIsa(isa: string): void;
  probeCuda(): CudaProbe;
  disableCuda(reason: string): void;
  externalMemory(): number;
  nativeInfo(): NativeInfo;
  safetensorsOpen(path: string): Promise<NativeSafetensorsHandle>;
  safetensorsWrite(path: string, entries: { name: string; tensor: NativeTensorHandle }[], metadata: [string, string][]): Promise<void>;
}

export interface NativeTensorHandle {
  shape(): number[];
  dtype(): string;
  device(): string;
  nbytes(): number;
  zeroCopy(): boolean;
  dispose(): void;
}

export interface NativeSafetensorsHandle {
  header(): { tensors: { name: string; dtype: string; shape: number[]; begin: number; end: number }[]; metadata: [string, string][] };
  read(name: string, dtype: string | null, device: string, shareMapping: boolean): Promise<NativeTensorHandle>;
  close(): void;
}

export interface MemoryStats {
  bytesInUse: number;
  peakBytesInUse: number;
  bytesCached: number;
  allocations: number;
  frees: number;
  cacheHits: number;
  systemAllocations: number;
  memoryLimit: number;
}

export interface NativeDeviceInfo {
  id: string;
  type: 'cpu' | 'cuda';
  name: string;
  threads: number;
  cpuSet: number[];
  totalMemory: number;
  memory: MemoryStats;
}

export interface NativeInfo {
  version: string;
  cpu: { vendor: string; brand: string; features: Record<string, boolean>; isa: string; logicalCpus: number };
  cuda: CudaProbe;
  threads: number;
}

let loaded: LoadedBinding | undefined;

const driverLibDirs = [
  '/usr/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/nvidia/lib64', '/usr/lib/wsl/lib',
  '/run/opengl-driver/lib',
];

/** Whether the NVIDIA driver's user-space library is installed; checked without loading it. */
function findDriverLibrary(): string | undefined {
  const dirs = [...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), ...driverLibDirs];
  for (const d of dirs) {
    const p = join(d, 'libcuda.so.1');
    if (existsSync(p)) return p;
  }
  try {
    if (readFileSync('/etc/ld.so.cache').includes('libcuda.so.1')) return 'ld.so.cache';
  } catch {
    // no cache: not an error
  }
  return undefined;
}

export interface ProbeVerdict { ok: boolean; reason: string; probe?: CudaProbe; crashed?: boolean }

interface ChildResult { error?: Error; signal: NodeJS.Signals | null; status: number | null; stdout: string; stderr: string }

const probeScript = () => join(packageRoot(), 'scripts', 'probe-binding.cjs');
const probeCache = new Map<string, ProbeVerdict>();

/** Loads `path` in a child process and asks it about CUDA; never loads it here. */
export function probeInChild(path: string): ProbeVerdict {
  const r = spawnSync(process.execPath, [probeScript(), path], { encoding: 'utf8', timeout: 30_000, env: process.env });
  return verdict({ error: r.error, signal: r.signal, status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' });
}

/** probeInChild without blocking the event loop. */
export function probeInChildAsync(path: string): Promise<ProbeVerdict> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [probeScript(), path], { encoding: 'utf8', timeout: 30_000, env: process.env },
      (error, stdout, stderr) => {
        const spawnFailed = error && typeof (error as NodeJS.ErrnoException).code === 'string' ? error : undefined;
        resolve(verdict({ error: spawnFailed, signal: child.signalCode, status: child.exitCode, stdout, stderr }));
      });
  });
}

function verdict(r: ChildResult): ProbeVerdict {
  if (r.error) return { ok: false, reason: `the probe process failed to run: ${r.error.message}` };
  if (r.signal) return { ok: false, crashed: true, reason: `loading it killed the probe process (${r.signal}); the CUDA driver or runtime is broken` };
  const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  let probe: CudaProbe;
  try {
    probe = JSON.parse(line) as CudaProbe;
  } catch {
    const err = (r.stderr ?? '').trim().split('\n').slice(-3).join(' ');
    return { ok: false, reason: `the probe process exited with code ${r.status}: ${err || 'no output'}` };
  }
  if (!probe.compiled) return { ok: false, reason: 'the binary was built without the CUDA backend', probe };
  if (probe.error) return { ok: false, reason: probe.error, probe };
  return { ok: true, reason: `${probe.deviceCount} CUDA device(s), driver ${probe.driverVersion}`, probe };
}

/** Candidates that exist but cannot be used at all (e.g. a version mismatch), with the reason. */
const rejectedCandidates: CandidateReport[] = [];

function cudaCandidates(root: string): { path: string; kind: CandidateReport['kind'] }[] {
  const out: { path: string; kind: CandidateReport['kind'] }[] = [];
  rejectedCandidates.length = 0;
  const src = join(root, 'build', 'Release', 'node_diffusion.node');
  if (existsSync(src)) out.push({ path: src, kind: 'source-build' });
  for (const name of ['node-diffusion.glibc.node', 'node-diffusion.node']) {
    const p = join(root, 'prebuilds-cuda', `${process.platform}-${process.arch}`, name);
    if (existsSync(p)) { out.push({ path: p, kind: 'prebuild-cuda' }); break; }
  }
  try {
    const pkgDir = join(require.resolve('@node-diffusion/linux-x64-cuda/package.json'), '..');
    const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string };
    const own = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    const p = join(pkgDir, 'prebuilds', `${process.platform}-${process.arch}`, 'node-diffusion.glibc.node');
    if (pkg.version !== own.version) {
      rejectedCandidates.push({ path: pkgDir, kind: 'package-cuda', verdict: `@node-diffusion/linux-x64-cuda is version ${pkg.version} but node-diffusion is ${own.version}; install the matching version` });
    } else if (existsSync(p)) out.push({ path: p, kind: 'package-cuda' });
  } catch {
    // the optional CUDA package is not installed
  }
  return out;
}

/**
 * The CUDA binaries worth probing, shared by the sync and async loaders; `skipReason` says why none
 * is probed (none installed, or no NVIDIA driver library on the system).
 */
function cudaCandidatesToProbe(root: string, explicit: string | undefined): { list: { path: string; kind: CandidateReport['kind'] }[]; skipReason?: string } {
  const list = explicit ? [{ path: explicit, kind: 'env' as const }] : cudaCandidates(root);
  if (list.length === 0) {
    return { list, skipReason: rejectedCandidates.map((c) => c.verdict).join('; ') ||
      'no CUDA build of node-diffusion is installed (install @node-diffusion/linux-x64-cuda or run `npm run build` with nvcc available)' };
  }
  if (!findDriverLibrary() && process.env.ND_CUDA_PROBE !== 'force') return { list, skipReason: 'the NVIDIA driver library libcuda.so.1 was not found' };
  return { list };
}

function cpuCandidate(root: string): { path: string; kind: CandidateReport['kind'] } {
  const ngb = require('node-gyp-build') as { path(dir: string): string };
  const path = ngb.path(root);
  return { path, kind: path.includes(`${join('build', 'Release')}`) ? 'source-build' : 'prebuild' };
}

/** ND_BINDING_PATH, resolved against the working directory (require() would resolve it against dist/). */
function bindingPathFromEnv(): string | undefined {
  const p = process.env.ND_BINDING_PATH;
  return p ? resolve(p) : undefined;
}

function requestedBackend(explicit?: BackendRequest): BackendRequest {
  if (explicit !== undefined) {
    assertOneOf('backend', explicit, BACKEND_REQUESTS);
    return explicit;
  }
  const v = process.env.ND_BACKEND ?? 'auto';
  assertOneOf('ND_BACKEND', v, BACKEND_REQUESTS);
  return v;
}

/**
 * The native side reads ND_THREADS, ND_VIRTUAL_CPUS and ND_CPU_ISA once; a malformed value is an
 * error here rather than silently ignored there.
 */
function checkEnvironment(): void {
  const int = (name: string, lo: number, hi: number) => {
    const raw = process.env[name];
    if (raw === undefined) return;
    if (!/^[0-9]+$/.test(raw) || Number(raw) < lo || Number(raw) > hi) {
      throw invalidParameter(name, `integer in [${lo}, ${hi}]`, raw);
    }
  };
  int('ND_THREADS', 1, 1024);
  int('ND_VIRTUAL_CPUS', 0, 256);
  const isa = process.env.ND_CPU_ISA;
  if (isa !== undefined) assertOneOf('ND_CPU_ISA', isa.toLowerCase(), ['baseline', 'avx2']);
}

function noBinaryError(root: string, cause: unknown): BindingLoadError {
  const msg = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
  return new BindingLoadError(
    `Could not load the node-diffusion native addon for ${process.platform}-${process.arch} (Node ${process.version}).\n` +
      `  Reason: ${msg}\n` +
      `  Fixes:\n` +
      `  1. Reinstall so the prebuilt binary (prebuilds/ in the package) is present: npm install node-diffusion\n` +
      `  2. Build from source (needs cmake >= 3.24 and a C++20 compiler): cd ${root} && npm run build\n` +
      `  3. Point ND_BINDING_PATH at a node_diffusion.node you built yourself.`,
    { cause },
  );
}

/**
 * Loads the addon once per process. Later calls return the same binding; asking for a different
 * backend after the first load throws, because a process holds one addon.
 */
export function loadBinding(options: { backend?: BackendRequest } = {}): LoadedBinding {
  const requested = requestedBackend(options.backend);
  if (!loaded) checkEnvironment();
  if (loaded) {
    if (options.backend && options.backend !== 'auto' && options.backend !== loaded.backend) {
      throw new DeviceError(`The ${loaded.backend} backend is already loaded in this process; ` +
        `call init({ backend: '${options.backend}' }) before any other node-diffusion call`);
    }
    return loaded;
  }
  const root = packageRoot();
  const candidates: CandidateReport[] = [];
  const explicit = bindingPathFromEnv();

  const finish = (path: string, kind: CandidateReport['kind'], backend: 'cpu' | 'cuda', reason?: string): LoadedBinding => {
    let addon: NativeAddon;
    try {
      addon = require(path) as NativeAddon;
    } catch (err) {
      throw noBinaryError(root, err);
    }
    // On the CPU backend the process never touches the CUDA driver, even when the binary has CUDA:
    // the child-process check may have just found that driver broken.
    if (backend === 'cpu' && addon.cudaCompiled) addon.disableCuda(reason ?? 'the CPU backend is in use');
    loaded = { addon, backend, requested, path, kind, candidates, cudaUnavailableReason: reason };
    return loaded;
  };

  let cudaReason: string | undefined;
  if (requested !== 'cpu') {
    const { list, skipReason } = cudaCandidatesToProbe(root, explicit);
    candidates.push(...rejectedCandidates);
    if (skipReason) cudaReason = skipReason;
    else {
      const reasons: string[] = [];
      for (const c of list) {
        const r = probeCache.get(c.path) ?? probeInChild(c.path);
        probeCache.set(c.path, r);
        candidates.push({ path: c.path, kind: c.kind, verdict: r.ok ? `usable: ${r.reason}` : r.reason });
        if (r.ok) return finish(c.path, c.kind, 'cuda');
        reasons.push(`${c.kind} ${c.path}: ${r.reason}`);
      }
      cudaReason = reasons.join('; ');
    }
    if (requested === 'cuda') {
      throw new DeviceError(`CUDA was requested but is not available: ${cudaReason}. ` +
        `Use backend 'auto' or 'cpu' to run on the CPU.`);
    }
  }
  // A binary that killed its probe process must not be loaded here, even for the CPU backend: the
  // crash may not be CUDA's.
  const crashed = (p: string) => probeCache.get(p)?.crashed === true;
  if (explicit) {
    if (crashed(explicit)) throw noBinaryError(root, new Error(`${explicit} killed the probe process: ${probeCache.get(explicit)!.reason}`));
    return finish(explicit, 'env', 'cpu', cudaReason);
  }
  let cpu: { path: string; kind: CandidateReport['kind'] };
  try {
    cpu = cpuCandidate(root);
    if (crashed(cpu.path)) {
      const prebuild = join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'node-diffusion.glibc.node');
      if (!existsSync(prebuild) || crashed(prebuild)) throw new Error(`${cpu.path} killed the probe process: ${probeCache.get(cpu.path)!.reason}`);
      cpu = { path: prebuild, kind: 'prebuild' };
    }
  } catch (err) {
    throw noBinaryError(root, err);
  }
  candidates.push({ path: cpu.path, kind: cpu.kind, verdict: 'loaded for the CPU backend' });
  return finish(cpu.path, cpu.kind, 'cpu', requested === 'cpu' ? 'the CPU backend was requested' : cudaReason);
}

/**
 * loadBinding with the CUDA candidates probed asynchronously first (each probe starts a Node
 * process, which takes tens of milliseconds or more while the driver initialises).
 */
export async function loadBindingAsync(options: { backend?: BackendRequest } = {}): Promise<LoadedBinding> {
  const requested = requestedBackend(options.backend);
  if (!loaded && requested !== 'cpu') {
    const { list, skipReason } = cudaCandidatesToProbe(packageRoot(), bindingPathFromEnv());
    if (!skipReason) {
      for (const c of list) {
        if (!probeCache.has(c.path)) probeCache.set(c.path, await probeInChildAsync(c.path));
        if (probeCache.get(c.path)!.ok) break;
      }
    }
  }
  return loadBinding(options);
}

/** The addon, loading it with the default backend request on first use. */
export function addon(): NativeAddon {
  return (loaded ?? loadBinding()).addon;
}
