// ImageBatch and the PNG encoder. The PNG files are decoded by Pillow (an independent decoder that
// checks every chunk CRC) and their chunks re-checked with Python's zlib.crc32; the CRC is also
// recomputed here bit by bit (no table), so a wrong table cannot hide behind a matching one.
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { encodePNG, ImageBatch, Tensor } from '../lib/index.js';
import { expectCode } from './helpers/expect-code.js';
import { PYTHON, pythonHas } from './helpers/python.js';

const hasPillow = pythonHas('PIL.Image');

const dir = mkdtempSync(join(tmpdir(), 'nd-image-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Deterministic uniform [0, 1) numbers (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Decoded { size: [number, number]; mode: string; chunks: string[]; crcOk: boolean; filters: number[]; raw: Buffer }

/**
 * Pillow decodes each file (after verify(), which checks the CRCs); Python's zlib re-checks every
 * chunk CRC and reads the filter type of each scanline.
 */
const decoderScript = `
import json, struct, sys, zlib
from PIL import Image
out = []
for p in json.loads(sys.argv[1]):
    b = open(p, 'rb').read()
    assert b[:8] == b'\\x89PNG\\r\\n\\x1a\\n', 'signature'
    pos, chunks, crc_ok, idat = 8, [], True, b''
    while pos < len(b):
        n, = struct.unpack('>I', b[pos:pos + 4])
        typ, data = b[pos + 4:pos + 8], b[pos + 8:pos + 8 + n]
        crc, = struct.unpack('>I', b[pos + 8 + n:pos + 12 + n])
        crc_ok = crc_ok and zlib.crc32(typ + data) == crc
        chunks.append(typ.decode('latin1'))
        if typ == b'IDAT':
            idat += data
        pos += 12 + n
    with Image.open(p) as im:
        im.verify()
    with Image.open(p) as im:
        im.load()
        w, h = im.size
        mode = im.mode
        open(p + '.raw', 'wb').write(im.tobytes())
    stride = w * {'RGB': 3, 'RGBA': 4}[mode] + 1
    raw = zlib.decompress(idat)
    assert len(raw) == h * stride, 'scanline bytes'
    out.append({'size': [w, h], 'mode': mode, 'chunks': chunks, 'crcOk': crc_ok,
                'filters': sorted(set(raw[k * stride] for k in range(h)))})
print(json.dumps(out))
`;

let fileCounter = 0;
function decodeWithPillow(pngs: Buffer[]): Decoded[] {
  const paths = pngs.map((png) => {
    const path = join(dir, `img${fileCounter++}.png`);
    writeFileSync(path, png);
    return path;
  });
  const results = JSON.parse(execFileSync(PYTHON, ['-c', decoderScript, JSON.stringify(paths)], { encoding: 'utf8' })) as Omit<Decoded, 'raw'>[];
  return results.map((r, i) => ({ ...r, raw: readFileSync(`${paths[i]}.raw`) }));
}

/** CRC-32 (ISO-HDLC) one bit at a time, straight from the polynomial. */
function bitwiseCrc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (crc & 1 ? 0xedb88320 : 0);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function parseChunks(png: Buffer): { type: string; data: Buffer; crc: number; crcInput: Buffer }[] {
  const out = [];
  for (let pos = 8; pos < png.length;) {
    const length = png.readUInt32BE(pos);
    out.push({
      type: png.toString('latin1', pos + 4, pos + 8),
      data: png.subarray(pos + 8, pos + 8 + length),
      crc: png.readUInt32BE(pos + 8 + length),
      crcInput: png.subarray(pos + 4, pos + 8 + length),
    });
    pos += 12 + length;
  }
  return out;
}

/** Model-range output [-1, 1] for `n` random or flat images. */
function modelOutput(n: number, h: number, w: number, kind: 'random' | 'flat', seed = 1): Float32Array {
  const r = rng(seed);
  const data = new Float32Array(n * 3 * h * w);
  if (kind === 'random') for (let i = 0; i < data.length; i++) data[i] = r() * 2.2 - 1.1; // some values clamp
  else for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) data.fill(r() * 2 - 1, (i * 3 + c) * h * w, (i * 3 + c + 1) * h * w);
  return data;
}

function pixel(batch: ImageBatch, x: number, y: number, index = 0): number[] {
  const rgb = batch.rgb8(index);
  const o = (y * batch.width + x) * 3;
  return [rgb[o], rgb[o + 1], rgb[o + 2]];
}


const SIZES: [number, number][] = [[1, 1], [3, 7], [7, 3], [32, 32], [61, 17]]; // [width, height]

describe.skipIf(!hasPillow)('PNG files decoded by Pillow', () => {
  it('equal rgb8() byte for byte at odd sizes, random and flat content, with valid CRCs', () => {
    const batches: ImageBatch[] = [];
    for (const [w, h] of SIZES) {
      for (const kind of ['random', 'flat'] as const) batches.push(ImageBatch.fromModelOutput(modelOutput(2, h, w, kind, w * 100 + h), [2, 3, h, w]));
    }
    const pngs = batches.flatMap((b) => b.toPNGs());
    const decoded = decodeWithPillow(pngs);
    let k = 0;
    for (const b of batches) {
      for (let i = 0; i < b.count; i++, k++) {
        const d = decoded[k];
        expect(d.size).toEqual([b.width, b.height]);
        expect(d.mode).toBe('RGB');
        expect(d.crcOk).toBe(true);
        expect(d.chunks[0]).toBe('IHDR');
        expect(d.chunks.at(-1)).toBe('IEND');
        expect(Buffer.from(b.rgb8(i)).equals(d.raw)).toBe(true);
      }
    }
  });

  it('decodes rows encoded with each of the five filters, RGB and RGBA', () => {
    // Row bands built so that each filter type is the cheapest for some rows.
    const w = 40, bands = 12;
    for (const channels of [3, 4] as const) {
      const r = rng(channels);
      const stride = w * channels;
      const px = new Uint8Array(bands * stride);
      const row = (y: number) => px.subarray(y * stride, (y + 1) * stride);
      const random = (y: number) => row(y).forEach((_, i, a) => { a[i] = Math.floor(r() * 256); });
      // 0: zeros (None wins ties). 1: noise. 2: horizontal ramp (Sub). 3: a copy of 2 (Up).
      random(1);
      row(2).forEach((_, i, a) => { a[i] = (Math.floor(i / channels) * 7 + (i % channels) * 50) & 0xff; });
      row(3).set(row(2));
      // 4: noise. 5: every byte the floor-mean of its left and upper neighbours (Average).
      random(4);
      for (let i = 0; i < stride; i++) row(5)[i] = ((i >= channels ? row(5)[i - channels] : 0) + row(4)[i]) >> 1;
      // 6..11: left half constant along rows, right half constant down columns (Paeth).
      const columnValues = Array.from({ length: stride }, () => Math.floor(r() * 256));
      for (let y = 6; y < bands; y++) {
        const rowValues = Array.from({ length: channels }, () => Math.floor(r() * 256));
        for (let i = 0; i < stride; i++) row(y)[i] = i < stride / 2 ? rowValues[i % channels] : columnValues[i];
      }
      const png = encodePNG(px, w, bands, channels);
      const [d] = decodeWithPillow([png]);
      expect(d.mode).toBe(channels === 3 ? 'RGB' : 'RGBA');
      expect(d.crcOk).toBe(true);
      expect(d.filters).toEqual([0, 1, 2, 3, 4]);
      expect(Buffer.from(px).equals(d.raw)).toBe(true);
    }
  });

  it('decodes a scaled grid to its rgb8()', () => {
    const batch = ImageBatch.fromModelOutput(modelOutput(5, 9, 11, 'random', 3), [5, 3, 9, 11]);
    const grid = batch.grid({ scale: 3, padding: 1, background: [12, 34, 56] });
    const [d] = decodeWithPillow([grid.toPNG()]);
    expect(d.size).toEqual([grid.width, grid.height]);
    expect(Buffer.from(grid.rgb8()).equals(d.raw)).toBe(true);
  });
});

describe('PNG structure', () => {
  it('has the signature, an IHDR with the image fields, and correct CRCs on every chunk', () => {
    for (const [w, h] of SIZES) {
      const batch = ImageBatch.fromModelOutput(modelOutput(1, h, w, 'random', w + h), [1, 3, h, w]);
      const png = batch.toPNG();
      expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      const chunks = parseChunks(png);
      expect(chunks.map((c) => c.type)).toEqual(['IHDR', 'IDAT', 'IEND']);
      const ihdr = chunks[0].data;
      expect(ihdr.length).toBe(13);
      expect(ihdr.readUInt32BE(0)).toBe(w);
      expect(ihdr.readUInt32BE(4)).toBe(h);
      expect([...ihdr.subarray(8)]).toEqual([8, 2, 0, 0, 0]); // depth 8, truecolour, deflate, adaptive filters, no interlace
      expect(chunks[2].data.length).toBe(0);
      for (const c of chunks) expect(c.crc).toBe(bitwiseCrc32(c.crcInput));
      // A zlib stream of one filter byte plus 3 * w bytes per row.
      const scanlines = inflateSync(chunks[1].data);
      expect(scanlines.length).toBe(h * (1 + 3 * w));
    }
    const rgba = parseChunks(encodePNG(new Uint8Array(2 * 2 * 4), 2, 2, 4));
    expect(rgba[0].data[9]).toBe(6);
  });

  it('computes the CRC of IEND as the specification prints it', () => {
    const png = encodePNG(new Uint8Array(3), 1, 1);
    expect(png.subarray(-12).toString('hex')).toBe('0000000049454e44ae426082');
  });
});

describe('ImageBatch', () => {
  it('maps the model range to [0, 1], clamps, and rounds to 8 bits with halves up', () => {
    const values = [-1, 0, 1, 2, -3, Number.NaN, 0.5, -0.5, Number.POSITIVE_INFINITY, 1 / 3];
    const b = ImageBatch.fromModelOutput(Float32Array.from([...values, ...values, ...values]), [1, 3, 1, 10]);
    expect(b.count).toBe(1);
    expect([b.width, b.height]).toEqual([10, 1]);
    expect([...b.data.subarray(0, 10)]).toEqual([0, 0.5, 1, 1, 0, 0, 0.75, 0.25, 1, Math.fround((Math.fround(1 / 3) + 1) / 2)]);
    // 0.5 * 255 = 127.5 -> 128; 0.75 * 255 = 191.25 -> 191; 0.25 * 255 = 63.75 -> 64; 2/3 * 255 = 170.0000x -> 170
    const red = [...b.rgb8()].filter((_, i) => i % 3 === 0);
    expect(red).toEqual([0, 128, 255, 255, 0, 0, 191, 64, 255, 170]);
    // Other ranges: [0, 255] (127.5 is the midpoint) and [0, 1] (the identity).
    const u8range = ImageBatch.fromModelOutput(new Float32Array([0, 127.5, 255]), [1, 1, 1, 3], [0, 255]);
    expect([...u8range.data.subarray(0, 3)]).toEqual([0, 0.5, 1]);
    const identity = ImageBatch.fromModelOutput(new Float32Array([0.25, 1.5, -0.1]), [1, 1, 1, 3], [0, 1]);
    expect([...identity.data.subarray(0, 3)]).toEqual([0.25, 1, 0]);
  });

  it('replicates one channel to gray RGB and keeps channel planes in NCHW order', () => {
    const gray = ImageBatch.fromModelOutput(new Float32Array([-1, 1, 0, 1]), [2, 1, 1, 2]);
    expect(gray.count).toBe(2);
    expect([...gray.rgb8(0)]).toEqual([0, 0, 0, 255, 255, 255]);
    expect([...gray.rgb8(1)]).toEqual([128, 128, 128, 255, 255, 255]);
    // [1, 3, 1, 2]: plane R = [1, -1], G = [-1, 1], B = [1, 1] -> pixels (255, 0, 255), (0, 255, 255)
    const rgb = ImageBatch.fromModelOutput(new Float32Array([1, -1, -1, 1, 1, 1]), [1, 3, 1, 2]);
    expect([...rgb.rgb8()]).toEqual([255, 0, 255, 0, 255, 255]);
  });

  it('tiles a grid with padding and background around images in row-major cells', () => {
    // Three 3x2 images: red, green, blue. Default columns ceil(sqrt(3)) = 2, padding 2, white.
    const colours = [[1, -1, -1], [-1, 1, -1], [-1, -1, 1]];
    const w = 3, h = 2;
    const data = new Float32Array(3 * 3 * h * w);
    colours.forEach((rgb, i) => rgb.forEach((v, c) => data.fill(v, (i * 3 + c) * h * w, (i * 3 + c + 1) * h * w)));
    const g = ImageBatch.fromModelOutput(data, [3, 3, h, w]).grid();
    expect([g.count, g.width, g.height]).toEqual([1, 2 * (3 + 2) + 2, 2 * (2 + 2) + 2]);
    const RED = [255, 0, 0], GREEN = [0, 255, 0], BLUE = [0, 0, 255], WHITE = [255, 255, 255];
    expect(pixel(g, 0, 0)).toEqual(WHITE);
    expect(pixel(g, 1, 2)).toEqual(WHITE); // left border
    expect(pixel(g, 2, 2)).toEqual(RED); // image 0 spans x 2..4, y 2..3
    expect(pixel(g, 4, 3)).toEqual(RED);
    expect(pixel(g, 2, 4)).toEqual(WHITE); // gap below image 0
    expect(pixel(g, 5, 2)).toEqual(WHITE); // gap between image 0 and 1
    expect(pixel(g, 6, 3)).toEqual(WHITE);
    expect(pixel(g, 7, 2)).toEqual(GREEN); // image 1 spans x 7..9
    expect(pixel(g, 9, 3)).toEqual(GREEN);
    expect(pixel(g, 10, 2)).toEqual(WHITE); // right border
    expect(pixel(g, 2, 6)).toEqual(BLUE); // image 2 at row 1: y 6..7
    expect(pixel(g, 4, 7)).toEqual(BLUE);
    expect(pixel(g, 7, 6)).toEqual(WHITE); // the empty fourth cell is background
    expect(pixel(g, 11, 9)).toEqual(WHITE);
    const counts = new Map<string, number>();
    for (let y = 0; y < g.height; y++) for (let x = 0; x < g.width; x++) {
      const key = pixel(g, x, y).join(',');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect(Object.fromEntries(counts)).toEqual({ '255,0,0': 6, '0,255,0': 6, '0,0,255': 6, '255,255,255': 12 * 10 - 18 });

    // One column, no padding, a background colour: a vertical strip.
    const strip = ImageBatch.fromModelOutput(data, [3, 3, h, w]).grid({ columns: 1, padding: 0 });
    expect([strip.width, strip.height]).toEqual([3, 6]);
    expect([pixel(strip, 0, 0), pixel(strip, 2, 2), pixel(strip, 1, 5)]).toEqual([RED, GREEN, BLUE]);
    // More columns than images: one row, no empty cells.
    const row = ImageBatch.fromModelOutput(data, [3, 3, h, w]).grid({ columns: 8, padding: 1, background: [10, 20, 30] });
    expect([row.width, row.height]).toEqual([3 * 4 + 1, 4]);
    expect(pixel(row, 0, 0)).toEqual([10, 20, 30]);
    expect(pixel(row, 12, 3)).toEqual([10, 20, 30]);
    expect(pixel(row, 9, 1)).toEqual(BLUE);
  });

  it('upscales each image by nearest neighbour with scale', () => {
    // Two 2x3 images whose pixels are all distinct; grid with scale 2 and padding 1.
    const h = 2, w = 3;
    const data = Float32Array.from({ length: 2 * 3 * h * w }, (_, i) => (i / 35) * 2 - 1);
    const batch = ImageBatch.fromModelOutput(data, [2, 3, h, w]);
    const g = batch.grid({ scale: 2, padding: 1, columns: 2 });
    expect([g.width, g.height]).toEqual([2 * (6 + 1) + 1, 4 + 2]);
    for (let k = 0; k < 2; k++) {
      const x0 = 1 + k * 7;
      for (let y = 0; y < 2 * h; y++) {
        for (let x = 0; x < 2 * w; x++) expect(pixel(g, x0 + x, 1 + y)).toEqual(pixel(batch, x >> 1, y >> 1, k));
      }
      expect(pixel(g, x0 - 1, 1)).toEqual([255, 255, 255]);
    }
    expect(pixel(batch, 0, 0, 0)).not.toEqual(pixel(batch, 1, 0, 0));
  });

  it('converts to a tensor, indexes and iterates single images', () => {
    const data = modelOutput(3, 4, 5, 'random', 9);
    const batch = ImageBatch.fromModelOutput(data, [3, 3, 4, 5]);
    const t = batch.toTensor();
    expect(t.shape).toEqual([3, 3, 4, 5]);
    expect(t.dtype).toBe('f32');
    expect(Array.from(t.dataSync<'f32'>())).toEqual(Array.from(batch.data));
    expect(ImageBatch.fromTensor(t, [0, 1]).data).toEqual(batch.data);
    t.dispose();
    const modelTensor = Tensor.from(data, { shape: [3, 3, 4, 5] });
    expect(ImageBatch.fromTensor(modelTensor).data).toEqual(batch.data);
    modelTensor.dispose();

    const singles = [...batch];
    expect(singles.length).toBe(3);
    singles.forEach((one, i) => {
      expect([one.count, one.width, one.height]).toEqual([1, 5, 4]);
      expect(one.rgb8()).toEqual(batch.rgb8(i));
      expect(one.toPNG().equals(batch.toPNG(i))).toBe(true);
    });
    const copy = batch.at(1);
    copy.data.fill(0);
    expect(batch.rgb8(1)).toEqual(singles[1].rgb8()); // at() copies
    expect(batch.toPNGs().length).toBe(3);
  });

  it('rejects bad arguments with coded errors', () => {
    const batch = ImageBatch.fromModelOutput(new Float32Array(2 * 3 * 4), [2, 3, 2, 2]);
    expectCode(() => batch.rgb8(2), 'ERR_ND_ARG');
    expectCode(() => batch.toPNG(-1), 'ERR_ND_ARG');
    expectCode(() => batch.at(0.5), 'ERR_ND_ARG');
    expectCode(() => batch.grid({ columns: 1.5 }), 'ERR_ND_ARG');
    expectCode(() => batch.grid({ columns: 0 }), 'ERR_ND_ARG');
    expectCode(() => batch.grid({ scale: 0 }), 'ERR_ND_ARG');
    expectCode(() => batch.grid({ padding: -1 }), 'ERR_ND_ARG');
    expectCode(() => batch.grid({ background: [256, 0, 0] }), 'ERR_ND_ARG');
    expectCode(() => batch.grid({ background: [0.5, 0, 0] }), 'ERR_ND_ARG');
    expectCode(() => batch.grid({ scale: 100_000 }), 'ERR_ND_ARG');
    expect(() => batch.grid({ columns: 1.5 })).toThrow('Expected positive integer for columns but received 1.5');
    expectCode(() => ImageBatch.fromModelOutput(new Float32Array(8), [1, 2, 2, 2]), 'ERR_ND_ARG');
    expectCode(() => ImageBatch.fromModelOutput(new Float32Array(8), [1, 3, 2, 2]), 'ERR_ND_SHAPE');
    expectCode(() => ImageBatch.fromModelOutput(new Float32Array(4), [1, 1, 2] as never), 'ERR_ND_ARG');
    expectCode(() => ImageBatch.fromModelOutput(new Float64Array(4) as never, [1, 1, 2, 2]), 'ERR_ND_ARG');
    expectCode(() => ImageBatch.fromModelOutput(new Float32Array(4), [1, 1, 2, 2], [1, 1]), 'ERR_ND_ARG');
    expectCode(() => ImageBatch.fromModelOutput(new Float32Array(4), [1, 1, 2, 2], [0, Number.NaN]), 'ERR_ND_ARG');
    const i32 = Tensor.from(new Int32Array(12), { shape: [1, 3, 2, 2] });
    expectCode(() => ImageBatch.fromTensor(i32), 'ERR_ND_ARG');
    i32.dispose();
    expectCode(() => encodePNG(new Uint8Array(12), 2, 2, 2 as never), 'ERR_ND_ARG');
    expectCode(() => encodePNG(new Uint8Array(11), 2, 2), 'ERR_ND_SHAPE');
    expectCode(() => encodePNG(new Uint8Array(0), 0, 0), 'ERR_ND_ARG');
    expectCode(() => encodePNG([0, 0, 0] as never, 1, 1), 'ERR_ND_ARG');
  });
});
