// The unmodified Node.js service SDK (azure-iothub Registry, HTTPS) driven line by line.
//
// Commands come from stdin, one JSON object a line; answers go to stdout, one JSON object a
// line:
//   {"op": "registry", "method": "list", "args": []}
//     -> {"event": "result", "status": <HTTP status>, "body": <response body>}
//     or {"event": "error", "name": <SDK error class>, "status": .., "body": .., "message": ..}
//   {"op": "job", "method": "scheduleTwinUpdate", "args": [..], "start": <ISO time>?,
//    "maxSeconds": <n>?}: a JobClient method, the same answers (the start time goes in as
//    a Date after the arguments);
//   {"op": "jobQuery", "args": [jobType, jobStatus, pageSize]}: every page of
//    JobClient.createQuery -> {"event": "result", "pages": [<items>, ...]}.
//   {"op": "c2d_send", "device": "d", "body": "..", "messageId": "m", "ack": "full"}
//     -> {"event": "c2d_sent"}   (Client over AMQP: amqps://<HostName>:5671)
//   {"op": "c2d_feedback"} -> {"event": "feedback_ready"}, then for every feedback message
//     {"event": "feedback", "records": [..]}
// Only the Registry and JobClient methods in METHODS and JOB_METHODS may be called. Every
// command has a time limit
// (TE_OP_TIMEOUT_MS, 20 s by default); end of stdin ends the program.
//
// Environment: TE_CONNECTION_STRING (a service connection string; the SDK dials
// https://<HostName>:443, see tests/node/netns.py), NODE_EXTRA_CA_CERTS (the hub's CA).
'use strict';

const readline = require('readline');
const { Client, JobClient, Registry } = require('azure-iothub');
const { Message } = require('azure-iot-common');
const { emit, withTimeout } = require('./lines');

const METHODS = new Set([
  'list', 'create', 'get', 'update', 'delete', 'addDevices', 'updateDevices', 'removeDevices',
  'addConfiguration', 'getConfiguration', 'getConfigurations', 'updateConfiguration',
  'removeConfiguration', 'applyConfigurationContentOnDevice',
]);
const JOB_METHODS = new Set([
  'scheduleTwinUpdate', 'scheduleDeviceMethod', 'getJob', 'cancelJob',
]);
const registry = Registry.fromConnectionString(process.env.TE_CONNECTION_STRING);
const jobs = JobClient.fromConnectionString(process.env.TE_CONNECTION_STRING);

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
    receiver.on('message', (msg) => {
      emit({ event: 'feedback', records: JSON.parse(msg.data.toString()) });
      receiver.complete(msg, () => {}); // as IoT Hub asks: else the batch comes again
    });
    return { event: 'feedback_ready' };
  },
};

function call(command) {
  if (command.op === 'registry' && METHODS.has(command.method)) {
    return registry[command.method](...command.args);
  }
  if (command.op === 'job' && JOB_METHODS.has(command.method)) {
    const args = [...command.args];
    if (command.start) args.push(new Date(command.start), command.maxSeconds);
    return jobs[command.method](...args);
  }
  return null;
}

async function allPages(args) {
  const query = jobs.createQuery(...args);
  const pages = [];
  while (query.hasMoreResults) {
    // next() without an argument would ask for the first page again.
    pages.push((await withTimeout('next', query.next(query.continuationToken))).result);
  }
  return { event: 'result', pages };
}

async function run(command) {
  if (c2d[command.op]) {
    try {
      return await withTimeout(command.op, c2d[command.op](command));
    } catch (err) {
      return { event: 'error', name: 'Error', message: String(err && err.message) };
    }
  }
  try {
    if (command.op === 'jobQuery') return await allPages(command.args);
    const pending = call(command);
    if (pending === null) {
      return { event: 'error', name: 'UsageError', message: `cannot run ${JSON.stringify(command)}` };
    }
    const result = await withTimeout(command.method, pending);
    // Registry answers {responseBody, httpResponse}; JobClient {jobStatus, response}.
    const response = result.httpResponse || result.response;
    const body = command.op === 'job' ? result.jobStatus : result.responseBody;
    return {
      event: 'result',
      status: response ? response.statusCode : null,
      body: body === undefined ? null : body,
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
