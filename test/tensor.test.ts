import { describe, expect, it } from 'vitest';
import { ArgumentError, DisposedError, DTYPES, memoryStats, ShapeError, Tensor } from '../lib/index.js';
import { typedArrayCtor } from '../lib/dtype.js';
import { addon } from '../lib/binding.js';

/** Collects garbage from earlier tests first, so their finalizers cannot change the counters mid-test. */
async function settleGarbage(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc (see vitest.config.ts)');
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 5));
  }
}

function sample(dtype: (typeof DTYPES)[number], n: number): ArrayBufferView {
  switch (dtype) {
    case 'f32': return Float32Array.from({ length: n }, (_, i) => (i - n / 2) * 0.37 + 1e-30 * i);
    case 'f64': return Float64Array.from({ length: n }, (_, i) => Math.sin(i) * 1e300 + i);
    case 'f16': case 'bf16': return Uint16Array.from({ length: n }, (_, i) => (i * 2654435761) & 0xffff);
    case 'i32': return Int32Array.from({ length: n }, (_, i) => (i * 2654435761) | 0);
    case 'i64': return BigInt64Array.from({ length: n }, (_, i) => BigInt(i) * 0x7fffffffffffn - (1n << 62n));
    case 'u8': return Uint8Array.from({ length: n }, (_, i) => (i * 37) & 0xff);
    case 'bool': return Uint8Array.from({ length: n }, (_, i) => i % 3 === 0 ? 1 : 0);
  }
}

