// The shapes classifier against PyTorch: a fixture of 64 images with the logits PyTorch computed
// from the same weights (tools/train_builtin.py), and, where PyTorch is installed, a live run on
// sizes other than the trained 32x32.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ImageBatch, type ImageClassifier, loadClassifier, loadSafetensors, openSafetensors, saveSafetensors, Tensor } from '../lib/index.js';
import { expectCode } from './helpers/expect-code.js';
import { PYTHON, pythonHas } from './helpers/python.js';

const WEIGHTS = resolve('models/shapes-classifier.safetensors');
const CARD = resolve('models/shapes-classifier.json');
const FIXTURE = resolve('test/fixtures/shapes-classifier-check.safetensors');
const hasTorch = pythonHas('torch');

const dir = mkdtempSync(join(tmpdir(), 'nd-classifier-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let classifier: ImageClassifier;
let pixels: Uint8Array; // [64, 3, 32, 32], 0..255
let labels: number[];
let reference: Float32Array; // [64, 10]

beforeAll(async () => {
  classifier = await loadClassifier();
  const f = await openSafetensors(FIXTURE);
  try {
    for (const name of ['images', 'labels', 'logits'] as const) {
      const t = await f.tensor(name);
      if (name === 'images') pixels = t.dataSync<'u8'>();
      else if (name === 'labels') labels = Array.from(t.dataSync<'u8'>());
      else reference = t.dataSync<'f32'>();
      t.dispose();
    }
  } finally {
    f.close();
  }
});

/** Largest |a - b| over the largest |b|. */
function relativeError(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let diff = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

async function expectRejectCode(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err, 'expected a rejection').toBeInstanceOf(Error);
  expect((err as { code?: string }).code).toBe(code);
  if (message) expect((err as Error).message).toMatch(message);
}


describe('shapes classifier', () => {
  it('loads the built-in weights with the card\'s class names and input range', () => {
    const card = JSON.parse(readFileSync(CARD, 'utf8')) as { classNames: string[]; inputRange: number[] };
    expect(classifier.classNames).toEqual(card.classNames);
    expect(classifier.inputRange).toEqual([-1, 1]);
    expect(classifier.inputChannels).toBe(3);
  });

  it('matches PyTorch\'s logits on the fixture and classifies it', () => {
    const input = Tensor.from(Float32Array.from(pixels, (v) => v / 127.5 - 1), { shape: [64, 3, 32, 32] });
    const start = performance.now();
    const logits = classifier.logits(input);
    const msPerImage = (performance.now() - start) / 64;
    console.log(`classifier: ${msPerImage.toFixed(2)} ms per 32x32 image (one core, first call)`);
    expect(relativeError(logits, reference)).toBeLessThan(1e-4);

    const predicted = classifier.predict(input);
    const correct = predicted.filter((p, i) => p === labels[i]).length;
    expect(correct).toBeGreaterThanOrEqual(62);
    expect(classifier.accuracy(input, labels)).toBe(correct / 64);
    // The argmax of PyTorch's logits is the same class.
    const referenceArgmax = Array.from({ length: 64 }, (_, i) => {
      const row = Array.from(reference.subarray(i * 10, i * 10 + 10));
      return row.indexOf(Math.max(...row));
    });
    expect(predicted).toEqual(referenceArgmax);
    input.dispose();
    // Loose: catches an accidentally quadratic loop, not a slow machine.
    expect(msPerImage).toBeLessThan(100);
  });

  it('maps an ImageBatch from [0, 1] to the model range', () => {
    const batch = ImageBatch.fromModelOutput(Float32Array.from(pixels, (v) => v / 255), [64, 3, 32, 32], [0, 1]);
    expect(relativeError(classifier.logits(batch), reference)).toBeLessThan(1e-4);
    expect(classifier.predict(batch.at(5))).toEqual([classifier.predict(batch)[5]]);
  });

  it('loads the same model from a path, and from a file without a card', async () => {
    const byPath = await loadClassifier(WEIGHTS);
    expect(byPath.classNames).toEqual(classifier.classNames);
    const bare = join(dir, 'bare.safetensors');
    copyFileSync(WEIGHTS, bare);
    const noCard = await loadClassifier(bare);
    expect(noCard.classNames).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    const x = Tensor.from(Float32Array.from(pixels.subarray(0, 4 * 3072), (v) => v / 127.5 - 1), { shape: [4, 3, 32, 32] });
    expect(noCard.logits(x)).toEqual(classifier.logits(x));
    x.dispose();
  });

  it.skipIf(!hasTorch)('matches PyTorch run live at other sizes divisible by 4', () => {
    const sizes: [number, number][] = [[4, 4], [12, 20], [48, 8]]; // [height, width]
    const inputs = sizes.map(([h, w], k) => Float32Array.from({ length: 2 * 3 * h * w }, (_, i) => Math.sin(i * 0.37 + k) * 0.9 + ((i * 7919) % 13) / 65));
    inputs.forEach((x, k) => writeFileSync(join(dir, `x${k}.f32`), x));
    const script = `
import json, struct, sys
import numpy as np, torch, torch.nn.functional as F
weights_path, folder, sizes = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
raw = open(weights_path, 'rb').read()
n, = struct.unpack('<Q', raw[:8])
header = json.loads(raw[8:8 + n])
def w(name):
    e = header[name]
    a, b = e['data_offsets']
    assert e['dtype'] == 'F32'
    return torch.from_numpy(np.frombuffer(raw[8 + n + a:8 + n + b], dtype='<f4').copy().reshape(e['shape'])).double()
out = []
for k, (h, wd) in enumerate(sizes):
    x = torch.from_numpy(np.fromfile(f'{folder}/x{k}.f32', dtype='<f4').reshape(2, 3, h, wd)).double()
    x = F.max_pool2d(F.relu(F.conv2d(x, w('conv1.weight'), w('conv1.bias'), padding=1)), 2)
    x = F.max_pool2d(F.relu(F.conv2d(x, w('conv2.weight'), w('conv2.bias'), padding=1)), 2)
    x = F.relu(F.conv2d(x, w('conv3.weight'), w('conv3.bias'), padding=1)).mean(dim=(2, 3))
    out.append(F.linear(x, w('fc.weight'), w('fc.bias')).flatten().tolist())
print(json.dumps(out))
`;
    const expected = JSON.parse(execFileSync(PYTHON, ['-c', script, WEIGHTS, dir, JSON.stringify(sizes)], { encoding: 'utf8' })) as number[][];
    sizes.forEach(([h, w], k) => {
      const t = Tensor.from(inputs[k], { shape: [2, 3, h, w] });
      expect(relativeError(classifier.logits(t), Float32Array.from(expected[k]))).toBeLessThan(1e-5);
      t.dispose();
    });
  });

  it('rejects bad sources, weights and inputs with coded errors', async () => {
    await expectRejectCode(loadClassifier('builtin:nope'), 'ERR_ND_ARG', /valid: 'builtin:shapes-classifier'/);
    const missing = join(dir, 'missing.safetensors');
    await expectRejectCode(loadClassifier(missing), 'ERR_ND_IO', new RegExp(missing.replaceAll('.', '\\.')));
    await expectRejectCode(loadClassifier(42 as never), 'ERR_ND_ARG');

    const weights = await loadSafetensors(WEIGHTS);
    const withoutFcBias = join(dir, 'no-fc-bias.safetensors');
    await saveSafetensors(withoutFcBias, Object.fromEntries(Object.entries(weights).filter(([k]) => k !== 'fc.bias')));
    await expectRejectCode(loadClassifier(withoutFcBias), 'ERR_ND_MODEL', /fc\.bias/);
    const wrongShape = join(dir, 'wrong-shape.safetensors');
    await saveSafetensors(wrongShape, { ...weights, 'conv2.bias': Tensor.from(new Float32Array(5)) });
    await expectRejectCode(loadClassifier(wrongShape), 'ERR_ND_MODEL', /conv2\.bias/);
    const badCard = join(dir, 'bad-card.safetensors');
    copyFileSync(WEIGHTS, badCard);
    writeFileSync(join(dir, 'bad-card.json'), JSON.stringify({ classNames: ['a', 'b'] }));
    await expectRejectCode(loadClassifier(badCard), 'ERR_ND_MODEL', /classNames/);
    for (const t of Object.values(weights)) t.dispose();

    const notMultipleOf4 = Tensor.from(new Float32Array(3 * 6 * 8), { shape: [1, 3, 6, 8] });
    expectCode(() => classifier.logits(notMultipleOf4), 'ERR_ND_SHAPE');
    const oneChannel = Tensor.from(new Float32Array(16), { shape: [1, 1, 4, 4] });
    expectCode(() => classifier.logits(oneChannel), 'ERR_ND_SHAPE');
    const f64 = Tensor.from(new Float64Array(48), { shape: [1, 3, 4, 4] });
    expectCode(() => classifier.logits(f64), 'ERR_ND_ARG');
    expectCode(() => classifier.logits(new Float32Array(48) as never), 'ERR_ND_ARG');
    const ok = ImageBatch.fromModelOutput(new Float32Array(2 * 48), [2, 3, 4, 4]);
    expectCode(() => classifier.accuracy(ok, [0]), 'ERR_ND_SHAPE');
    expectCode(() => classifier.accuracy(ok, [0, 10]), 'ERR_ND_ARG');
    expectCode(() => classifier.accuracy(ok, [0, 1.5]), 'ERR_ND_ARG');
    for (const t of [notMultipleOf4, oneChannel, f64]) t.dispose();
  });
});
