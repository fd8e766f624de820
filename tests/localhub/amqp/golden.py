"""Message payloads copied from logged frames of the Node module client (azure-iot-device
1.18.4 on rhea) against a prototype hub: golden bytes for the codec tests."""

# Node -> $cbs put-token request (amqp-value string body)
CBS_PUT_TOKEN = (
    b"\x00SpE\x00Ss\xd0\x00\x00\x007\x00\x00\x00\x05\xa1$ca9dcd72-ec3e-4ca3-966c-dbd728735"
    b"2fb@\xa1\x04$cbs@\xa1\x03cbs\x00St\xd1\x00\x00\x00p\x00\x00\x00\x06\xa1\toperation"
    b"\xa1\tput-token\xa1\x04type\xa1\x1fservicebus.windows.net:sastoken\xa1\x04name\xa1'l"
    b"ocalhost%2Fdevices%2Fd1%2Fmodules%2Fm1\x00Sw\xa1\x81SharedAccessSignature sr=localho"
    b"st%2Fdevices%2Fd1%2Fmodules%2Fm1&sig=fq0B7J226wR0mXjpDg5W74zDYFNRUR0iSHHBZbPeUMY%3D&"
    b"se=1796537991"
)

# server -> Node $cbs reply (short properties list, long status-code)
CBS_REPLY = (
    b'\x00SpE\x00Ss\xc00\x06@@\xa1\x03cbs@@\xa1$ca9dcd72-ec3e-4ca3-966c-dbd7287352fb\x00St'
    b'\xd1\x00\x00\x002\x00\x00\x00\x04\xa1\x0bstatus-code\x81\x00\x00\x00\x00\x00\x00\x00'
    b'\xc8\xa1\x12status-description\xa1\x02OK'
)

# Node -> twin GET (symbol annotation keys, data body of one space)
TWIN_GET = (
    b'\x00SpE\x00Sr\xd1\x00\x00\x00\x14\x00\x00\x00\x02\xa3\toperation\xa1\x03GET\x00Ss'
    b'\xd0\x00\x00\x00/\x00\x00\x00\x06@@@@@\xa1$e55bdabc-9f90-41d9-a7d5-d9029b428ac0\x00S'
    b'u\xa0\x01 '
)

# Node -> twin PATCH /properties/reported
TWIN_PATCH = (
    b'\x00SpE\x00Sr\xd1\x00\x00\x006\x00\x00\x00\x04\xa3\toperation\xa1\x05PATCH\xa3\x08re'
    b'source\xa1\x14/properties/reported\x00Ss\xd0\x00\x00\x00/\x00\x00\x00\x06@@@@@\xa1$b'
    b'3d8f7c2-31aa-4e25-b8ae-cccad4fbf67c\x00Su\xa0!{"fw":"1.2.1","weather":{"t":72}}'
)

# Node -> messages/events telemetry (content-type/encoding symbols)
TELEMETRY = (
    b'\x00SpE\x00Ss\xd0\x00\x00\x00P\x00\x00\x00\x08\xa1\x05mid-1@\xa1&/devices/d1/modules'
    b'/m1/messages/events@@@\xa3\x10application/json\xa3\x05utf-8\x00St\xd1\x00\x00\x00)'
    b'\x00\x00\x00\x04\xa1\x05alert\xa1\x03yes\xa1\x11iothub-outputname\xa1\x04out1\x00Su'
    b'\xa0\x0b{"temp":20}'
)

# server -> Node desired push (properties as list0)
DESIRED_PUSH = (
    b'\x00SpE\x00Sr\xd1\x00\x00\x00\x0f\x00\x00\x00\x02\xa3\x07versionU\x03\x00SsE\x00Su'
    b'\xa0\x17{"a": 2, "$version": 3}'
)

# server -> Node method request (uuid correlation-id)
METHOD_REQUEST = (
    b'\x00SpE\x00Ss\xc0\x17\x06@@@@@\x98\x8b\x8cpL\x88{O\xa8\xae\xbdF\xf6\xd5\x1a18\x00St'
    b'\xd1\x00\x00\x00\x1f\x00\x00\x00\x02\xa1\x11IoThub-methodname\xa1\x06reboot\x00Su'
    b'\xa0\x0c{"delay": 1}'
)

# Node -> method response (uuid correlation-id, int IoThub-status)
METHOD_RESPONSE = (
    b'\x00SpE\x00Ss\xd0\x00\x00\x00\x1a\x00\x00\x00\x06@@@@@\x98\x8b\x8cpL\x88{O\xa8\xae'
    b'\xbdF\xf6\xd5\x1a18\x00St\xd1\x00\x00\x00\x18\x00\x00\x00\x02\xa1\rIoThub-statusq'
    b'\x00\x00\x00\xc8\x00Su\xa0\r{"done":true}'
)

