// Child-process check of a native binary: load it and report the CUDA state as one JSON line.
// Runs in its own process because a broken driver may abort() whoever loads the binary.
'use strict';
const path = process.argv[2];
try {
  const addon = require(path);
  process.stdout.write(JSON.stringify(addon.probeCuda()) + '\n');
} catch (err) {
  process.stderr.write(String(err && err.message ? err.message : err) + '\n');
  process.exit(3);
}
