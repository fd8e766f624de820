// The unmodified Node.js service SDK (azure-iothub Registry, HTTPS) driven line by line.
//
// Commands come from stdin, one JSON object a line; answers go to stdout, one JSON object a
// line:
//   {"op": "registry", "method": "list", "args": []}
//     -> {"event": "result", "status": <HTTP status>, "body": <response body>}
//     or {"event": "error", "name": <SDK error class>, "status": .., "body": .., "message": ..}
// Only the Registry methods in METHODS may be called. Every command has a time limit
// (TE_OP_TIMEOUT_MS, 20 s by default); end of stdin ends the program.
//
// Environment: TE_CONNECTION_STRING (a service connection string; the SDK dials
// https://<HostName>:443, see tests/node/netns.py), NODE_EXTRA_CA_CERTS (the hub's CA).
'use strict';

const readline = require('readline');
const { Registry } = require('azure-iothub');
const { emit, withTimeout } = require('./lines');

const METHODS = new Set([
  'list', 'create', 'get', 'update', 'delete', 'addDevices', 'updateDevices', 'removeDevices',
]);
const registry = Registry.fromConnectionString(process.env.TE_CONNECTION_STRING);

function parsed(text) {
  if (typeof text !== 'string') return text === undefined ? null : text;
  try {
    return JSON.parse(text);
  } catch (_) {
    return text;
  }
}

async function run(command) {
  if (command.op !== 'registry' || !METHODS.has(command.method)) {
    return { event: 'error', name: 'UsageError', message: `cannot run ${JSON.stringify(command)}` };
  }
  try {
    const result = await withTimeout(command.method, registry[command.method](...command.args));
    return {
      event: 'result',
      status: result.httpResponse ? result.httpResponse.statusCode : null,
      body: result.responseBody === undefined ? null : result.responseBody,
    };
  } catch (err) {
    return {
      event: 'error',
      name: err && err.constructor ? err.constructor.name : 'Error',
      status: err && err.response ? err.response.statusCode : null,
      body: parsed(err ? err.responseBody : null),
      message: String(err && err.message),
    };
  }
}

async function main() {
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line.trim()) emit(await run(JSON.parse(line)));
  }
  process.exit(0);
}

main().catch((err) => {
  emit({ event: 'error', name: 'main', message: String(err && err.message) });
  process.exit(1);
});
