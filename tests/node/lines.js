// What the test programs share: one JSON event a line on stdout, and a time limit for
// every command (TE_OP_TIMEOUT_MS, 20 s by default).
'use strict';

const OP_TIMEOUT_MS = Number(process.env.TE_OP_TIMEOUT_MS || 20000);

function emit(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

function withTimeout(op, promise) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${op} took over ${OP_TIMEOUT_MS} ms`)), OP_TIMEOUT_MS);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

module.exports = { emit, withTimeout };
