import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DTYPES, FileFormatError, IOError, loadSafetensors, openSafetensors, saveSafetensors, Tensor } from '../lib/index.js';

const dir = mkdtempSync(join(tmpdir(), 'nd-st-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A file image from a header object (or raw header text) and a data buffer. */
function image(header: unknown, data: Buffer = Buffer.alloc(0), lengthOverride?: bigint): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthOverride ?? BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

const t = (dtype: string, shape: unknown, offsets: unknown) => ({ dtype, shape, data_offsets: offsets });

describe('safetensors', () => {
  it('round-trips every dtype, metadata, scalars and empty tensors', async () => {
    const tensors: Record<string, Tensor> = {};
    const raw: Record<string, Buffer> = {};
    DTYPES.forEach((dtype, k) => {
      const n = 6 + k;
      const bytes = Buffer.alloc(n * { f32: 4, f16: 2, bf16: 2, f64: 8, i32: 4, i64: 8, u8: 1, bool: 1 }[dtype]);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 29 + k) & 0xff;
      if (dtype === 'bool') for (let i = 0; i < bytes.length; i++) bytes[i] &= 1;
      if (dtype === 'f16' || dtype === 'bf16') for (let i = 1; i < bytes.length; i += 2) bytes[i] &= 0x3f; // finite
      const Ctor = { f32: Float32Array, f16: Uint16Array, bf16: Uint16Array, f64: Float64Array, i32: Int32Array, i64: BigInt64Array, u8: Uint8Array, bool: Uint8Array }[dtype];
      const arr = new Ctor(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
      tensors[`w.${dtype}`] = Tensor.from(arr as never, { dtype, shape: [n] });
      raw[`w.${dtype}`] = bytes;
    });
    tensors.scalar = Tensor.from([3.5], { shape: [] });
    tensors.empty = Tensor.from(new Float32Array(0), { shape: [0, 3] });
    const path = join(dir, 'all.safetensors');
    await saveSafetensors(path, tensors, { metadata: { format: 'pt', note: 'ünïcödé "quoted"' } });
    const f = await openSafetensors(path);
    expect(f.metadata).toEqual({ format: 'pt', note: 'ünïcödé "quoted"' });
    expect(f.keys().sort()).toEqual(Object.keys(tensors).sort());
    for (const [name, bytes] of Object.entries(raw)) {
      const back = await f.tensor(name);
      const got = await back.data();
      expect(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(bytes)).toBe(true);
    }
    const s = await f.tensor('scalar');
    expect(s.shape).toEqual([]);
    expect(Array.from(await s.data())).toEqual([3.5]);
    expect((await f.tensor('empty')).shape).toEqual([0, 3]);
    // Conversion on load: f16 stored, f32 read equals the cast of the stored values.
    const asF32 = await f.tensor('w.f16', { dtype: 'f32' });
    const viaCast = await (await f.tensor('w.f16')).cast('f32');
    expect(Array.from(await asF32.data())).toEqual(Array.from(await viaCast.data()));
    f.close();
    await expect(f.tensor('scalar')).rejects.toThrow(/closed/);
    const all = await loadSafetensors(path, { dtype: 'f64' });
    expect(all['w.i32'].dtype).toBe('f64');
  });

  it('zeroCopy reads share the read-only file mapping; clone() gives a writable copy', async () => {
    const path = join(dir, 'mapped.safetensors');
    await saveSafetensors(path, { a: Tensor.from(new Float32Array([1, 2, 3, 4])), b: Tensor.from(new Float64Array([5, 6])) });
    const f = await openSafetensors(path);
    const a = await f.tensor('a', { zeroCopy: true });
    const copied = await f.tensor('a');
    f.close(); // the tensor keeps the mapping alive
    expect(a.zeroCopy).toBe(true);
    expect(copied.zeroCopy).toBe(false);
    expect(Array.from(await a.data())).toEqual([1, 2, 3, 4]);
    expect(() => a.view()).toThrow(/read-only file mapping/);
    const w = await a.clone();
    w.view<'f32'>()[0] = 100;
    expect(Array.from(await w.data())).toEqual([100, 2, 3, 4]);
    expect(Array.from(await (await a.cast('f64')).data())).toEqual([1, 2, 3, 4]);
    const again = await loadSafetensors(path, { zeroCopy: true });
    expect(Array.from(await again.a.data())).toEqual([1, 2, 3, 4]);
    expect(Array.from(await again.b.data())).toEqual([5, 6]);
    // Conversions and other devices always copy.
    const conv = await (await openSafetensors(path)).tensor('a', { dtype: 'f64', zeroCopy: true });
    expect(conv.zeroCopy).toBe(false);
    expect(Array.from(await conv.data())).toEqual([1, 2, 3, 4]);
  });

  it('validates write arguments', async () => {
    const path = join(dir, 'args.safetensors');
    await expect(saveSafetensors(path, null as never)).rejects.toThrow('Expected object or Map of name -> Tensor for tensors but received null');
    await expect(saveSafetensors(path, {}, { metadata: 'abc' as never })).rejects.toThrow("Expected object for metadata but received 'abc'");
    await expect(saveSafetensors(path, { a: [1] as never })).rejects.toThrow("Expected Tensor for tensors['a']");
    await saveSafetensors(path, new Map([['m', Tensor.from([7])]]));
    await expect(openSafetensors(path).then((f) => f.tensor('m', { zeroCopy: 1 as never }))).rejects.toThrow('Expected boolean for zeroCopy but received 1');
    expect(Array.from(await (await loadSafetensors(path)).m.data())).toEqual([7]);
  });

  it('reads the format as other writers produce it (hand-made header, padding, F8 dtype)', async () => {
    const data = Buffer.alloc(16 + 2);
    data.writeFloatLE(1.5, 0); data.writeFloatLE(-2, 4); data.writeFloatLE(0.25, 8); data.writeFloatLE(8, 12);
    data[16] = 0x38; // F8_E4M3: sign 0, exponent 7 (bias 7), mantissa 0 -> 1.0
    data[17] = 0xc0; // -2.0
    let header = JSON.stringify({ __metadata__: { a: 'b' }, w: t('F32', [2, 2], [0, 16]), f8: t('F8_E4M3', [2], [16, 18]) });
    header += ' '.repeat((8 - ((8 + header.length) % 8)) % 8);
    const path = join(dir, 'hand.safetensors');
    writeFileSync(path, image(header, data));
    const f = await openSafetensors(path);
    expect(f.tensors.get('f8')?.storedDType).toBe('F8_E4M3');
    expect(Array.from(await (await f.tensor('w')).data())).toEqual([1.5, -2, 0.25, 8]);
    expect(Array.from(await (await f.tensor('f8', { dtype: 'f32' })).data())).toEqual([1, -2]);
    await expect(f.tensor('f8')).rejects.toThrow(/pass a dtype/);
  });

  const f32x4 = Buffer.alloc(16);
  const malformed: [string, Buffer, RegExp][] = [
    ['empty file', Buffer.alloc(0), /too small|truncated|8 bytes|shorter/i],
    ['truncated length prefix', Buffer.from([1, 2, 3]), /too small|truncated|8 bytes|shorter/i],
    ['header length zero', image('', Buffer.alloc(0), 0n), /header/i],
    ['header length beyond the file', image('{}', Buffer.alloc(0), 1000n), /header|exceeds|beyond|larger/i],
    ['header length over 100 MB', image('{}', Buffer.alloc(0), 200_000_000n), /header|limit|large/i],
    ['truncated header JSON', image('{"w": {"dtype": "F32"'), /json|unexpected|end/i],
    ['trailing comma', image('{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},}', Buffer.alloc(4)), /json|unexpected|comma|expected/i],
    ['invalid escape', image('{"w\\q": {}}'), /escape/i],
    ['invalid UTF-8', Buffer.concat([image('{"\xff": 1}').subarray(0, 8), Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])]), /utf-?8/i],
    ['nesting too deep', image('{"a":' + '['.repeat(200) + ']'.repeat(200) + '}'), /deep|depth|nest/i],
    ['header not an object', image('[1, 2]'), /object/i],
    ['unknown dtype', image({ w: t('F33', [4], [0, 16]) }, f32x4), /dtype/i],
    ['missing dtype', image({ w: { shape: [4], data_offsets: [0, 16] } }, f32x4), /dtype/i],
    ['missing shape', image({ w: { dtype: 'F32', data_offsets: [0, 16] } }, f32x4), /shape/i],
    ['missing data_offsets', image({ w: { dtype: 'F32', shape: [4] } }, f32x4), /data_offsets/i],
    ['extra field', image({ w: { ...t('F32', [4], [0, 16]), extra: 1 } }, f32x4), /extra|unknown|unexpected/i],
    ['negative dimension', image({ w: t('F32', [-4], [0, 16]) }, f32x4), /shape|negative|integer/i],
    ['non-integer dimension', image({ w: t('F32', [1.5], [0, 16]) }, f32x4), /shape|integer/i],
    ['shape product overflow', image({ w: t('F32', [2 ** 40, 2 ** 40, 2 ** 40], [0, 16]) }, f32x4), /overflow|too large/i],
    ['begin after end', image({ w: t('F32', [0], [16, 0]) }, f32x4), /begin|offset/i],
    ['byte count mismatch', image({ w: t('F32', [2, 2], [0, 12]) }, Buffer.alloc(12)), /bytes|needs|size|mismatch/i],
    ['offsets out of range', image({ w: t('F32', [4], [0, 16]) }, Buffer.alloc(8)), /range|beyond|exceed|bounds|buffer/i],
    ['overlapping tensors', image({ a: t('F32', [4], [0, 16]), b: t('F32', [2], [8, 16]) }, f32x4), /overlap/i],
    ['gap between tensors', image({ a: t('F32', [1], [0, 4]), b: t('F32', [2], [8, 16]) }, f32x4), /gap|contiguous|cover/i],
    ['trailing unused bytes', image({ a: t('F32', [2], [0, 8]) }, f32x4), /cover|trailing|unused|gap/i],
    ['duplicate tensor name', image('{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}', Buffer.alloc(4)), /duplicate/i],
    ['metadata value not a string', image({ __metadata__: { a: 1 } }), /metadata/i],
    ['data_offsets not integers', image({ w: t('F32', [4], ['0', 16]) }, f32x4), /data_offsets|integer/i],
  ];

  it(`rejects ${malformed.length} malformed files with FileFormatError naming the problem`, async () => {
    expect(malformed.length).toBeGreaterThanOrEqual(20);
    for (const [what, bytes, pattern] of malformed) {
      const path = join(dir, `bad-${what.replace(/\W+/g, '-')}.safetensors`);
      writeFileSync(path, bytes);
      const err = await openSafetensors(path).then(() => undefined, (e: unknown) => e);
      expect(err, what).toBeInstanceOf(FileFormatError);
      expect((err as FileFormatError).code).toBe('ERR_ND_FILE_FORMAT');
      expect((err as Error).message, what).toMatch(pattern);
    }
    // The process is alive and still works.
    expect(Array.from(await Tensor.from([1, 2]).data())).toEqual([1, 2]);
  });

  it('a missing file is an IOError naming the path; a missing tensor names the tensor', async () => {
    const missing = join(dir, 'nope.safetensors');
    await expect(openSafetensors(missing)).rejects.toBeInstanceOf(IOError);
    await expect(openSafetensors(missing)).rejects.toThrow(missing);
    const path = join(dir, 'one.safetensors');
    await saveSafetensors(path, { a: Tensor.from([1]) });
    const f = await openSafetensors(path);
    await expect(f.tensor('b')).rejects.toThrow("Expected one of the file's 1 tensor names for name but received 'b'");
  });
});
