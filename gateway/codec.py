"""What Temporal stores is ciphertext: a payload codec (AES-256-GCM) on every client and worker.

Every payload the SDK sends (workflow inputs, activity arguments and results, signals, updates
and their results, queries, memos, the workflow's summary and details, and, with
`DefaultFailureConverterWithEncodedAttributes`, failure messages and stack traces) is
serialised, encrypted with the key `APPEALS_PAYLOAD_KEY_ID` names, and sent as a payload whose
metadata says `encoding: binary/encrypted` and `encryption-key-id: <id>`. Anyone reading
Temporal's database, or its API without the key, sees ciphertext; search attributes are not
payloads and stay in the clear, so they carry IDs and codes only (workflows/search_attributes.py).

Keys come from settings (core/settings.py): `APPEALS_PAYLOAD_KEYS`, a JSON object from key id to
the base64 of 32 random bytes (`appeals payload-key` makes one), and `APPEALS_PAYLOAD_KEY_ID`,
the one new payloads are encrypted with (default: the only key). Rotation is by key id: add a
new key, make it the one to encrypt with, and keep the old ids for as long as a history that
used them may be read (an appeal runs for weeks; the namespace's retention after that).

A payload without this encoding passes through `decode` untouched, so histories written before
encryption (and tests/histories/) still replay and read. A payload with it whose key id is not
configured, or whose ciphertext does not authenticate, is an error: never silently ciphertext.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import History
from temporalio.client import WorkflowHistory
from temporalio.converter import PayloadCodec

from core.settings import Environment, Settings

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # the GCM standard nonce; random per payload
KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class PayloadKeyError(ValueError):
    """The payload keys are missing where they are required, or unusable."""


class UnknownPayloadKey(PayloadKeyError):
    """A payload was encrypted with a key id this process does not have."""


def new_key() -> str:
    """A fresh key: the base64 of 32 random bytes, as APPEALS_PAYLOAD_KEYS holds it."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def parse_key(key_id: str, encoded: str) -> bytes:
    """The key's bytes; PayloadKeyError naming the key id if it is not base64 of 32 bytes."""
    if not KEY_ID.fullmatch(key_id):
        raise PayloadKeyError(
            f"payload key id {key_id!r}: use 1 to 64 letters, digits, '.', '_' or '-' (it is stored "
            "in every payload's metadata)"
        )
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PayloadKeyError(f"payload key {key_id!r} is not valid base64") from exc
    if len(raw) != KEY_BYTES:
        raise PayloadKeyError(
            f"payload key {key_id!r} is {len(raw)} bytes; AES-256 needs {KEY_BYTES} "
            "(generate one with `appeals payload-key`)"
        )
    return raw


@dataclass(frozen=True)
class PayloadKeys:
    """The keys by id, and the id new payloads are encrypted with."""

    keys: Mapping[str, bytes]
    encrypt_with: str

    def __post_init__(self) -> None:
        if self.encrypt_with not in self.keys:
            raise PayloadKeyError(
                f"the payload key to encrypt with, {self.encrypt_with!r}, is not among the keys"
            )

    @classmethod
    def generate(cls, key_id: str = "k1") -> PayloadKeys:
        return cls({key_id: parse_key(key_id, new_key())}, key_id)

    @classmethod
    def from_settings(cls, settings: Settings) -> PayloadKeys | None:
        """The configured keys; None when none are configured."""
        if not settings.payload_keys:
            return None
        keys = {
            key_id: parse_key(key_id, secret.get_secret_value())
            for key_id, secret in settings.payload_keys.items()
        }
        if settings.payload_key_id:  # unset or empty (compose's `${...:-}`): the only key
            return cls(keys, settings.payload_key_id)
        if len(keys) > 1:
            raise PayloadKeyError(
                "APPEALS_PAYLOAD_KEY_ID must name the key to encrypt with when APPEALS_PAYLOAD_KEYS "
                "holds more than one"
            )
        return cls(keys, next(iter(keys)))


