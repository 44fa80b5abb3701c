// node-diffusion generate / samplers / models, run as the built CLI (dist/cli.js; build it first with
// `node scripts/build-ts.mjs`) in child processes, with a tiny random DiT and its card in a temp dir.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Pipeline } from '../lib/pipeline.js';
import { writeRandomDit } from './helpers/dit-weights.js';

const CLI = resolve('dist/cli.js');
// The children inherit ND_BACKEND=cpu from the vitest configuration.
const run = (args: string[], cwd = process.cwd()) => spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8' });

const CLASS_NAMES = ['circle', 'square', 'triangle', 'cross', 'ring', 'star', 'heart', 'diamond', 'line', 'dot'];
const SIZE = 16;
let dir = '';
let model = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nd-cli-generate-'));
  model = join(dir, 'tiny.safetensors');
  await writeRandomDit(model, { depth: 1, hidden: 32, heads: 2, patch: 4, classes: 10, family: 'dit', seed: 5, inChannels: 3, std: 0.05 });
  writeFileSync(join(dir, 'tiny.json'), JSON.stringify({
    name: 'tiny', heads: 2, imageSize: [SIZE, SIZE], classNames: CLASS_NAMES,
    schedule: { kind: 'vpDiscrete', betaSchedule: 'linear' },
    defaults: { sampler: 'dpmpp-2m', steps: 20, guidanceScale: 3 },
  }));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Width and height from a PNG's IHDR, after checking the signature. */
