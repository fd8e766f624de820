// The unmodified Node.js service SDK (azure-iothub Registry, HTTPS) driven line by line.
//
// Commands come from stdin, one JSON object a line; answers go to stdout, one JSON object a
// line:
//   {"op": "registry", "method": "list", "args": []}
//     -> {"event": "result", "status": <HTTP status>, "body": <response body>}
//     or {"event": "error", "name": <SDK error class>, "status": .., "body": .., "message": ..}
//   {"op": "c2d_send", "device": "d", "body": "..", "messageId": "m", "ack": "full"}
//     -> {"event": "c2d_sent"}   (Client over AMQP: amqps://<HostName>:5671)
//   {"op": "c2d_feedback"} -> {"event": "feedback_ready"}, then for every feedback message
//     {"event": "feedback", "records": [..]}
// Only the Registry methods in METHODS may be called. Every command has a time limit
// (TE_OP_TIMEOUT_MS, 20 s by default); end of stdin ends the program.
//
// Environment: TE_CONNECTION_STRING (a service connection string; the SDK dials
// https://<HostName>:443, see tests/node/netns.py), NODE_EXTRA_CA_CERTS (the hub's CA).
'use strict';

const readline = require('readline');
const { Client, Registry } = require('azure-iothub');
const { Message } = require('azure-iot-common');
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

let client = null;

async function openClient() {
  if (!client) {
    client = Client.fromConnectionString(process.env.TE_CONNECTION_STRING);
    await client.open();
  }
  return client;
}

const c2d = {
  async c2d_send(command) {
    const message = new Message(command.body);
    message.messageId = command.messageId;
    if (command.ack) message.ack = command.ack;
    await (await openClient()).send(command.device, message);
    return { event: 'c2d_sent' };
  },
  async c2d_feedback() {
    const opened = await openClient();
    const receiver = await new Promise((resolve, reject) =>
      opened.getFeedbackReceiver((err, r) => (err ? reject(err) : resolve(r))));
    receiver.on('message', (msg) => emit({ event: 'feedback', records: JSON.parse(msg.data.toString()) }));
    return { event: 'feedback_ready' };
  },
};

async function run(command) {
  if (c2d[command.op]) {
    try {
      return await withTimeout(command.op, c2d[command.op](command));
    } catch (err) {
      return { event: 'error', name: 'Error', message: String(err && err.message) };
    }
  }
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
  if (client) await withTimeout('close', client.close()).catch(() => {});
  process.exit(0);
}

main().catch((err) => {
  emit({ event: 'error', name: 'main', message: String(err && err.message) });
  process.exit(1);
});
