// One device or module identity driven by the unmodified Node.js device SDK, over MQTT or,
// with TE_TRANSPORT=amqp, over AMQP (the transport of the Node module-twin tutorial), or over
// WebSockets (TE_TRANSPORT=mqttws or amqpws).
//
// Commands come from stdin, one JSON object a line; events go to stdout, one JSON object a
// line, so a test can run a script of its own and wait for each answer:
//   {"op": "open"}                 -> {"event": "opened"}            (a new connection)
//   {"op": "get_twin"}             -> {"event": "twin", "desired": .., "reported": ..}
//                                     and from then on {"event": "desired", "patch": ..}
//                                     for every desired patch the twin receives
//   {"op": "report", "patch": ..}  -> {"event": "reported"}
//   {"op": "send", "body": ".."}   -> {"event": "sent"}
//   {"op": "send_output", "output": "o", "body": ".."} -> {"event": "sent"}  (modules)
//   {"op": "on_method", "name": "m", "status": 200, "payload": ..}
//                                  -> {"event": "method_ready"}, then for each call
//                                     {"event": "method", "name", "payload"} as it answers
//   {"op": "on_c2d", "settle": "complete" | "reject" | "abandon"}
//                                  -> {"event": "c2d_ready"}, then for each C2D message
//                                     {"event": "c2d", "body", "messageId", "properties"}
//                                     after settling it that way (a later on_c2d changes it)
//   {"op": "close"}                -> {"event": "closed"}
//   {"op": "new_client"}           -> {"event": "client"}  (close() ends the old one first)
// A failed command answers {"event": "error", "op": .., "message": ..}. Every command has a
// time limit (TE_OP_TIMEOUT_MS, 20 s by default); end of stdin ends the program.
//
// Environment: TE_CONNECTION_STRING (a device or module connection string; GatewayHostName
// may carry the hub's MQTT port, see README), TE_CA_FILE (the hub's CA certificate, PEM),
// TE_TRANSPORT (optional; the WebSocket transports always dial port 443), TE_WS_PROXY
// (optional, http://host:port: the WebSocket transports go through that HTTP CONNECT proxy,
// the SDK's documented way, with https-proxy-agent as their webSocketAgent).
'use strict';

const fs = require('fs');
const { Client, ModuleClient, Message } = require('azure-iot-device');
const transports = {
  mqtt: () => require('azure-iot-device-mqtt').Mqtt,
  amqp: () => require('azure-iot-device-amqp').Amqp,
  mqttws: () => require('azure-iot-device-mqtt').MqttWs,
  amqpws: () => require('azure-iot-device-amqp').AmqpWs,
};
const Transport = transports[process.env.TE_TRANSPORT || 'mqtt']();
const { emit, serve } = require('./lines');

const connectionString = process.env.TE_CONNECTION_STRING;
const ca = fs.readFileSync(process.env.TE_CA_FILE, 'utf8');

async function newClient() {
  const factory = /;ModuleId=/.test(connectionString) ? ModuleClient : Client;
  const client = factory.fromConnectionString(connectionString, Transport);
  const options = { ca };
  if (process.env.TE_WS_PROXY) {
    const { HttpsProxyAgent } = require('https-proxy-agent');
    const webSocketAgent = new HttpsProxyAgent(process.env.TE_WS_PROXY);
    options.mqtt = { webSocketAgent };
    options.amqp = { webSocketAgent };
  }
  if (process.env.TE_CERT_FILE) { // X.509 (a device connection string with x509=true)
    options.cert = fs.readFileSync(process.env.TE_CERT_FILE, 'utf8');
    options.key = fs.readFileSync(process.env.TE_KEY_FILE, 'utf8');
  }
  await client.setOptions(options); // settles asynchronously: an open() before it has no CA
  client.on('error', (err) => emit({ event: 'client_error', message: String(err && err.message) }));
  return client;
}

let client = null;
let twin = null;
let c2dSettle = 'complete';

function c2dListener(msg) {
  const properties = {};
  for (const item of msg.properties.propertyList) properties[item.key] = item.value;
  const body = msg.data === undefined ? '' : msg.data.toString();
  const done = (err) => emit(err
    ? { event: 'error', op: 'c2d', message: String(err.message) }
    : { event: 'c2d', body, messageId: msg.messageId, properties, settled: c2dSettle });
  client[c2dSettle](msg, done);
}

const operations = {
  async open() {
    client = client || (await newClient());
    await client.open();
    return { event: 'opened' };
  },
  async get_twin() {
    twin = await client.getTwin();
    if (twin.listenerCount('properties.desired') === 0) {
      twin.on('properties.desired', (patch) => emit({ event: 'desired', patch }));
    }
    return { event: 'twin', desired: twin.properties.desired, reported: twin.properties.reported };
  },
  async report(command) {
    if (!twin) throw new Error('report before get_twin');
    await new Promise((resolve, reject) =>
      twin.properties.reported.update(command.patch, (err) => (err ? reject(err) : resolve())));
    return { event: 'reported' };
  },
  async send(command) {
    await client.sendEvent(new Message(command.body));
    return { event: 'sent' };
  },
  async send_output(command) {
    await client.sendOutputEvent(command.output, new Message(command.body));
    return { event: 'sent' };
  },
  async on_method(command) {
    const handler = (request, response) => {
      response.send(command.status, command.payload, (err) => {
        emit(err
          ? { event: 'error', op: 'method', message: String(err.message) }
          : { event: 'method', name: request.methodName, payload: request.payload });
      });
    };
    if (client instanceof ModuleClient) client.onMethod(command.name, handler);
    else client.onDeviceMethod(command.name, handler);
    return { event: 'method_ready' };
  },
  async on_c2d(command) {
    c2dSettle = command.settle || 'complete';
    if (client.listenerCount('message') === 0) client.on('message', c2dListener);
    return { event: 'c2d_ready' };
  },
  async close() {
    if (client) await client.close();
    return { event: 'closed' };
  },
  async new_client() {
    if (client) await client.close();
    client = await newClient();
    twin = null;
    return { event: 'client' };
  },
};

async function main() {
  await serve(operations, async () => {
    if (client) await client.close();
  });
}

main().catch((err) => {
  emit({ event: 'error', op: 'main', message: String(err && err.message) });
  process.exit(1);
});
