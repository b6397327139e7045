#!/usr/bin/env -S node --max-semi-space-size=6 --heap-growing-percent=50 --max-inlined-bytecode-size-cumulative=200
'use strict';
const path = require('node:path');
const { main, quietEpipe } = require(path.join(__dirname, '..', 'out', 'server', 'src', 'cli', 'main.js'));
quietEpipe();
main(process.argv.slice(2)).then((code) => {
  if (code >= 0) process.exitCode = code;
});
