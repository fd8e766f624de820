"""The local hub's Microsoft Entra ID stand-in: an OpenID Connect authority that issues
access tokens for IoT Hub, and the one check of a Bearer token every transport uses.

Real IoT Hub takes OAuth 2.0 access tokens from Entra ID for the resource
``https://iothubs.azure.net`` (scope ``https://iothubs.azure.net/.default``, the scope
``azure-iot-hub``'s ``from_token_credential`` asks for), and authorizes each service
operation by the caller's data-plane role assignments (see :mod:`.roles`).

Here the hub is its own authority, so the unmodified ``azure-identity`` credentials
(pointed at ``https://<host>:<rest port>`` with instance discovery off) sign in offline:

- one tenant (a per-hub GUID), one confidential test client (id and secret, for the
  client-credentials flow of ``ClientSecretCredential``) and one test user (for the
  device-code flow of ``DeviceCodeCredential``; a device code is approved on the
  verification page, or at once when the hub runs with auto-approval for scripts);
- tokens are RS256 JWTs signed with the hub's own key (kept in its data folder, 0600),
  published in the JWKS; refresh tokens are signed JWTs too, so they outlive a restart.

:meth:`EntraAuthority.verify_access_token` is the single validation: signature (the
hub's key), audience, issuer, expiry and not-before. REST calls it for
``Authorization: Bearer``, AMQP CBS for ``jwt`` put-tokens.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from twin_explorer.localhub.errors import AuthError, HubError
from twin_explorer.localhub.store.sqlite import Store

IOTHUB_RESOURCE = "https://iothubs.azure.net"
IOTHUB_SCOPE = IOTHUB_RESOURCE + "/.default"
ACCESS_TOKEN_SECONDS = 3600
REFRESH_TOKEN_SECONDS = 90 * 24 * 3600
DEVICE_CODE_SECONDS = 900
DEVICE_CODE_INTERVAL = 1  # seconds a client waits between polls (real Entra: 5)
CLOCK_SKEW = 60  # seconds of clock difference forgiven on exp and nbf
TEST_USER_NAME = "tester@localhub.test"
TEST_CLIENT_NAME = "Twin Explorer test client"
_MAX_PENDING_CODES = 256
_OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})


class OAuthError(Exception):
    """An OAuth 2.0 error answer (RFC 6749 5.2) with Entra's AADSTS wording."""

    def __init__(self, error: str, description: str, code: int = 0, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.code = code
        self.status = status

    def to_json(self) -> dict[str, Any]:
        text = f"AADSTS{self.code}: {self.description}" if self.code else self.description
        return {
            "error": self.error,
            "error_description": text,
            "error_codes": [self.code] if self.code else [],
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        }


@dataclass(frozen=True)
class Principal:
    """Who a valid access token speaks for."""

    object_id: str
    name: str  # the user's sign-in name, or the application's display name
    tenant_id: str
    app_id: str
    is_user: bool


@dataclass(frozen=True)
class _AuthCode:
    client_id: str
    redirect_uri: str
    challenge: str  # PKCE S256
    nonce: str | None
    scope: str
    expires: float


@dataclass
class _DeviceCode:
    device_code: str
    user_code: str
    client_id: str
    scope: str
    expires: float
    approved_by: str | None = None  # the user's object id once approved


def new_signing_key() -> bytes:
    """A fresh RSA key as unencrypted PKCS#8 PEM (the file is 0600 in a 0700 folder)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_json(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class EntraAuthority:
    """Tenant, test client and user, signing key, and token issue and validation."""

    def __init__(
        self,
        store: Store,
        signing_key_pem: Callable[[], bytes],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._clock = clock
        # The key is read (or made: ~0.1 s) when first needed: most hubs never sign in.
        self._key_source = signing_key_pem
        self.tenant_id = self._meta("entra_tenant_id", lambda: str(uuid.uuid4()))
        self.client_id = self._meta("entra_test_client_id", lambda: str(uuid.uuid4()))
        self._client_secret = self._meta("entra_test_client_secret", _new_secret)
        self.client_object_id = self._meta("entra_test_client_oid", lambda: str(uuid.uuid4()))
        self.user_object_id = self._meta("entra_test_user_oid", lambda: str(uuid.uuid4()))
        self.user_name = TEST_USER_NAME
        self.base_url = "https://localhost"  # the runtime sets the real one once bound
        self.auto_approve = False  # approve device codes for the test user at once
        self.token_lifetime: float = ACCESS_TOKEN_SECONDS  # shorter in refresh tests
        self._codes: dict[str, _DeviceCode] = {}
        self._auth_codes: dict[str, _AuthCode] = {}

    @functools.cached_property
    def _key(self) -> rsa.RSAPrivateKey:
        key = serialization.load_pem_private_key(self._key_source(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the hub's token signing key is not an RSA key")
        return key

    @functools.cached_property
    def _public(self) -> rsa.RSAPublicKey:
        return self._key.public_key()

    @functools.cached_property
    def key_id(self) -> str:
        """The JWKS ``kid``: a digest of the public key."""
        der = self._public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.urlsafe_b64encode(hashlib.sha256(der).digest()[:16]).decode().rstrip("=")

    def _meta(self, key: str, make: Callable[[], str]) -> str:
        value = self._store.get_meta(key)
        if value is None:
            value = make()
            with self._store.transaction():
                self._store.set_meta(key, value)
        return value

    @property
    def client_secret(self) -> str:
        """The test client's secret: for the ready line, never for a log."""
        return self._client_secret

    # -- what the authority publishes ---------------------------------------------------

    @property
    def authority_url(self) -> str:
        """What ``authority=`` plus ``tenant_id=`` address: ``<base>/<tenant>``."""
        return f"{self.base_url}/{self.tenant_id}"

    @property
    def issuer(self) -> str:
        return f"{self.authority_url}/v2.0"

    def endpoint(self, name: str) -> str:
        return f"{self.authority_url}/{name}"

    def discovery(self) -> dict[str, Any]:
        """``/<tenant>/v2.0/.well-known/openid-configuration``: what msal reads."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.endpoint("oauth2/v2.0/authorize"),
            "token_endpoint": self.endpoint("oauth2/v2.0/token"),
            "device_authorization_endpoint": self.endpoint("oauth2/v2.0/devicecode"),
            "jwks_uri": self.endpoint("discovery/v2.0/keys"),
            "response_types_supported": ["code", "id_token", "code id_token"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "grant_types_supported": [
                "authorization_code",
                "client_credentials",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:device_code",
            ],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "oid", "tid", "name"],
            "tenant_region_scope": "NA",
            "cloud_instance_name": "localhub",
        }

    def jwks(self) -> dict[str, Any]:
        numbers = self._public.public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "alg": "RS256",
                    "kid": self.key_id,
                    "n": _b64url_uint(numbers.n),
                    "e": _b64url_uint(numbers.e),
                }
            ]
        }

    # -- issuing ------------------------------------------------------------------------

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.key_id})

    def access_token(
        self,
        principal: Principal,
        *,
        audience: str = IOTHUB_RESOURCE,
        lifetime: float | None = None,
        not_before: float | None = None,
        issuer: str | None = None,
    ) -> str:
        """An access token for ``principal`` (tests vary the audience and times)."""
        now = int(self._clock())
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": issuer or self.issuer,
            "iat": now,
            "nbf": int(not_before if not_before is not None else now),
            "exp": int(now + (self.token_lifetime if lifetime is None else lifetime)),
            "oid": principal.object_id,
            "sub": principal.object_id,
            "tid": principal.tenant_id,
            "appid": principal.app_id,
            "azp": principal.app_id,
            "ver": "2.0",
            "idtyp": "user" if principal.is_user else "app",
            "uti": secrets.token_urlsafe(16),  # each token its own, as Entra's are
        }
        if principal.is_user:
            claims["upn"] = claims["preferred_username"] = principal.name
            claims["name"] = principal.name
        else:
            claims["app_displayname"] = principal.name
        return self._sign(claims)

    def test_client(self) -> Principal:
        return Principal(
            self.client_object_id, TEST_CLIENT_NAME, self.tenant_id, self.client_id, False
        )

    def test_user(self, app_id: str) -> Principal:
        return Principal(self.user_object_id, self.user_name, self.tenant_id, app_id, True)

    def _token_answer(
        self, principal: Principal, scope: str, *, user: bool, nonce: str | None = None
    ) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": scope,
            "expires_in": int(self.token_lifetime),
            "ext_expires_in": int(self.token_lifetime),
            "access_token": self.access_token(principal),
        }
        if user:
            now = int(self._clock())
            answer["refresh_token"] = self._sign(
                {
                    "aud": self.issuer + "/refresh",
                    "iss": self.issuer,
                    "iat": now,
                    "exp": now + REFRESH_TOKEN_SECONDS,
                    "oid": principal.object_id,
                    "azp": principal.app_id,
                    "scope": scope,
                }
            )
            id_claims: dict[str, Any] = {"nonce": nonce} if nonce else {}
            answer["id_token"] = self._sign(
                id_claims
                | {
                    "aud": principal.app_id,
                    "iss": self.issuer,
                    "iat": now,
                    "nbf": now,
                    "exp": now + int(self.token_lifetime),
                    "sub": principal.object_id,
                    "oid": principal.object_id,
                    "tid": principal.tenant_id,
                    "name": principal.name,
                    "preferred_username": principal.name,
                    "ver": "2.0",
                }
            )
            answer["client_info"] = _b64url_json(
                {"uid": principal.object_id, "utid": principal.tenant_id}
            )
        return answer

    def token(self, form: dict[str, str]) -> dict[str, Any]:
        """The token endpoint: client credentials, device code and refresh token grants."""
        grant = form.get("grant_type", "")
        client_id = form.get("client_id", "")
        if not client_id:
            raise OAuthError("invalid_request", "The request must name a client_id.", 900144)
        if grant == "client_credentials":
            scope = _resource_scope(form.get("scope", ""))
            self._check_client(client_id, form.get("client_secret"))
            return self._token_answer(self.test_client(), scope, user=False)
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            return self._redeem_device_code(client_id, form.get("device_code", ""))
        if grant == "refresh_token":
            return self._refresh(client_id, form.get("refresh_token", ""), form.get("scope", ""))
        if grant == "authorization_code":
            return self._redeem_auth_code(client_id, form)
        raise OAuthError(
            "unsupported_grant_type", f"The grant type {grant!r} is not supported.", 70003
        )

    def _check_client(self, client_id: str, secret: str | None) -> None:
        if client_id != self.client_id:
            raise OAuthError(
                "unauthorized_client",
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.tenant_id}'.",
                700016,
            )
        if not secret or not hmac.compare_digest(secret, self._client_secret):
            raise OAuthError(
                "invalid_client",
                f"Invalid client secret provided for app '{client_id}'.",
                7000215,
                status=401,
            )

    # -- the authorization code flow (interactive browser sign-in, PKCE) ----------------

    def authorize(self, query: dict[str, str]) -> str:
        """Check an authorization request; its code for the test user (who signs in on
        the hub's page, or at once with auto-approval). Only loopback redirects, as for
        a desktop app's public client, and PKCE with S256."""
        client_id = query.get("client_id", "")
        redirect = query.get("redirect_uri", "")
        if not client_id:
            raise OAuthError("invalid_request", "The request must name a client_id.", 900144)
        host = urlsplit(redirect)
        if host.scheme != "http" or host.hostname not in ("localhost", "127.0.0.1", "::1"):
            raise OAuthError(
                "invalid_request",
                f"The redirect URI '{redirect}' is not a loopback address of this machine.",
                50011,
            )
        if query.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "Only response_type=code.", 700054)
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            raise OAuthError("invalid_request", "PKCE with S256 is required.", 9002325)
        scope = _resource_scope(query.get("scope", ""))
        now = self._clock()
        self._auth_codes = self._live(self._auth_codes)
        code = secrets.token_urlsafe(32)
        self._auth_codes[code] = _AuthCode(
            client_id,
            redirect,
            query["code_challenge"],
            query.get("nonce"),
            scope,
            now + DEVICE_CODE_SECONDS,
        )
        return code

    def _live(self, codes: dict[str, Any]) -> dict[str, Any]:
        """Pending sign-ins that have not expired; slow_down when that is still too many
        (each costs memory until it expires)."""
        now = self._clock()
        live = {key: code for key, code in codes.items() if code.expires > now}
        if len(live) >= _MAX_PENDING_CODES:
            raise OAuthError("slow_down", "Too many sign-ins are waiting; try again later.")
        return live

    def forget_auth_code(self, code: str) -> None:
        self._auth_codes.pop(code, None)

    def _redeem_auth_code(self, client_id: str, form: dict[str, str]) -> dict[str, Any]:
        found = self._auth_codes.pop(form.get("code", ""), None)
        if (
            found is None
            or found.expires <= self._clock()
            or found.client_id != client_id
            or found.redirect_uri != form.get("redirect_uri")
        ):
            raise OAuthError("invalid_grant", "The authorization code is not valid.", 70000)
        verifier = form.get("code_verifier", "").encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
        if not hmac.compare_digest(digest.decode(), found.challenge):
            raise OAuthError("invalid_grant", "The PKCE code verifier does not match.", 501481)
        user = self.test_user(client_id)
        return self._token_answer(user, found.scope, user=True, nonce=found.nonce)

    # -- the device code flow -----------------------------------------------------------

    def start_device_code(self, form: dict[str, str]) -> dict[str, Any]:
        client_id = form.get("client_id", "")
        if not client_id:
            raise OAuthError("invalid_request", "The request must name a client_id.", 900144)
        scope = _resource_scope(form.get("scope", ""))
        now = self._clock()
        self._codes = self._live(self._codes)
        user_code = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(9))
        code = _DeviceCode(
            secrets.token_urlsafe(32), user_code, client_id, scope, now + DEVICE_CODE_SECONDS
        )
        if self.auto_approve:
            code.approved_by = self.user_object_id
        self._codes[code.device_code] = code
        verify = self.endpoint("oauth2/deviceauth")
        return {
            "device_code": code.device_code,
            "user_code": user_code,
            "verification_uri": verify,
            "expires_in": DEVICE_CODE_SECONDS,
            "interval": DEVICE_CODE_INTERVAL,
            "message": f"To sign in, open {verify} and enter the code {user_code} "
            "to authenticate.",
        }

    def approve_user_code(self, user_code: str) -> bool:
        """The test user signs in on the verification page; False for no such code."""
        wanted = user_code.strip().upper()
        now = self._clock()
        for code in self._codes.values():
            if code.expires > now and hmac.compare_digest(code.user_code, wanted):
                code.approved_by = self.user_object_id
                return True
        return False

    def _redeem_device_code(self, client_id: str, device_code: str) -> dict[str, Any]:
        code = self._codes.get(device_code)
        if code is None or code.client_id != client_id:
            raise OAuthError("invalid_grant", "The device code is not valid.", 70000)
        if code.expires <= self._clock():
            del self._codes[device_code]
            raise OAuthError("expired_token", "The device code expired.", 70020)
        if code.approved_by is None:
            raise OAuthError(
                "authorization_pending", "The user has not yet signed in.", 70016
            )
        del self._codes[device_code]
        return self._token_answer(self.test_user(client_id), code.scope, user=True)

    def _refresh(self, client_id: str, refresh_token: str, scope: str) -> dict[str, Any]:
        try:
            claims = jwt.decode(
                refresh_token,
                self._public,
                algorithms=["RS256"],
                audience=self.issuer + "/refresh",
                issuer=self.issuer,
                options={"require": ["exp", "iat", "oid"]},
            )
        except jwt.PyJWTError:
            raise OAuthError(
                "invalid_grant", "The refresh token is not valid; sign in again.", 70000
            ) from None
        if claims.get("azp") != client_id or claims["oid"] != self.user_object_id:
            raise OAuthError("invalid_grant", "The refresh token is for another client.", 70000)
        wanted = _resource_scope(scope) if scope else claims.get("scope", IOTHUB_SCOPE)
        return self._token_answer(self.test_user(client_id), wanted, user=True)

    # -- validation: the one check of a Bearer token ------------------------------------

    def verify_access_token(self, token: str) -> Principal:
        """The principal a JWT access token speaks for, or AuthError saying what is wrong:
        signature (this hub's key), audience (IoT Hub), issuer (this authority), expiry
        and not-before. Used by REST (``Bearer``) and AMQP CBS (``jwt``) alike."""
        try:
            claims = jwt.decode(
                token.strip(),
                self._public,
                algorithms=["RS256"],
                audience=[IOTHUB_RESOURCE, IOTHUB_RESOURCE + "/"],
                issuer=self.issuer,
                # Times are checked below against the hub's clock, not the machine's.
                options={
                    "require": ["exp", "nbf", "iat", "aud", "iss", "oid"],
                    "verify_exp": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidAudienceError:
            raise AuthError(
                f"The access token is not for IoT Hub (aud {IOTHUB_RESOURCE})."
            ) from None
        except jwt.InvalidIssuerError:
            raise AuthError(f"The access token was not issued by {self.issuer}.") from None
        except jwt.InvalidSignatureError:
            raise AuthError("The access token's signature does not verify.") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"The access token has no {exc.claim!r} claim.") from None
        except jwt.PyJWTError:
            raise AuthError("The access token is not a valid JWT.") from None
        now = self._clock()
        if not isinstance(claims["exp"], int | float) or not isinstance(claims["nbf"], int | float):
            raise AuthError("The access token's exp and nbf must be numbers.")
        if now > claims["exp"] + CLOCK_SKEW:
            raise AuthError("The access token expired; get a new one.")
        if now < claims["nbf"] - CLOCK_SKEW:
            raise AuthError("The access token is not valid yet (nbf).")
        is_user = claims.get("idtyp") == "user" or "upn" in claims
        name = (
            claims.get("upn") or claims.get("preferred_username")
            if is_user
            else claims.get("app_displayname")
        )
        return Principal(
            str(claims["oid"]),
            str(name or claims["oid"]),
            str(claims.get("tid", "")),
            str(claims.get("appid") or claims.get("azp") or ""),
            is_user,
        )


def _new_secret() -> str:
    return secrets.token_urlsafe(30)


def _resource_scope(scope: str) -> str:
    """The IoT Hub scope among the requested ones; invalid_scope otherwise."""
    parts = [part for part in scope.split() if part not in _OIDC_SCOPES]
    if parts == [IOTHUB_SCOPE] or parts == [IOTHUB_RESOURCE + "//.default"]:
        return IOTHUB_SCOPE
    raise OAuthError(
        "invalid_scope",
        f"The scope '{scope}' is not valid here: this authority issues tokens for "
        f"'{IOTHUB_SCOPE}' only.",
        1002012,
    )


def unauthorized_principal(principal: Principal, method: str, path: str) -> HubError:
    """IoT Hub's answer when no role assignment allows the operation: 401
    ``IotHubUnauthorized``, naming the principal, method and path."""
    return HubError(
        401,
        "IotHubUnauthorized",
        401003,
        f"Principal {principal.name} is not authorized for {method} on {path} due to no "
        "assigned permissions",
    )


def resolve_principal(store: Store, text: str) -> tuple[str, str]:
    """(object id, display name) of a principal typed as its object id, or one of the
    hub's test principals by name: ``test-client`` (or its client id) and ``test-user``
    (or its sign-in name). ValueError saying what is accepted otherwise."""
    wanted = text.strip()
    client_id = store.get_meta("entra_test_client_id")
    if wanted.lower() in ("test-client", TEST_CLIENT_NAME.lower()) or wanted == client_id:
        found = store.get_meta("entra_test_client_oid")
        if found:
            return found, TEST_CLIENT_NAME
    if wanted.lower() in ("test-user", TEST_USER_NAME):
        found = store.get_meta("entra_test_user_oid")
        if found:
            return found, TEST_USER_NAME
    try:
        return str(uuid.UUID(wanted)), wanted
    except ValueError:
        raise ValueError(
            f"{text!r} is not an object id (a GUID), 'test-client' or 'test-user'."
        ) from None
