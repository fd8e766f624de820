"""``twin-explorer hub certificates add|list|verify|delete``: a running local hub's CAs.

Talks to the hub's REST admin routes (``/_localhub/certificates``) with a service
connection string read from stdin or an environment variable, never from the command
line. Verification is IoT Hub's proof of possession: ``verify NAME --key CA.key`` fetches
a verification code and signs a certificate with that CN with the CA's key, here; or
``verify NAME`` prints the code and ``verify NAME --proof FILE`` uploads a certificate
made elsewhere. On Azure these steps are in the portal (or ARM), not here.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TextIO

from twin_explorer import paths
from twin_explorer.connection import certificates as certs
from twin_explorer.connection.hub_certificates import (
    AZURE_PORTAL_STEPS,
    HubCertificates,
    HubCertificatesError,
)
from twin_explorer.connection.secret_args import (
    add_connection_string_source,
    read_connection_string,
)

EXIT_FAILED, EXIT_USAGE = 1, 2


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "certificates",
        help="manage the CA certificates of a running local hub",
        description=(
            "Upload, verify (proof of possession), list and delete CA certificates on a "
            "running local hub. Devices whose certificates chain to a verified CA may "
            "connect with X.509. On Azure IoT Hub this is done in the portal: " + AZURE_PORTAL_STEPS
        ),
    )
    add_connection_string_source(parser, "hub's service")
    parser.add_argument(
        "--ca",
        metavar="PEM",
        help="the local hub's CA certificate (default: the one in the app's data folder)",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="list the hub's CA certificates")
    add = actions.add_parser("add", help="upload a CA certificate (PEM)")
    add.add_argument("name", help="1 to 64 letters, digits, '-', '.' or '_'")
    add.add_argument("file", type=Path, help="the CA certificate, PEM")
    add.add_argument(
        "--verified", action="store_true", help="mark it verified on upload (no proof)"
    )
    verify = actions.add_parser(
        "verify", help="prove possession of a CA's key; without options, print the code"
    )
    verify.add_argument("name")
    how = verify.add_mutually_exclusive_group()
    how.add_argument("--key", type=Path, help="the CA's private key (PEM, unencrypted)")
    how.add_argument(
        "--proof", type=Path, help="a certificate with CN = the code, signed by the CA's key"
    )
    delete = actions.add_parser("delete", help="delete a CA certificate")
    delete.add_argument("name")
    parser.set_defaults(func=run)


def _default_ca() -> str | None:
    ca = paths.data_dir() / "localhub" / "tls" / "ca.pem"
    return str(ca) if ca.exists() else None


def run(args: argparse.Namespace, *, stdin: TextIO | None = None) -> int:
    connection_string = read_connection_string(args, stdin or sys.stdin)
    if connection_string is None:
        print("twin-explorer hub certificates: no connection string given", file=sys.stderr)
        return EXIT_USAGE
    try:
        client = HubCertificates(connection_string, args.ca or _default_ca())
        return asyncio.run(_act(client, args))
    except (HubCertificatesError, OSError, ValueError) as exc:
        print(f"twin-explorer hub certificates: {exc}", file=sys.stderr)
        return EXIT_FAILED


async def _act(client: HubCertificates, args: argparse.Namespace) -> int:
    if args.action == "list":
        for ca in await client.list():
            state = "verified" if ca.is_verified else "unverified"
            print(f"{ca.name}\t{state}\t{ca.thumbprint}\t{ca.expiry}\t{ca.subject}")
    elif args.action == "add":
        ca = await client.add(args.name, args.file.read_text(), verified=args.verified)
        print(f"added {ca.name} ({'verified' if ca.is_verified else 'unverified'})")
    elif args.action == "delete":
        await client.delete(args.name)
        print(f"deleted {args.name}")
    elif args.proof is not None:
        await client.verify(args.name, args.proof.read_text())
        print(f"verified {args.name}")
    elif args.key is not None:
        code = await client.verification_code(args.name)
        (held,) = [ca for ca in await client.list() if ca.name == args.name]
        issuer = certs.Issued(certs.load_cert(held.pem), certs.load_key(args.key.read_bytes()))
        await client.verify(args.name, certs.proof_of_possession(issuer, code).cert_pem)
        print(f"verified {args.name}")
    else:
        code = await client.verification_code(args.name)
        print(code)
        print(
            f"Make a certificate with CN={code} signed by the CA's key, then run "
            f"'verify {args.name} --proof FILE'.",
            file=sys.stderr,
        )
    return 0
