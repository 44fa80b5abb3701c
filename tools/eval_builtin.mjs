// Scores the built-in models with the shipped classifier, per sampler, and records the figures in each
// model card's "quality" (and prints the markdown table that docs/models.md carries).
//   npm run build:ts && node tools/eval_builtin.mjs [--per-class 20] [--write]
// Every configuration generates `per-class` images of each class with seeds 0, 1, ... (image i gets
// seed i), so rows differ only by the sampler, the steps and the guidance.
import { readFileSync, writeFileSync } from 'node:fs';
import { Pipeline, listBuiltinModels, loadClassifier } from '../dist/index.js';

const arg = (name, dflt) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : dflt; };
const perClass = Number(arg('--per-class', 20));
const write = process.argv.includes('--write');
const configs = [
  { sampler: 'dpmpp-2m', steps: 20, guidanceScale: 3 },
  { sampler: 'dpmpp-2m', steps: 10, guidanceScale: 3 },
  { sampler: 'ddim', steps: 50, guidanceScale: 3 },
  { sampler: 'ddim', steps: 20, guidanceScale: 3 },
  { sampler: 'euler', steps: 20, guidanceScale: 3 },
  { sampler: 'heun', steps: 10, guidanceScale: 3 },
  { sampler: 'unipc', steps: 10, guidanceScale: 3 },
  { sampler: 'dpmpp-3m', steps: 20, guidanceScale: 3 },
  { sampler: 'dpmpp-2m-sde', steps: 20, guidanceScale: 3 },
  { sampler: 'euler-ancestral', steps: 30, guidanceScale: 3 },
  { sampler: 'ddpm', steps: 100, guidanceScale: 3 },
  { sampler: 'dpmpp-2m', steps: 20, guidanceScale: 1 },
];
const classifier = await loadClassifier('builtin:shapes-classifier');
const rows = [];
const results = {};
for (const info of listBuiltinModels()) {
  const pipe = await Pipeline.load(info.id);
  const classes = Array.from({ length: perClass * pipe.classNames.length }, (_, i) => Math.floor(i / perClass));
  results[info.name] = [];
  for (const c of configs) {
    const t0 = performance.now();
    const { images, latents } = await pipe.generate({ classes, seed: 0, ...c });
    latents.dispose();
    const acc = classifier.accuracy(images, classes);
    const seconds = (performance.now() - t0) / 1000;
    results[info.name].push({ ...c, images: classes.length, accuracy: Number(acc.toFixed(4)) });
    rows.push(`| ${info.id} | ${c.sampler} | ${c.steps} | ${c.guidanceScale} | ${(100 * acc).toFixed(1)}% | ${(classes.length / seconds).toFixed(1)} |`);
    console.error(rows.at(-1));
  }
  if (write) {
    const cardPath = info.path.replace(/\.safetensors$/, '.json');
    const card = JSON.parse(readFileSync(cardPath, 'utf8'));
    card.quality = { ...card.quality, engine: { command: 'node tools/eval_builtin.mjs --write', classifier: 'shapes-classifier', imagesPerClass: perClass, results: results[info.name] } };
    writeFileSync(cardPath, `${JSON.stringify(card, null, 2)}\n`);
  }
  pipe.dispose();
}
console.log(`| model | sampler | steps | CFG | classifier accuracy (${perClass} per class) | images/s |`);
console.log('|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
