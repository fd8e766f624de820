// What the test programs share: one JSON event a line on stdout, a time limit for every
// command (TE_OP_TIMEOUT_MS, 20 s by default) and the loop that runs stdin's commands.
'use strict';

const readline = require('readline');

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

// One command: its answer, or {"event": "error", "op", "name", "status", "message"}.
async function run(operations, command) {
  const operation = operations[command.op];
  if (!operation) return { event: 'error', op: command.op, message: 'unknown op' };
  try {
    return await withTimeout(command.op, operation(command));
  } catch (err) {
    return {
      event: 'error',
      op: command.op,
      name: err && err.constructor ? err.constructor.name : 'Error',
      status: err && err.response ? err.response.statusCode : null,
      message: String(err && err.message),
    };
  }
}

// Answer each stdin line's command in turn; at the end of stdin, close() and exit.
async function serve(operations, close) {
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line.trim()) emit(await run(operations, JSON.parse(line)));
  }
  await withTimeout('close', close()).catch(() => {});
  process.exit(0);
}

module.exports = { emit, serve, withTimeout };
