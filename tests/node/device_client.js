// One device or module identity driven by the unmodified Node.js device SDK (MQTT transport).
//
// Commands come from stdin, one JSON object a line; events go to stdout, one JSON object a
// line, so a test can run a script of its own and wait for each answer:
//   {"op": "open"}                 -> {"event": "opened"}            (a new connection)
//   {"op": "get_twin"}             -> {"event": "twin", "desired": .., "reported": ..}
//                                     and from then on {"event": "desired", "patch": ..}
//                                     for every desired patch the twin receives
//   {"op": "report", "patch": ..}  -> {"event": "reported"}
//   {"op": "send", "body": ".."}   -> {"event": "sent"}
//   {"op": "close"}                -> {"event": "closed"}
//   {"op": "new_client"}           -> {"event": "client"}  (close() ends the old one first)
// A failed command answers {"event": "error", "op": .., "message": ..}. Every command has a
// time limit (TE_OP_TIMEOUT_MS, 20 s by default); end of stdin ends the program.
//
// Environment: TE_CONNECTION_STRING (a device or module connection string; GatewayHostName
// may carry the hub's MQTT port, see README), TE_CA_FILE (the hub's CA certificate, PEM).
'use strict';

const fs = require('fs');
const { Client, ModuleClient, Message } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const { emit, serve } = require('./lines');

const connectionString = process.env.TE_CONNECTION_STRING;
const ca = fs.readFileSync(process.env.TE_CA_FILE, 'utf8');

async function newClient() {
  const factory = /;ModuleId=/.test(connectionString) ? ModuleClient : Client;
  const client = factory.fromConnectionString(connectionString, Mqtt);
  const options = { ca };
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