function pngSize(file: string): [number, number] {
  const b = readFileSync(file);
  expect([...b.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  expect(b.toString('latin1', 12, 16)).toBe('IHDR');
  expect(b.toString('latin1', b.length - 8, b.length - 4)).toBe('IEND');
  return [b.readUInt32BE(16), b.readUInt32BE(20)];
}

/** Exactly one line on stderr, `node-diffusion: ... [ERR_ND_...]`, and no stack trace. */
function oneLineError(stderr: string, code?: string): void {
  expect(stderr).toMatch(/^node-diffusion: [^\n]+ \[ERR_ND_[A-Z]+\]\n$/);
  if (code) expect(stderr).toContain(`[${code}]`);
  expect(stderr).not.toMatch(/\n\s+at /);
}

describe('node-diffusion help', () => {
  it('the top level lists every command; every command has its own --help', () => {
    const top = run(['--help']);
    expect(top.status).toBe(0);
    for (const c of ['generate', 'samplers', 'models', 'info']) expect(top.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    for (const c of ['generate', 'samplers', 'models', 'info']) {
      const h = run([c, '--help']);
      expect(h.status).toBe(0);
      expect(h.stdout).toContain(`Usage: node-diffusion ${c}`);
    }
    const g = run(['generate', '--help']).stdout;
    expect(run(['generate', '-h']).stdout).toBe(g);
    expect(run(['help', 'generate']).stdout).toBe(g);
    for (const flag of ['--model', '--class', '-n, --count', '--steps', '--sampler', '--cfg', '--seed', '--device', '-o, --output', '--grid', '--no-grid', '--columns', '--padding', '--scale', '--json', '--quiet']) {
      expect(g).toContain(flag);
    }
  });

  it('an unknown command or option is a one-line usage error (exit code 2)', () => {
    const bad = run(['frobnicate']);
    expect(bad.status).toBe(2);
    oneLineError(bad.stderr, 'ERR_ND_ARG');
    expect(bad.stderr).toContain('valid commands: generate, samplers, models, info');
    const opt = run(['generate', '--frobnicate']);
    expect(opt.status).toBe(2);
    oneLineError(opt.stderr);
    expect(opt.stderr).toContain("unknown option '--frobnicate'");
  });
});

describe('node-diffusion samplers and models', () => {
  it('samplers lists the samplers generate accepts', () => {
    const r = run(['samplers', '--json']);
    expect(r.status).toBe(0);
    const list = JSON.parse(r.stdout) as { name: string; family: string; order: string; evaluationsPerStep: string; stochastic: boolean; source: string }[];
    const names = list.map((s) => s.name);
    expect(names).toContain('dpmpp-2m');
    expect(names).toContain('ddim');
    expect(names).not.toContain('ddim-inverse');
    expect(names).not.toContain('mrs'); // needs a conditioned schedule
    for (const s of list) expect(typeof s.source).toBe('string');
    const text = run(['samplers']);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/^SAMPLER +FAMILY +ORDER +EVALS\/STEP +STOCHASTIC +SOURCE$/m);
    expect(text.stdout).toMatch(/^dpmpp-2m +dpm-solver +2 +1 +no +Lu et al/m);
    expect(text.stdout).not.toMatch(/^ddim-inverse/m);
  });

  it('models lists the built-in models (the default first when shipped)', () => {
    const r = run(['models', '--json']);
    expect(r.status).toBe(0);
    const list = JSON.parse(r.stdout) as { id: string; isDefault: boolean; classNames: string[]; imageSize: number[]; bytes: number }[];
    expect(Array.isArray(list)).toBe(true);
    for (const m of list) {
      expect(m.id).toMatch(/^builtin:/);
      expect(m.bytes).toBeGreaterThan(0);
    }
    const text = run(['models']);
    expect(text.status).toBe(0);
    if (existsSync('models/shapes.safetensors') && existsSync('models/shapes.json')) {
      expect(list[0].id).toBe('builtin:shapes');
      expect(list[0].isDefault).toBe(true);
      expect(list.filter((m) => m.isDefault)).toHaveLength(1);
      expect(text.stdout).toMatch(/^builtin:shapes \*/m);
    }
    if (list.length === 0) expect(text.stdout).toMatch(/No built-in models/);
  });
});

describe('node-diffusion generate', () => {
  it('writes one grid PNG by default, with progress on stderr and a summary line', () => {
    const r = run(['generate', '--model', model, '--steps', '4', '-o', 'grid.png'], dir);
    expect(r.stderr).toMatch(/^step 1\/4 /m);
    expect(r.stderr).toMatch(/^step 4\/4 /m);
    expect(r.status).toBe(0);
    // One image per class, one column per class, scale 4, padding 2.
    expect(pngSize(join(dir, 'grid.png'))).toEqual([10 * (4 * SIZE + 2) + 2, 4 * SIZE + 2 + 2]);
    expect(r.stdout).toMatch(/^wrote grid\.png: 10 images \(circle, square, triangle, .*\) with dpmpp-2m, 4 steps, cfg 3, in [\d.]+ s, [\d.]+ images\/s\n$/);
  });

  it('--json reports what was made; the grid geometry follows --columns, --padding and --scale', () => {
    const r = run(['generate', '--model', model, '--class', 'circle', '--class', '3', '-n', '5', '--steps', '3', '--cfg', '1.5',
      '--seed', '7', '--sampler', 'ddim', '--columns', '3', '--padding', '1', '--scale', '2', '--json', '-o', 'j.png'], dir);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({
      files: ['j.png'], model: 'tiny', count: 5, classes: [0, 3, 0, 3, 0], classNames: ['circle', 'cross', 'circle', 'cross', 'circle'],
      seeds: [7, 8, 9, 10, 11], sampler: 'ddim', steps: 3, cfg: 1.5, grid: true, columns: 3, padding: 1, scale: 2,
      width: 3 * (2 * SIZE + 1) + 1, height: 2 * (2 * SIZE + 1) + 1,
    });
    for (const k of ['seconds', 'imagesPerSecond', 'modelSeconds', 'evaluations']) expect(out[k]).toBeGreaterThan(0);
    expect(pngSize(join(dir, 'j.png'))).toEqual([out.width, out.height]);
  });

  it('the same seed gives the same file; the picture is the one the API makes', async () => {
    const args = (seed: string, out: string) =>
      ['generate', '--model', model, '--class', 'star', '--class', '1', '-n', '4', '--steps', '4', '--seed', seed, '--quiet', '-o', out];
    const a = run(args('11', 'a.png'), dir);
    const b = run(args('11', 'b.png'), dir);
    const c = run(args('12', 'c.png'), dir);
    expect([a.status, b.status, c.status]).toEqual([0, 0, 0]);
    expect(a.stdout + a.stderr).toBe(''); // --quiet
    const bytes = readFileSync(join(dir, 'a.png'));
    expect(readFileSync(join(dir, 'b.png')).equals(bytes)).toBe(true);
    expect(readFileSync(join(dir, 'c.png')).equals(bytes)).toBe(false);
    const pipe = await Pipeline.load(model);
    try {
      const { images, latents } = await pipe.generate({ classes: ['star', 1, 'star', 1], steps: 4, seed: 11 });
      latents.dispose();
      expect(images.grid({ columns: 2, padding: 2, scale: 4 }).toPNG().equals(bytes)).toBe(true);
    } finally {
      pipe.dispose();
    }
  });

  it('--no-grid writes one PNG per image, named after -o; a single image is written as is', () => {
    mkdirSync(join(dir, 'sep'));
    const r = run(['generate', '--model', model, '-n', '3', '--steps', '2', '--no-grid', '--json', '-o', 'sep/s.png'], dir);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).files).toEqual(['sep/s-0.png', 'sep/s-1.png', 'sep/s-2.png']);
    for (const f of ['s-0.png', 's-1.png', 's-2.png']) expect(pngSize(join(dir, 'sep', f))).toEqual([SIZE, SIZE]);
    const one = run(['generate', '--model', model, '--class', 'dot', '--steps', '2', '--quiet', '-o', 'one.png'], dir);
    expect(one.status).toBe(0);
    expect(pngSize(join(dir, 'one.png'))).toEqual([SIZE, SIZE]);
    const big = run(['generate', '--model', model, '--class', 'dot', '--steps', '2', '--quiet', '--scale', '3', '-o', 'big.png'], dir);
    expect(big.status).toBe(0);
    expect(pngSize(join(dir, 'big.png'))).toEqual([3 * SIZE, 3 * SIZE]);
  });

  it('an unknown sampler is a one-line usage error listing the valid ones', () => {
    const r = run(['generate', '--model', model, '--sampler', 'nope', '-o', 'x.png'], dir);
    expect(r.status).toBe(2);
    oneLineError(r.stderr, 'ERR_ND_ARG');
    expect(r.stderr).toContain("'nope'");
    expect(r.stderr).toContain('dpmpp-2m');
    expect(r.stderr).toContain('ddim');
    expect(r.stderr).not.toContain('ddim-inverse');
    expect(existsSync(join(dir, 'x.png'))).toBe(false);
  });

  it('a missing model file, an unknown class and --device cuda are one-line errors', () => {
    const missing = join(dir, 'nope', 'missing.safetensors');
    const m = run(['generate', '--model', missing, '-o', 'x.png'], dir);
    expect(m.status).toBe(1);
    oneLineError(m.stderr, 'ERR_ND_IO');
    expect(m.stderr).toContain(missing);
    const cls = run(['generate', '--model', model, '--class', 'hexagon', '-o', 'x.png'], dir);
    expect(cls.status).toBe(2);
    oneLineError(cls.stderr, 'ERR_ND_ARG');
    expect(cls.stderr).toContain("'hexagon'");
    expect(cls.stderr).toContain('circle, square');
    const idx = run(['generate', '--model', model, '--class', '10', '-o', 'x.png'], dir);
    expect(idx.status).toBe(2);
    expect(idx.stderr).toContain('[0, 9]');
    const cuda = run(['generate', '--model', model, '--device', 'cuda', '-o', 'x.png'], dir);
    expect(cuda.status).not.toBe(0);
    oneLineError(cuda.stderr);
    expect(cuda.stderr).toContain('cuda');
    const gpu = run(['generate', '--model', model, '--device', 'gpu', '-o', 'x.png'], dir);
    expect(gpu.status).toBe(2);
    oneLineError(gpu.stderr, 'ERR_ND_ARG');
    expect(gpu.stderr).toContain('--device');
    expect(existsSync(join(dir, 'x.png'))).toBe(false);
  });

  it('bad numbers and a missing output directory are usage errors naming the flag', () => {
    const cases: [string[], string][] = [
      [['--steps', 'abc'], '--steps'], [['--steps', '0'], '--steps'], [['--steps', '2.5'], '--steps'],
      [['--cfg', 'strong'], '--cfg'], [['--seed', '-1'], '--seed'], [['--seed', 'x'], '--seed'],
      [['-n', '0'], '--count'], [['--scale', 'big'], '--scale'], [['--columns', '0'], '--columns'], [['--padding', '-2'], '--padding'],
      [['--steps'], '--steps'], [['--grid', '--no-grid'], '--no-grid'], [['--seed', '9007199254740991', '-n', '2'], '--seed'], [['-o', join(dir, 'no-dir', 'x.png')], 'no-dir'],
    ];
    for (const [args, needle] of cases) {
      const r = run(['generate', '--model', model, ...args], dir);
      expect(r.status, args.join(' ')).toBe(2);
      oneLineError(r.stderr, 'ERR_ND_ARG');
      expect(r.stderr).toContain(needle);
    }
  });

  it('Ctrl-C stops between steps: "aborted", exit code 130, no file', async () => {
    const child = spawn(process.execPath, [CLI, 'generate', '--model', model, '-n', '1', '--steps', '10000', '-o', 'int.png'], { cwd: dir });
    let stderr = '';
    let sent = false;
    const code = await new Promise<number | null>((done) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (!sent && /^step 1\//m.test(stderr)) sent = child.kill('SIGINT');
      });
      child.on('close', (c) => done(c));
    });
    expect(code).toBe(130);
    expect(stderr).toMatch(/^node-diffusion: generation aborted after \d+ of 10000 steps \[ERR_ND_ABORTED\]$/m);
    expect(existsSync(join(dir, 'int.png'))).toBe(false);
  });
});
