// The loader in node-diffusion resolves this package's directory and loads prebuilds/ from it.
'use strict';
module.exports = { binsDir: require('node:path').join(__dirname, 'prebuilds') };
