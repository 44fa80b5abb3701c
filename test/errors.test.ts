import { describe, expect, it } from 'vitest';
import { addon } from '../lib/binding.js';
import { ArgumentError, DiffusionError, DisposedError, DTypeError, FileFormatError, openSafetensors, randn, saveSafetensors, ShapeError, Tensor } from '../lib/index.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromNative } from '../lib/errors.js';
import { invalidParameter } from '../lib/validate.js';

describe('errors', () => {
  it('one message format for argument validation', () => {
    expect(invalidParameter('steps', 'positive integer', -1).message).toBe('Expected positive integer for steps but received -1');
    expect(invalidParameter('sampler', 'string', undefined).message).toBe('Expected string for sampler but received undefined');
  });

  it('native failures arrive as DiffusionError subclasses with codes, even when TS checks are bypassed', async () => {
    const a = addon();
    const native = (fn: () => unknown) => { try { fn(); } catch (e) { return fromNative(e); } return undefined; };
    expect(native(() => a.empty([1, 2], 'f99', 'cpu'))).toBeInstanceOf(DTypeError);
    expect(native(() => a.empty([-1] as never, 'f32', 'cpu'))).toBeInstanceOf(ArgumentError);
    expect(native(() => a.fromArray(new Float32Array(3), [2, 2], 'f32', true))).toBeInstanceOf(ShapeError);
    expect(native(() => a.empty('x' as never, 'f32', 'cpu'))).toBeInstanceOf(ArgumentError);
    expect(native(() => a.empty([1], 'f32', 'tpu:0'))).toMatchObject({ code: 'ERR_ND_DEVICE' });
    expect(native(() => (a.readSync as (...x: unknown[]) => void)({}, new Float32Array(1)))).toBeInstanceOf(ArgumentError);
    expect(native(() => (a.randn as (...x: unknown[]) => unknown)([2], 'f32', 'cpu', new Float64Array(2), 0n, false))).toBeInstanceOf(ArgumentError);
    const t = Tensor.from([1, 2]);
    const h = t.handle();
    t.dispose();
    expect(native(() => a.readSync(h, new Float32Array(2)))).toBeInstanceOf(DisposedError);
  });

  it('foreign objects dressed up as tensors are rejected, not reinterpreted', async () => {
    const a = addon();
    const t = Tensor.from([1, 2]);
    const proto = Object.getPrototypeOf(t.handle());
    const dir = mkdtempSync(join(tmpdir(), 'nd-err-'));
    const path = join(dir, 'x.safetensors');
    await saveSafetensors(path, { t });
    const file = await openSafetensors(path);
    const sh = (file as unknown as { _handle: object })._handle;
    Object.setPrototypeOf(sh, proto);
    const native = (fn: () => unknown) => { try { fn(); } catch (e) { return fromNative(e); } return undefined; };
    expect(native(() => a.view(sh as never))).toBeInstanceOf(ArgumentError);
    expect(native(() => a.readSync(Object.create(proto), new Float32Array(2)))).toBeInstanceOf(ArgumentError);
    expect('TensorHandle' in a).toBe(false); // no way to make an empty handle from JS
    rmSync(dir, { recursive: true, force: true });
  });

  it('async native errors carry the JavaScript call-site stack', async () => {
    const err = await openSafetensors('/definitely/not/here.safetensors').catch((e: unknown) => e) as DiffusionError;
    expect(err).toBeInstanceOf(DiffusionError);
    expect(err.code).toBe('ERR_ND_IO');
    expect(err.stack).toContain('errors.test.ts');
    const err2 = await randn([2], { seed: [1] }).catch((e: unknown) => e) as Error;
    expect(err2.stack).toContain('errors.test.ts');
  });

  it('subclasses are distinguishable by class and code', () => {
    const e = new FileFormatError('x');
    expect(e).toBeInstanceOf(DiffusionError);
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('FileFormatError');
    expect(e.code).toBe('ERR_ND_FILE_FORMAT');
  });
});
