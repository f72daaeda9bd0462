"""The payload codec (gateway/codec.py): AES-256-GCM per payload, the key id in the metadata,
plain payloads passed through, rotation by key id, keys from settings, production refusing to
run without them, and the local stack's key kept across restarts."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter

from core.settings import Environment, Settings
from gateway.codec import (
    ENCODING,
    KEY_ID_METADATA,
    AesGcmCodec,
    PayloadKeyError,
    PayloadKeys,
    UnknownPayloadKey,
    dev_keys,
    is_encrypted,
    new_key,
    payload_codec,
)
from gateway.temporal import converter_with, data_converter
from workflows.messages import AppealInput

SECRET = "acct-secret-4711"
STRONG_JWT = "9f2c6e1a7b3d4f5e8a0c2b4d6e8f1a3c5e7b9d0f2a4c6e8b"


def keys(**encoded: str) -> dict[str, SecretStr]:
    return {key_id: SecretStr(key) for key_id, key in encoded.items()}


def plain(value: object) -> Payload:
    return pydantic_data_converter.payload_converter.to_payloads([value])[0]


async def test_a_payload_is_ciphertext_with_its_key_id_and_decodes_back() -> None:
    codec = AesGcmCodec(PayloadKeys.generate("k1"))
    original = plain({"account_id": SECRET, "note": "Please add a letter from your employer."})
    (sealed,) = await codec.encode([original])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID_METADATA] == b"k1"
    assert set(sealed.metadata) == {"encoding", KEY_ID_METADATA}  # json/plain is inside
    assert SECRET.encode() not in sealed.SerializeToString()
    assert b"employer" not in sealed.SerializeToString()
    assert await codec.decode([sealed]) == [original]
    # A fresh nonce each time: the same value never gives the same ciphertext.
    (again,) = await codec.encode([original])
    assert again.data != sealed.data


async def test_the_data_converter_round_trips_workflow_inputs() -> None:
    converter = converter_with(AesGcmCodec(PayloadKeys.generate()))
    value = AppealInput(appeal_id="a-1", customer_id="c-1", account_id=SECRET, requested_limit_minor=9)
    payloads = await converter.encode([value])
    assert all(is_encrypted(p) for p in payloads)
    assert await converter.decode(payloads, [AppealInput]) == [value]


async def test_a_payload_written_without_the_codec_passes_through() -> None:
    codec = AesGcmCodec(PayloadKeys.generate())
    old = plain({"account_id": SECRET})
    assert await codec.decode([old]) == [old]


async def test_rotation_new_key_encrypts_and_both_decode() -> None:
    k1, k2 = new_key(), new_key()
    first = AesGcmCodec(PayloadKeys.from_settings(Settings(payload_keys=keys(k1=k1))) or _none())
    (by_k1,) = await first.encode([plain("written under k1")])

    rotated_settings = Settings(payload_keys=keys(k1=k1, k2=k2), payload_key_id="k2")
    rotated = payload_codec(rotated_settings)
    assert rotated is not None
    (by_k2,) = await rotated.encode([plain("written under k2")])
    assert by_k2.metadata[KEY_ID_METADATA] == b"k2"
    decoded = await rotated.decode([by_k1, by_k2])
    assert [pydantic_data_converter.payload_converter.from_payload(p) for p in decoded] == [
        "written under k1",
        "written under k2",
    ]
    # Once k1 is dropped, what it wrote can no longer be read: keep old ids configured.
    k2_only = AesGcmCodec(PayloadKeys.from_settings(Settings(payload_keys=keys(k2=k2))) or _none())
    assert await k2_only.decode([by_k2]) == [plain("written under k2")]
    with pytest.raises(UnknownPayloadKey, match="'k1'"):
        await k2_only.decode([by_k1])


async def test_an_altered_payload_or_a_swapped_key_id_does_not_decode() -> None:
    k1, k2 = new_key(), new_key()
    codec = AesGcmCodec(
        PayloadKeys.from_settings(Settings(payload_keys=keys(k1=k1, k2=k2), payload_key_id="k1")) or _none()
    )
    (sealed,) = await codec.encode([plain(SECRET)])
    altered = Payload()
    altered.CopyFrom(sealed)
    altered.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    with pytest.raises(PayloadKeyError, match="does not decrypt"):
        await codec.decode([altered])
    # The key id is authenticated: relabelled, the payload is refused, not decrypted with k2.
    relabelled = Payload()
    relabelled.CopyFrom(sealed)
    relabelled.metadata[KEY_ID_METADATA] = b"k2"
    with pytest.raises(PayloadKeyError, match="does not decrypt"):
        await codec.decode([relabelled])
    # The same key under another id does not decrypt it either (the id is associated data).
    same_key = AesGcmCodec(PayloadKeys.from_settings(Settings(payload_keys=keys(k2=k1))) or _none())
    with pytest.raises(PayloadKeyError):
        await same_key.decode([relabelled])


def _none() -> PayloadKeys:
    raise AssertionError("keys were configured")


@pytest.mark.parametrize(
    ("configured", "key_id", "message"),
    [
        ({"k1": "not base64!"}, None, "not valid base64"),
        ({"k1": base64.b64encode(b"short").decode()}, None, "5 bytes; AES-256 needs 32"),
        ({"bad id": new_key()}, None, "letters, digits"),
        ({"k1": new_key(), "k2": new_key()}, None, "APPEALS_PAYLOAD_KEY_ID must name"),
        ({"k1": new_key()}, "k9", "'k9', is not among the keys"),
    ],
)
def test_unusable_keys_are_refused_naming_what_is_wrong(
    configured: dict[str, str], key_id: str | None, message: str
) -> None:
    settings = Settings(payload_keys=keys(**configured), payload_key_id=key_id)
    with pytest.raises(PayloadKeyError, match=message):
        payload_codec(settings)


def test_keys_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    k1, k2 = new_key(), new_key()
    monkeypatch.setenv("APPEALS_PAYLOAD_KEYS", json.dumps({"2026-01": k1, "2026-06": k2}))
    monkeypatch.setenv("APPEALS_PAYLOAD_KEY_ID", "2026-06")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    parsed = PayloadKeys.from_settings(settings)
    assert parsed is not None and parsed.encrypt_with == "2026-06"
    assert parsed.keys == {"2026-01": base64.b64decode(k1), "2026-06": base64.b64decode(k2)}
    assert k1 not in repr(settings) and k2 not in repr(settings)  # secrets stay out of logs


def test_production_refuses_to_run_without_keys_and_development_runs_plain() -> None:
    production = Settings(environment=Environment.PRODUCTION, jwt_secret=STRONG_JWT)
    with pytest.raises(PayloadKeyError, match="APPEALS_PAYLOAD_KEYS must be set in production"):
        data_converter(production)
    with_keys = production.model_copy(update={"payload_keys": keys(k1=new_key())})
    assert data_converter(with_keys).payload_codec is not None
    # Development without keys: no codec (the plain pydantic converter, as before).
    assert data_converter(Settings()) is pydantic_data_converter


def test_the_local_stacks_key_is_made_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / ".data" / "payload-keys.json"
    key_id, made = dev_keys(path)
    assert list(made) == [key_id] and key_id.startswith("dev-")
    assert len(base64.b64decode(made[key_id])) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert dev_keys(path) == (key_id, made)  # a restart reads what the first start wrote
