"""IoT Hub's semantics, once: registry, twins, auth, presence, direct methods, device
operations, C2D queues and hub events. No sockets, no TLS, no HTTP, no protocol codec:
transports call it and deliver what it hands them."""
