"""WCS HMAC signature and HTTP Basic checks."""

from __future__ import annotations

import base64

import pytest

from ingest.auth import FORBIDDEN, UNAUTHORIZED, Authenticator, wcs_signature

BODY = b'{"nodeId":"n1","sessionId":"s1"}'
SECRET = "rest-hook-secret"


def _basic(user: str, password: str) -> tuple[bytes, bytes]:
    return b"authorization", b"Basic " + base64.b64encode(f"{user}:{password}".encode())


def _wcs(signature: str) -> tuple[bytes, bytes]:
    return b"authorization", b"WCS " + signature.encode()


def test_signature_is_hmac_md5_hex() -> None:
    # RFC 2104 test vector
    assert (
        wcs_signature("Jefe", b"what do ya want for nothing?") == "750c783e6ab0b503eaa86e310a5db738"
    )


def test_disabled_accepts_anything() -> None:
    auth = Authenticator(None, None)
    assert not auth.enabled
    assert auth.check(BODY, []) is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([_wcs(wcs_signature(SECRET, BODY))], None),
        ([_wcs(wcs_signature(SECRET, BODY).upper())], None),
        ([(b"authorization", b"wcs  " + wcs_signature(SECRET, BODY).encode())], None),
        ([(b"accept", b"*/*"), _wcs(wcs_signature(SECRET, BODY))], None),
        ([], FORBIDDEN),
        ([_wcs(wcs_signature(SECRET, BODY + b" "))], FORBIDDEN),
        ([_wcs(wcs_signature("other-secret", BODY))], FORBIDDEN),
        ([_wcs("")], FORBIDDEN),
        ([(b"authorization", wcs_signature(SECRET, BODY).encode())], FORBIDDEN),
        ([_basic("u", "p")], FORBIDDEN),
    ],
    ids=["right", "upper hex", "extra space", "other headers", "missing", "other body",
         "other secret", "empty", "no scheme", "basic instead"],
)  # fmt: skip
def test_hmac(headers: list[tuple[bytes, bytes]], expected: int | None) -> None:
    assert Authenticator(SECRET, None).check(BODY, headers) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([_basic("wcs", "pa:ss")], None),
        ([(b"authorization", b"basic " + base64.b64encode(b"wcs:pa:ss"))], None),
        ([], UNAUTHORIZED),
        ([_basic("wcs", "wrong")], FORBIDDEN),
        ([_basic("other", "pa:ss")], FORBIDDEN),
        ([(b"authorization", b"Basic !!!not-base64")], FORBIDDEN),
    ],
    ids=["right", "scheme case", "missing", "wrong password", "wrong user", "garbage"],
)
def test_basic(headers: list[tuple[bytes, bytes]], expected: int | None) -> None:
    assert Authenticator(None, ("wcs", "pa:ss")).check(BODY, headers) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([_basic("u", "p"), _wcs(wcs_signature(SECRET, BODY))], None),
        ([_wcs(wcs_signature(SECRET, BODY)), _basic("u", "p")], None),
        ([_wcs(wcs_signature(SECRET, BODY))], UNAUTHORIZED),
        ([_basic("u", "p")], FORBIDDEN),
        ([_basic("u", "p"), _wcs("00")], FORBIDDEN),
    ],
    ids=["both", "both reversed", "only hmac", "only basic", "wrong hmac"],
)
def test_both_configured_requires_both(
    headers: list[tuple[bytes, bytes]], expected: int | None
) -> None:
    assert Authenticator(SECRET, ("u", "p")).check(BODY, headers) == expected