describe('Tensor round trips', () => {
  for (const dtype of DTYPES) {
    it(`${dtype}: from -> data / dataSync / view are bit-exact, copy and zero-copy`, async () => {
      const src = sample(dtype, 1000);
      for (const copy of [false, true]) {
        const t = Tensor.from(src as never, { dtype, shape: [10, 100], copy });
        expect(t.shape).toEqual([10, 100]);
        expect(t.dtype).toBe(dtype);
        expect(t.device).toBe('cpu');
        expect(t.zeroCopy).toBe(!copy);
        const bytes = (v: ArrayBufferView) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
        expect(bytes(await t.data()).equals(bytes(src))).toBe(true);
        expect(bytes(t.dataSync()).equals(bytes(src))).toBe(true);
        expect(bytes(t.view()).equals(bytes(src))).toBe(true);
        // A cast to the same dtype and a device hop keep every bit.
        const same = await t.cast(dtype);
        expect(bytes(await same.data()).equals(bytes(src))).toBe(true);
        t.dispose();
        same.dispose();
      }
    });
  }

  it('copies by default; { copy: false } shares memory with the TypedArray', async () => {
    const src = new Float32Array([1, 2, 3]);
    const shared = Tensor.from(src, { copy: false });
    const copied = Tensor.from(src);
    expect(shared.zeroCopy).toBe(true);
    expect(copied.zeroCopy).toBe(false);
    src[0] = 42;
    expect((await shared.data())[0]).toBe(42);
    expect((await copied.data())[0]).toBe(1);
    const v = copied.view<'f32'>();
    v[1] = -5;
    expect(copied.dataSync()[1]).toBe(-5);
  });

  it('a detached source buffer is reported, not read', () => {
    const src = new Float32Array(16);
    const t = Tensor.from(src, { copy: false });
    structuredClone(src.buffer, { transfer: [src.buffer] });
    expect(() => t.dataSync()).toThrow(DisposedError);
  });

  it('shared and resizable buffers are always copied', async () => {
    const sab = new Float32Array(new SharedArrayBuffer(16));
    sab.set([1, 2, 3, 4]);
    const a = Tensor.from(sab, { copy: false });
    sab[0] = 9;
    expect(a.zeroCopy).toBe(false);
    expect(Array.from(await a.data())).toEqual([1, 2, 3, 4]);
    const rab = new ArrayBuffer(1 << 20, { maxByteLength: 1 << 20 } as never) as ArrayBuffer & { resize(n: number): void };
    const r = Tensor.from(new Float32Array(rab), { copy: false });
    rab.resize(16);
    expect(r.zeroCopy).toBe(false);
    expect((await r.data()).length).toBe(1 << 18);
  });

  it('Tensor.empty(shape).view() fills a tensor in place, without a copy', async () => {
    const t = Tensor.empty([2, 3]);
    t.view<'f32'>().set([1, 2, 3, 4, 5, 6]);
    expect(Array.from(await t.data())).toEqual([1, 2, 3, 4, 5, 6]);
    const v = t.view<'f32'>();
    t.dispose(); // the view keeps the memory alive
    expect(Array.from(v)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('clone() copies off the JS thread onto the same device', async () => {
    const src = new Float32Array([1, 2, 3]);
    const t = Tensor.from(src, { copy: false });
    const c = await t.clone();
    src[0] = 9;
    expect(c.zeroCopy).toBe(false);
    expect(Array.from(await c.data())).toEqual([1, 2, 3]);
    expect(c.device).toBe('cpu');
  });

  it('number arrays are range-checked, not wrapped; bool data must be 0/1', () => {
    expect(() => Tensor.from([300], { dtype: 'u8' })).toThrow('Expected integer in [0, 255] for dtype u8 for data[0] but received 300');
    expect(() => Tensor.from([1e20], { dtype: 'i32' })).toThrow(ArgumentError);
    expect(() => Tensor.from([1.5], { dtype: 'i32' })).toThrow(ArgumentError);
    expect(() => Tensor.from([2], { dtype: 'bool' })).toThrow(ArgumentError);
    expect(() => Tensor.from(Uint8Array.of(0, 7), { dtype: 'bool' })).toThrow(ArgumentError);
    expect(Array.from(Tensor.from([true, 0, 1] as never, { dtype: 'bool' }).dataSync())).toEqual([1, 0, 1]);
    expect(Array.from(Tensor.from([2n ** 62n], { dtype: 'i64' }).dataSync())).toEqual([2n ** 62n]);
    expect(() => Tensor.from([1], null as never)).toThrow('Expected object for options but received null');
    expect(() => Tensor.from([1], { copy: 'yes' as never })).toThrow(ArgumentError);
  });

  it('number arrays, shapes and dtype checks', async () => {
    const t = Tensor.from([1, 2, 3, 4, 5, 6], { shape: [2, 3], dtype: 'i32' });
    expect(Array.from(await t.data())).toEqual([1, 2, 3, 4, 5, 6]);
    expect(() => Tensor.from([1, 2, 3], { shape: [2, 2] })).toThrow(ShapeError);
    expect(() => Tensor.from(new Float32Array(4), { dtype: 'f64' })).toThrow(ArgumentError);
    expect(() => Tensor.from(new Uint16Array(4))).toThrow(/f16' or 'bf16/);
    expect(() => Tensor.from('nope' as never)).toThrow(ArgumentError);
    expect(() => Tensor.empty([2, -1])).toThrow('Expected array of at most 16 non-negative integers for shape but received [2, -1]');
    const z = await Tensor.zeros([3, 5], { dtype: 'f64' });
    expect(Array.from(await z.data())).toEqual(new Array(15).fill(0));
    const e = Tensor.from(new Float32Array(0), { shape: [0, 4] });
    expect((await e.data()).length).toBe(0);
  });

  it('dispose frees native memory, is idempotent, and later use throws DisposedError', async () => {
    await settleGarbage();
    const before = memoryStats('cpu').bytesInUse;
    const t = await Tensor.zeros([1024, 1024]);
    expect(memoryStats('cpu').bytesInUse - before).toBe(4 * 1024 * 1024);
    t.dispose();
    t.dispose();
    expect(t.disposed).toBe(true);
    expect(memoryStats('cpu').bytesInUse).toBe(before);
    await expect(t.data()).rejects.toBeInstanceOf(DisposedError);
    expect(() => t.dataSync()).toThrow(DisposedError);
    expect(String(t)).toContain('disposed');
  });

  it('Symbol.dispose: a `using` declaration frees the tensor at the end of its scope', async () => {
    await settleGarbage();
    const before = memoryStats('cpu').bytesInUse;
    let escaped: Tensor | undefined;
    {
      using t = await Tensor.zeros([256, 256]);
      escaped = t;
      expect(memoryStats('cpu').bytesInUse).toBeGreaterThan(before);
    }
    expect(escaped.disposed).toBe(true);
    expect(memoryStats('cpu').bytesInUse).toBe(before);
  });

  it('native memory is reported to V8 as external memory', async () => {
    // Synchronous creation and disposal, so no finalizer of an earlier test's garbage runs between
    // the readings.
    const before = addon().externalMemory();
    const t = Tensor.empty([8, 1024, 1024]);
    const during = addon().externalMemory();
    t.dispose();
    const after = addon().externalMemory();
    expect(during - before).toBe(32 * 1024 * 1024);
    expect(after).toBe(before);
  });

  it('the finalizer frees tensors that were never disposed', async () => {
    await settleGarbage();
    const gc = (globalThis as { gc: () => void }).gc;
    const before = memoryStats('cpu').bytesInUse;
    let held: Tensor[] | undefined = [];
    for (let i = 0; i < 20; i++) held.push(await Tensor.zeros([256, 1024]));
    expect(memoryStats('cpu').bytesInUse - before).toBe(20 * 1024 * 1024);
    held = undefined;
    for (let i = 0; i < 10 && memoryStats('cpu').bytesInUse > before; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(memoryStats('cpu').bytesInUse).toBe(before);
  });

  it('typed array constructors match dtype sizes', () => {
    for (const d of DTYPES) expect(new typedArrayCtor[d](1).byteLength).toBeGreaterThan(0);
  });
});
