"""Sans-I/O protocol codecs and connection state machines: bytes in, events out.
No asyncio, no sockets, no TLS, no hub core; fuzzable on their own."""
