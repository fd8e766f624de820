"""Cloud-to-device messages from the service side (no Qt): what a message holds and what
is wrong with it (``message``), where and how to reach the hub (``endpoint``), the AMQP
sender and feedback receiver on a loop of their own (``client``), feedback records in words
(``feedback``), and the sent messages with their outcome (``outbox``)."""
