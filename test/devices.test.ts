import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { configureDevices, DeviceError, devices, emptyCache, getThreads, memoryStats, OutOfMemoryError, randn, setMemoryLimit, setThreads, Tensor } from '../lib/index.js';

describe('devices, threads and memory accounting', () => {
  it('virtual CPU devices have their own threads and memory accounting', async () => {
    configureDevices({ virtualCpus: 3, threadsPerDevice: 1 });
    const ids = devices().map((d) => d.id);
    expect(ids).toEqual(expect.arrayContaining(['cpu', 'cpu:0', 'cpu:1', 'cpu:2']));
    const v1 = devices().find((d) => d.id === 'cpu:1')!;
    expect(v1.threads).toBe(1);
    expect(v1.cpuSet.length).toBe(1);
    const x = await randn([4, 1000], { seed: 5 });
    const onDev = await x.to('cpu:1');
    expect(onDev.device).toBe('cpu:1');
    expect(memoryStats('cpu:1').bytesInUse).toBe(16384); // 16000 B rounds up to the 16 KiB size class
    expect(memoryStats('cpu:2').bytesInUse).toBe(0);
    // Same values on any device, and the same noise generated directly there.
    expect(Array.from(await onDev.data())).toEqual(Array.from(await x.data()));
    const direct = await randn([4, 1000], { seed: 5, device: 'cpu:2' });
    expect(Array.from(await direct.data())).toEqual(Array.from(await x.data()));
    onDev.dispose();
    expect(memoryStats('cpu:1').bytesInUse).toBe(0);
    await expect(x.to('cpu:7')).rejects.toBeInstanceOf(DeviceError);
    await expect(x.to('cpu:7')).rejects.toThrow(/3 virtual CPU device/);
  });

  it('the caching allocator reuses freed blocks and reports peak usage', async () => {
    configureDevices({ virtualCpus: 1 });
    const before = memoryStats('cpu:0');
    for (let i = 0; i < 5; i++) (await Tensor.zeros([1000], { device: 'cpu:0' })).dispose();
    const after = memoryStats('cpu:0');
    expect(after.allocations - before.allocations).toBe(5);
    expect(after.systemAllocations - before.systemAllocations).toBe(1);
    expect(after.cacheHits - before.cacheHits).toBe(4);
    expect(after.peakBytesInUse).toBeGreaterThanOrEqual(4096);
    expect(after.bytesCached).toBe(4096);
    emptyCache('cpu:0');
    expect(memoryStats('cpu:0').bytesCached).toBe(0);
  });

  it('a memory limit turns into OutOfMemoryError and the process keeps working', async () => {
    configureDevices({ virtualCpus: 2, memoryLimit: 1 << 20 });
    const ok = await Tensor.zeros([1000], { device: 'cpu:0' });
    const err = await Tensor.zeros([1 << 20], { device: 'cpu:0' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutOfMemoryError);
    expect((err as Error).message).toMatch(/^Out of memory on cpu:0: requested 4194304 bytes with .* in use and a limit of 1 MiB$/);
    expect(() => Tensor.empty([1 << 20], { device: 'cpu:1' })).toThrow(OutOfMemoryError);
    setMemoryLimit('cpu:1', 0);
    Tensor.empty([1 << 20], { device: 'cpu:1' }).dispose();
    ok.dispose();
  });

  it('configureDevices rejects unknown keys instead of silently resetting', () => {
    configureDevices({ virtualCpus: 2 });
    expect(() => configureDevices({ virtualCPUs: 4 } as never)).toThrow('Expected only the keys virtualCpus, threadsPerDevice, memoryLimit for config but received key virtualCPUs');
    expect(devices().filter((d) => d.id.startsWith('cpu:')).length).toBe(2);
  });

  it('setThreads / getThreads and ND_THREADS', () => {
    const original = getThreads();
    setThreads(1);
    expect(getThreads()).toBe(1);
    setThreads(original);
    expect(() => setThreads(0)).toThrow('Expected integer in [1, 1024] for threads but received 0');
    const r = spawnSync(process.execPath, ['--input-type=module', '-e',
      "import { getThreads } from './dist/index.js'; console.log(getThreads())"], { env: { ...process.env, ND_THREADS: '3' }, encoding: 'utf8' });
    expect(r.stdout.trim()).toBe('3');
  });

  it('asking for a CUDA device on the CPU backend is a DeviceError that says why', async () => {
    await expect(Tensor.zeros([2], { device: 'cuda:0' })).rejects.toBeInstanceOf(DeviceError);
    await expect(Tensor.zeros([2], { device: 'cuda:0' })).rejects.toThrow(/CPU backend is in use: .+/);
    expect(() => Tensor.empty([2], { device: 'gpu' })).toThrow("Expected device 'cpu', 'cpu:N', 'cuda' or 'cuda:N' for device but received 'gpu'");
  });
});
