// One device identity driven by the unmodified Node.js device SDK over HTTPS
// (azure-iot-device-http): telemetry, and cloud-to-device messages it polls for.
//
// Commands on stdin, events on stdout, one JSON object a line (as device_client.js):
//   {"op": "send", "body": "..", "properties": {..}, "messageId": ".."}  -> {"event": "sent"}
//   {"op": "send_batch", "messages": [{"body": "..", "properties": {..}}]} -> {"event": "sent"}
//   {"op": "listen"}   -> {"event": "listening"}; from then on the SDK polls and each C2D
//                         message arrives as {"event": "message", "data", "messageId",
//                         "lockToken", "properties": {..}}
//   {"op": "complete" | "reject" | "abandon", "lockToken": ".."}        -> {"event": <op>d}
// A failed command answers {"event": "error", "op", "name", "status", "message"}.
//
// The SDK dials https://<HostName> on port 443 with the https.Agent given in its
// `http.agent` option (its documented proxy hook). The agent here tunnels through the
// hub's HTTP CONNECT proxy (TE_PROXY_PORT), so TLS, SNI and the SAS token still name
// HostName. Environment: TE_CONNECTION_STRING, TE_CA_FILE, TE_PROXY_PORT.
'use strict';

const fs = require('fs');
const http = require('http');
const https = require('https');
const tls = require('tls');
const { Client, Message } = require('azure-iot-device');
const { Http } = require('azure-iot-device-http');
const { emit, serve } = require('./lines');

const ca = fs.readFileSync(process.env.TE_CA_FILE, 'utf8');
const proxyPort = Number(process.env.TE_PROXY_PORT);

// An https.Agent whose sockets are TLS inside an HTTP CONNECT tunnel to the hub's proxy.
class TunnelAgent extends https.Agent {
  createConnection(options, callback) {
    const connect = http.request({
      host: '127.0.0.1',
      port: proxyPort,
      method: 'CONNECT',
      path: `${options.host}:${options.port || 443}`,
    });
    connect.once('connect', (response, socket) => {
      if (response.statusCode !== 200) {
        socket.destroy();
        callback(new Error(`proxy answered ${response.statusCode}`));
        return;
      }
      callback(null, tls.connect({ ...options, socket, servername: options.host }));
    });
    connect.once('error', callback);
    connect.end();
  }
}

const client = Client.fromConnectionString(process.env.TE_CONNECTION_STRING, Http);
const received = new Map(); // lock token -> the SDK's Message, to settle it later
client.on('error', (err) => emit({ event: 'client_error', message: String(err && err.message) }));

function message(spec) {
  const out = new Message(spec.body);
  for (const [key, value] of Object.entries(spec.properties || {})) out.properties.add(key, value);
  if (spec.messageId) out.messageId = spec.messageId;
  return out;
}

const operations = {
  async send(command) {
    await client.sendEvent(message(command));
    return { event: 'sent' };
  },
  async send_batch(command) {
    await client.sendEventBatch(command.messages.map(message));
    return { event: 'sent' };
  },
  async listen() {
    client.on('message', (msg) => {
      received.set(msg.lockToken, msg);
      const properties = {};
      for (let i = 0; i < msg.properties.count(); i++) {
        const item = msg.properties.getItem(i);
        properties[item.key] = item.value;
      }
      emit({
        event: 'message',
        data: msg.data.toString(),
        messageId: msg.messageId,
        lockToken: msg.lockToken,
        properties,
      });
    });
    return { event: 'listening' };
  },
  async complete(command) {
    await client.complete(received.get(command.lockToken) || { lockToken: command.lockToken });
    return { event: 'completed' };
  },
  async reject(command) {
    await client.reject(received.get(command.lockToken) || { lockToken: command.lockToken });
    return { event: 'rejected' };
  },
  async abandon(command) {
    await client.abandon(received.get(command.lockToken) || { lockToken: command.lockToken });
    return { event: 'abandoned' };
  },
};

async function main() {
  // The SDK answers setOptions only when it holds a receive policy (Http.setOptions).
  const agent = new TunnelAgent({ keepAlive: true });
  await client.setOptions({ ca, http: { agent, receivePolicy: { interval: 1 } } });
  await serve(operations, () => client.close());
}

main().catch((err) => {
  emit({ event: 'error', op: 'main', message: String(err && err.message) });
  process.exit(1);
});
