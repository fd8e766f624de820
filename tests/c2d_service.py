"""The service side of cloud-to-device messages for tests: send over the hub's AMQP port
(the node ``/messages/devicebound`` that azure-iot-hub's ``send_c2d_message`` uses) and
read feedback from ``/messages/servicebound/feedback``, with a service SAS token put
through CBS. The SDK itself always dials port 5671; the hub of a test listens elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any

from tests.localhub.amqp.raw_client import RECEIVER, SENDER, RawClient, RawLink, data_message
from twin_explorer.connection import strings
from twin_explorer.connection.sas import generate_service_token
from twin_explorer.localhub.protocols.amqp import Accepted

FEEDBACK_TIMEOUT = 30.0


class ServiceC2D:
    """One service connection: ``await ServiceC2D.open(...)``, ``send``, ``feedback``."""

    def __init__(self, client: RawClient, sender: RawLink) -> None:
        self.client = client
        self.sender = sender
        self._feedback: RawLink | None = None

    @classmethod
    async def open(cls, amqp_port: int, ca_cert: str, service_connection_string: str):
        cs = strings.parse(service_connection_string)
        assert cs.shared_access_key and cs.shared_access_key_name
        tls = ssl.create_default_context(cafile=ca_cert)
        client = await RawClient.connect(amqp_port, tls)
        token = generate_service_token(cs.host, cs.shared_access_key_name, cs.shared_access_key)
        status, description = await client.put_token(token, audience=cs.host)
        assert status == 200, description
        return cls(client, await client.attach("/messages/devicebound", SENDER))

    async def send(
        self,
        device_id: str,
        body: bytes,
        *,
        message_id: str,
        properties: dict[str, str] | None = None,
        content_type: str | None = None,
        ack: str | None = None,
    ) -> None:
        message = data_message(
            body,
            message_id=message_id,
            to=f"/devices/{device_id}/messages/devicebound",
            **({"content_type": content_type} if content_type else {}),
        )
        app = dict(properties or {})
        if ack:
            app["iothub-ack"] = ack
        message.application_properties = app or None
        outcome = await self.client.send(self.sender, message)
        assert isinstance(outcome, Accepted), outcome

    async def feedback(self) -> list[dict[str, Any]]:
        """The next batch of feedback records (one AMQP message), settled."""
        if self._feedback is None:
            self._feedback = await self.client.attach("/messages/servicebound/feedback", RECEIVER)
        async with asyncio.timeout(FEEDBACK_TIMEOUT):
            transfer, message = await self._feedback.messages.get()
        self.client.settle(transfer)
        return json.loads(message.data)

    async def close(self) -> None:
        await self.client.close()
