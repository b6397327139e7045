#!/usr/bin/env node
'use strict';
const path = require('node:path');
const { main } = require(path.join(__dirname, '..', 'out', 'server', 'src', 'cli', 'main.js'));
main(process.argv.slice(2)).then((code) => {
  if (code >= 0) process.exitCode = code;
});