class AesGcmCodec(PayloadCodec):
    """Encrypts each payload whole (metadata and data) with AES-256-GCM: a random 96-bit nonce
    per payload, the key id as associated data (a payload cannot be passed off as another key's).
    Decrypts with whichever configured key the payload names."""

    def __init__(self, keys: PayloadKeys) -> None:
        super().__init__()
        self.keys = keys
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        key_id = self.keys.encrypt_with
        cipher = self._ciphers[key_id]
        encoded = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), key_id.encode())
            encoded.append(
                Payload(
                    metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()},
                    data=nonce + sealed,
                )
            )
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decode_one(payload) for payload in payloads]

    def decode_one(self, payload: Payload) -> Payload:
        if not is_encrypted(payload):
            return payload  # written without this codec: as it is
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            known = ", ".join(sorted(self._ciphers))
            raise UnknownPayloadKey(
                f"a payload is encrypted with key id {key_id!r}, which is not among this process's "
                f"APPEALS_PAYLOAD_KEYS ({known}): keep every key id still in use configured"
            )
        data = payload.data
        try:
            plain = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], key_id.encode())
        except InvalidTag as exc:
            raise PayloadKeyError(
                f"a payload under key id {key_id!r} does not decrypt: the key configured under that id "
                "is not the one it was encrypted with, or the payload was altered"
            ) from exc
        return Payload.FromString(plain)


def is_encrypted(payload: Payload) -> bool:
    return payload.metadata.get("encoding") == ENCODING


def payload_codec(settings: Settings) -> AesGcmCodec | None:
    """The codec for the configured keys; None without keys, which production refuses.

    Not a Settings validator: production settings are also built where Temporal is never
    reached (the web pages, tools). Every process that talks to Temporal builds its client
    through here (gateway/temporal.py `data_converter`), so a production API, worker, reconciler
    or codec server without keys refuses to start."""
    keys = PayloadKeys.from_settings(settings)
    if keys is None:
        if settings.environment is Environment.PRODUCTION:
            raise PayloadKeyError(
                "APPEALS_PAYLOAD_KEYS must be set in production: Temporal stores every workflow "
                "input, activity result, signal and update, and without a key it stores them in "
                'plain text. Set it to a JSON object such as {"k1": "<key>"} with a key from '
                "`appeals payload-key`."
            )
        return None
    return AesGcmCodec(keys)


# -- the local stack's key ------------------------------------------------------------------


def dev_keys(path: Path) -> tuple[str, dict[str, str]]:
    """The local stack's payload key (id, {id: base64}), made on first use and kept in `path`
    (readable by its owner only), so a restarted stack still reads the histories it wrote."""
    if path.exists():
        stored = json.loads(path.read_text(encoding="utf-8"))
        return str(stored["key_id"]), {str(k): str(v) for k, v in stored["keys"].items()}
    key_id = f"dev-{secrets.token_hex(4)}"
    keys = {key_id: new_key()}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".new")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump({"key_id": key_id, "keys": keys}, file)
    partial.replace(path)
    return key_id, keys


# -- whole histories ------------------------------------------------------------------------

Transform = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]
_PAYLOAD = Payload.DESCRIPTOR.full_name
# Never encoded by the SDK: search attributes are indexed by the server, headers are sent as
# they are (the client's default header codec behaviour).
_SKIPPED = frozenset({"temporal.api.common.v1.SearchAttributes", "temporal.api.common.v1.Header"})


async def transform_payloads(message: Message, transform: Transform) -> None:
    """Applies `transform` to every payload in `message` and the messages it holds, in place,
    except search attributes and headers."""
    for field, value in message.ListFields():
        kind = field.message_type
        if kind is None or kind.full_name in _SKIPPED:
            continue  # a scalar, or never encoded
        if kind.GetOptions().map_entry:
            held = kind.fields_by_name["value"].message_type
            if held is None:
                continue
            for key in list(value):
                if held.full_name == _PAYLOAD:
                    value[key].CopyFrom((await transform([value[key]]))[0])
                else:
                    await transform_payloads(value[key], transform)
        elif kind.full_name == _PAYLOAD:
            if field.is_repeated:
                replaced = await transform(list(value))
                del value[:]
                value.extend(replaced)
            else:
                value.CopyFrom((await transform([value]))[0])
        elif field.is_repeated:
            for item in value:
                await transform_payloads(item, transform)
        else:
            await transform_payloads(value, transform)


async def _history_with(history: WorkflowHistory, transform: Transform) -> WorkflowHistory:
    proto = History(events=history.events)  # a copy: the given history is left as it is
    await transform_payloads(proto, transform)
    return WorkflowHistory(history.workflow_id, list(proto.events))


async def decode_history(history: WorkflowHistory, codec: PayloadCodec) -> WorkflowHistory:
    """The history as it reads with the codec: every payload decoded (what the Web UI shows with
    the codec server, and what scripts/export_histories.py saves)."""
    return await _history_with(history, codec.decode)


async def encode_history(history: WorkflowHistory, codec: PayloadCodec) -> WorkflowHistory:
    """The history as the codec would have stored it: every payload encoded (for a replay test
    of an encrypted history from a saved plain one)."""
    return await _history_with(history, codec.encode)
