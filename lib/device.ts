/** Devices, threads and memory accounting. */
import { addon, loadBinding, type MemoryStats, type NativeDeviceInfo } from './binding.js';
import { ArgumentError, callSync, DeviceError } from './errors.js';
import { assertIntegerInRange, assertNonNegativeInteger, assertObject, invalidParameter } from './validate.js';

/** 'cpu' (the whole machine), 'cpu:N' (virtual CPU device), 'cuda' (= 'cuda:0') or 'cuda:N'. */
export type DeviceId = 'cpu' | `cpu:${number}` | 'cuda' | `cuda:${number}`;

const DEVICE_RE = /^(cpu|cuda)(:(0|[1-9][0-9]{0,3}))?$/;

export function parseDevice(name: string, value: unknown): DeviceId {
  if (typeof value !== 'string' || !DEVICE_RE.test(value)) {
    throw invalidParameter(name, "device 'cpu', 'cpu:N', 'cuda' or 'cuda:N'", value);
  }
  return (value === 'cuda' ? 'cuda:0' : value) as DeviceId;
}

/**
 * parseDevice plus an availability check: a CUDA device while the CPU backend is loaded is an
 * error that says why CUDA is not in use, never a silent CPU run.
 */
export function resolveDevice(name: string, value: unknown): DeviceId {
  const d = parseDevice(name, value);
  if (d.startsWith('cuda')) {
    const b = loadBinding();
    if (b.backend !== 'cuda') {
      throw new DeviceError(`Device ${d} was requested but the CPU backend is in use` +
        (b.cudaUnavailableReason ? `: ${b.cudaUnavailableReason}` : ''));
    }
  }
  return d;
}

export type { MemoryStats };
export type DeviceInfo = NativeDeviceInfo;

/** Sets the size of the native thread pool of the 'cpu' device (default: cores, or env ND_THREADS). */
export function setThreads(threads: number): void {
  assertIntegerInRange('threads', threads, 1, 1024);
  callSync(() => addon().setThreads(threads));
}

export function getThreads(): number {
  return addon().getThreads();
}

export interface DeviceConfig {
  /** Number of virtual CPU devices 'cpu:0'..'cpu:N-1' (each a thread subset with its own memory accounting). */
  virtualCpus?: number;
  /** Threads per virtual device; default: the cores split evenly. */
  threadsPerDevice?: number;
  /** Per virtual device memory limit in bytes (0 = none); allocations beyond it fail with ERR_ND_OOM. */
  memoryLimit?: number;
}

/** Replaces the set of virtual CPU devices. Tensors on the old ones stay valid until disposed. */
export function configureDevices(config: DeviceConfig): void {
  assertObject('config', config);
  for (const key of Object.keys(config)) {
    if (!['virtualCpus', 'threadsPerDevice', 'memoryLimit'].includes(key)) {
      throw new ArgumentError(`Expected only the keys virtualCpus, threadsPerDevice, memoryLimit for config but received key ${key}`);
    }
  }
  const { virtualCpus = 0, threadsPerDevice = 0, memoryLimit = 0 } = config;
  assertIntegerInRange('virtualCpus', virtualCpus, 0, 256);
  assertIntegerInRange('threadsPerDevice', threadsPerDevice, 0, 1024);
  assertNonNegativeInteger('memoryLimit', memoryLimit);
  callSync(() => addon().configureVirtualCpus(virtualCpus, threadsPerDevice, memoryLimit));
}

/** Every device this process can use, with its memory statistics. */
export function devices(): DeviceInfo[] {
  loadBinding();
  return callSync(() => addon().listDevices());
}

export function memoryStats(device: string = 'cpu'): MemoryStats {
  const d = resolveDevice('device', device);
  return callSync(() => addon().memoryStats(d));
}

/** Returns the device's cached free blocks to the system or driver. */
export function emptyCache(device: string = 'cpu'): void {
  const d = resolveDevice('device', device);
  callSync(() => addon().emptyCache(d));
}

/** Caps the bytes a device may have in use (0 = no cap). */
export function setMemoryLimit(device: string, bytes: number): void {
  const d = resolveDevice('device', device);
  assertNonNegativeInteger('bytes', bytes);
  callSync(() => addon().setMemoryLimit(d, bytes));
}
