"""feedsvc.federation.signatures and keys: draft-cavage-12 HTTP Signatures as Mastodon speaks
them. A second implementation written here with `cryptography` alone (the signing string
built by hand from the request) checks what sign_request produces, and signs requests that
verify_request must accept, so the two check each other."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.datastructures import Headers

from feedsvc.errors import SignatureError
from feedsvc.federation import keys
from feedsvc.federation.signatures import SignatureParams
from feedsvc.federation.signatures import digest_header
from feedsvc.federation.signatures import key_id_of
from feedsvc.federation.signatures import parse_signature
from feedsvc.federation.signatures import sign_request
from feedsvc.federation.signatures import verify_request

NOW = dt.datetime(2019, 12, 18, 10, 8, 46, tzinfo=dt.timezone.utc)
NOW_HTTP = "Wed, 18 Dec 2019 10:08:46 GMT"
KEY_ID = "https://notes.example/ap/actors/all#main-key"
PEER_KEY_ID = "https://peer.example/users/alice#main-key"
BODY = b'{"type":"Follow","actor":"https://peer.example/users/alice"}'
BODY_DIGEST = "SHA-256=" + base64.b64encode(hashlib.sha256(BODY).digest()).decode()
SIGNATURE_FORMAT = re.compile(r'keyId="([^"]+)",algorithm="rsa-sha256",headers="([^"]+)",'
                              r'signature="([A-Za-z0-9+/]+=*)"')


@pytest.fixture(scope="module")
def pair() -> tuple[str, str]:
    return keys.generate_key_pair()


@pytest.fixture(scope="module")
def other_pair() -> tuple[str, str]:
    return keys.generate_key_pair()


# -- the test's own implementation, from cryptography alone ---------------------------------

def hand_signing_string(method: str, target: str, headers: dict[str, str],
                        names: list[str]) -> bytes:
    lower = {name.lower(): value for name, value in headers.items()}
    lines = [f"(request-target): {method.lower()} {target}" if name == "(request-target)"
             else f"{name}: {lower[name]}" for name in names]
    return "\n".join(lines).encode()


def hand_sign(private_pem: str, method: str, target: str, headers: dict[str, str],
              names: list[str], *, algorithm: str | None = "rsa-sha256",
              key_id: str = PEER_KEY_ID) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    raw = key.sign(hand_signing_string(method, target, headers, names), padding.PKCS1v15(),
                   hashes.SHA256())
    algo = f'algorithm="{algorithm}",' if algorithm is not None else ""
    return (f'keyId="{key_id}",{algo}headers="{" ".join(names)}",'
            f'signature="{base64.b64encode(raw).decode()}"')


def hand_verify(public_pem: str, method: str, target: str, headers: dict[str, str]) -> None:
    match = SIGNATURE_FORMAT.fullmatch(headers["Signature"])
    assert match is not None, headers["Signature"]
    key = serialization.load_pem_public_key(public_pem.encode())
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(base64.b64decode(match.group(3)),
               hand_signing_string(method, target, headers, match.group(2).split()),
               padding.PKCS1v15(), hashes.SHA256())


def peer_post(private_pem: str, *, target: str = "/ap/inbox", body: bytes = BODY,
              date: str = NOW_HTTP, names: tuple[str, ...] = ("(request-target)", "host",
                                                              "date", "digest"),
              algorithm: str | None = "rsa-sha256") -> dict[str, str]:
    """The headers of a POST signed by the test's own signer, as a peer would send them."""
    headers = {"Host": "notes.example", "Date": date,
               "Digest": "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode(),
               "Content-Type": "application/activity+json"}
    headers["Signature"] = hand_sign(private_pem, "POST", target, headers, list(names),
                                     algorithm=algorithm)
    return headers


def verify_post(headers: dict[str, str] | Headers, public_pem: str, *,
                target: str = "/ap/inbox", body: bytes = BODY,
                now: dt.datetime = NOW) -> SignatureParams:
    return verify_request(method="POST", target=target, headers=headers, body=body,
                          public_pem=public_pem, now=now)


def refusal(headers: dict[str, str], public_pem: str, **kwargs: object) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        verify_post(headers, public_pem, **kwargs)  # type: ignore[arg-type]
    return caught.value


# -- keys -----------------------------------------------------------------------------------

def test_generated_keys_are_rsa_2048_pkcs8_and_spki(pair: tuple[str, str]) -> None:
    private_pem, public_pem = pair
    assert private_pem.startswith("-----BEGIN PRIVATE KEY-----\n")
    assert private_pem.endswith("-----END PRIVATE KEY-----\n")
    assert public_pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert public_pem.endswith("-----END PUBLIC KEY-----\n")
    private = keys.load_private_key(private_pem)
    public = keys.load_public_key(public_pem)
    assert private.key_size == 2048
    assert public.public_numbers().e == 65537
    assert private.public_key().public_numbers() == public.public_numbers()


def test_loaded_keys_are_cached_per_pem(pair: tuple[str, str]) -> None:
    private_pem, public_pem = pair
    assert keys.load_public_key(public_pem) is keys.load_public_key(public_pem)
    assert keys.load_private_key(private_pem) is keys.load_private_key(private_pem)
    assert keys.load_public_key.cache_info().maxsize == keys.KEY_CACHE_SIZE


def test_a_pkcs1_public_key_loads(pair: tuple[str, str]) -> None:
    public = keys.load_public_key(pair[1])
    pkcs1 = public.public_bytes(serialization.Encoding.PEM,
                                serialization.PublicFormat.PKCS1).decode()
    assert pkcs1.startswith("-----BEGIN RSA PUBLIC KEY-----")
    assert keys.load_public_key(pkcs1).public_numbers() == public.public_numbers()


def ec_public_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.mark.parametrize("pem", ["", "junk", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                                 "EC", "PRIVATE"], ids=["empty", "junk", "bad-base64-body",
                                                        "ec-key", "private-key"])
def test_junk_public_keys_are_refused(pem: str, pair: tuple[str, str]) -> None:
    pem = {"EC": ec_public_pem(), "PRIVATE": pair[0]}.get(pem, pem)
    with pytest.raises(SignatureError) as caught:
        keys.load_public_key(pem)
    assert caught.value.message == "not an RSA public key"


@pytest.mark.parametrize("pem", ["", "junk", "PUBLIC", "EC"])
def test_junk_private_keys_are_refused(pem: str, pair: tuple[str, str]) -> None:
    ec_private = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    pem = {"PUBLIC": pair[1], "EC": ec_private}.get(pem, pem)
    with pytest.raises(SignatureError) as caught:
        keys.load_private_key(pem)
    assert caught.value.message == "not an RSA private key"


# -- signing --------------------------------------------------------------------------------

def test_digest_header() -> None:
    assert digest_header(b"") == "SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    assert digest_header(BODY) == BODY_DIGEST


def test_a_get_is_signed_over_request_target_host_and_date(pair: tuple[str, str]) -> None:
    headers = sign_request("GET", "https://peer.example:8443/users/alice?page=2",
                           key_id=KEY_ID, private_pem=pair[0], now=NOW)
    assert sorted(headers) == ["Date", "Host", "Signature"]
    assert headers["Host"] == "peer.example:8443"
    assert headers["Date"] == NOW_HTTP
    match = SIGNATURE_FORMAT.fullmatch(headers["Signature"])
    assert match is not None
    assert match.group(1) == KEY_ID
    assert match.group(2) == "(request-target) host date"
    assert len(base64.b64decode(match.group(3))) == 256  # one RSA-2048 block


def test_a_post_is_signed_with_its_digest(pair: tuple[str, str]) -> None:
    headers = sign_request("POST", "https://peer.example/inbox", key_id=KEY_ID,
                           private_pem=pair[0], body=BODY, now=NOW)
    assert sorted(headers) == ["Date", "Digest", "Host", "Signature"]
    assert headers["Host"] == "peer.example"
    assert headers["Digest"] == BODY_DIGEST
    match = SIGNATURE_FORMAT.fullmatch(headers["Signature"])
    assert match is not None
    assert match.group(2) == "(request-target) host date digest"


def test_the_date_is_gmt_whatever_the_zone_of_now(pair: tuple[str, str]) -> None:
    paris = NOW.astimezone(dt.timezone(dt.timedelta(hours=1)))
    headers = sign_request("GET", "https://peer.example/", key_id=KEY_ID,
                           private_pem=pair[0], now=paris)
    assert headers["Date"] == NOW_HTTP
    with pytest.raises(ValueError):
        sign_request("GET", "https://peer.example/", key_id=KEY_ID, private_pem=pair[0],
                     now=NOW.replace(tzinfo=None))


@pytest.mark.parametrize("method,url,body,target", [
    ("GET", "https://peer.example/users/alice", None, "/users/alice"),
    ("GET", "https://peer.example", None, "/"),
    ("POST", "https://peer.example/inbox?x=1&y=%20", BODY, "/inbox?x=1&y=%20"),
    ("POST", "http://user@127.0.0.1:8080/ap/inbox", b"", "/ap/inbox"),
])
def test_an_independent_verifier_accepts_what_we_sign(pair: tuple[str, str], method: str,
                                                      url: str, body: bytes | None,
                                                      target: str) -> None:
    headers = sign_request(method, url, key_id=KEY_ID, private_pem=pair[0], body=body, now=NOW)
    hand_verify(pair[1], method, target, headers)
    if body is not None:
        assert headers["Digest"] == digest_header(body)
    with pytest.raises(InvalidSignature):
        hand_verify(pair[1], method, target + "x", headers)


def test_the_signing_string_is_exactly_mastodons(pair: tuple[str, str]) -> None:
    headers = sign_request("POST", "https://peer.example/users/alice/inbox", key_id=KEY_ID,
                           private_pem=pair[0], body=BODY, now=NOW)
    text = ("(request-target): post /users/alice/inbox\n"
            "host: peer.example\n"
            f"date: {NOW_HTTP}\n"
            f"digest: {BODY_DIGEST}").encode()
    match = SIGNATURE_FORMAT.fullmatch(headers["Signature"])
    assert match is not None
    keys.load_public_key(pair[1]).verify(base64.b64decode(match.group(3)), text,
                                         padding.PKCS1v15(), hashes.SHA256())


# -- verifying ------------------------------------------------------------------------------

def test_round_trip_post(pair: tuple[str, str]) -> None:
    headers = sign_request("POST", "https://notes.example/ap/actors/ml/inbox", key_id=KEY_ID,
                           private_pem=pair[0], body=BODY, now=NOW)
    params = verify_post(headers, pair[1], target="/ap/actors/ml/inbox",
                         now=NOW + dt.timedelta(minutes=5))
    assert params.key_id == KEY_ID
    assert params.algorithm == "rsa-sha256"
    assert params.headers == ("(request-target)", "host", "date", "digest")
    assert len(params.signature) == 256


def test_round_trip_get(pair: tuple[str, str]) -> None:
    headers = sign_request("GET", "https://notes.example/ap/actors/ml?x=1", key_id=KEY_ID,
                           private_pem=pair[0], now=NOW)
    params = verify_request(method="GET", target="/ap/actors/ml?x=1", headers=headers,
                            body=b"", public_pem=pair[1], now=NOW, require_digest=False)
    assert params.headers == ("(request-target)", "host", "date")
    with pytest.raises(SignatureError) as caught:  # a GET is not enough for an inbox
        verify_request(method="GET", target="/ap/actors/ml?x=1", headers=headers, body=b"",
                       public_pem=pair[1], now=NOW)
    assert caught.value.message == "signed headers lack digest"
    assert caught.value.key_id == KEY_ID


@pytest.mark.parametrize("algorithm", ["rsa-sha256", "hs2019", None])
def test_a_request_signed_by_an_independent_signer_verifies(pair: tuple[str, str],
                                                            algorithm: str | None) -> None:
    params = verify_post(peer_post(pair[0], algorithm=algorithm), pair[1])
    assert params == SignatureParams(key_id=PEER_KEY_ID, algorithm=algorithm,
                                     headers=("(request-target)", "host", "date", "digest"),
                                     signature=params.signature)


def test_more_signed_headers_are_fine(pair: tuple[str, str]) -> None:
    headers = peer_post(pair[0], names=("(request-target)", "host", "date", "digest",
                                        "content-type"))
    assert verify_post(headers, pair[1]).headers[-1] == "content-type"


def test_header_names_are_case_insensitive(pair: tuple[str, str]) -> None:
    sent = peer_post(pair[0])
    shouting = {name.upper(): value for name, value in sent.items()}
    mixed = {"hOsT": sent["Host"], "date": sent["Date"], "DiGeSt": sent["Digest"],
             "signature": sent["Signature"]}
    assert verify_post(shouting, pair[1]).key_id == PEER_KEY_ID
    assert verify_post(mixed, pair[1]).key_id == PEER_KEY_ID
    assert verify_post(Headers(sent), pair[1]).key_id == PEER_KEY_ID  # Flask's request.headers
    assert key_id_of(shouting) == PEER_KEY_ID


def test_a_digest_header_with_several_algorithms(pair: tuple[str, str]) -> None:
    headers = {"Host": "notes.example", "Date": NOW_HTTP,
               "Digest": f"SHA-512=AAAA, sha-256={BODY_DIGEST.split('=', 1)[1]}"}
    headers["Signature"] = hand_sign(pair[0], "POST", "/ap/inbox", headers,
                                     ["(request-target)", "host", "date", "digest"])
    assert verify_post(headers, pair[1]).key_id == PEER_KEY_ID


def test_a_tampered_body_fails_the_digest(pair: tuple[str, str]) -> None:
    error = refusal(peer_post(pair[0]), pair[1], body=BODY.replace(b"Follow", b"Delete"))
    assert error.message == "Digest does not match the body"
    assert error.key_id == PEER_KEY_ID
    assert str(error) == f"Digest does not match the body: key_id={PEER_KEY_ID}"


def test_a_tampered_digest_fails_the_signature(pair: tuple[str, str]) -> None:
    other = BODY.replace(b"Follow", b"Delete")
    headers = peer_post(pair[0]) | {"Digest": digest_header(other)}
    error = refusal(headers, pair[1], body=other)
    assert error.message == "signature does not verify"


def test_a_tampered_path_fails_the_signature(pair: tuple[str, str]) -> None:
    error = refusal(peer_post(pair[0]), pair[1], target="/ap/actors/ml/inbox")
    assert error.message == "signature does not verify"
    assert error.key_id == PEER_KEY_ID


def test_a_tampered_host_fails_the_signature(pair: tuple[str, str]) -> None:
    headers = peer_post(pair[0]) | {"Host": "elsewhere.example"}
    assert refusal(headers, pair[1]).message == "signature does not verify"


def test_the_wrong_key_fails(pair: tuple[str, str], other_pair: tuple[str, str]) -> None:
    error = refusal(peer_post(pair[0]), other_pair[1])
    assert error.message == "signature does not verify"
    assert error.key_id == PEER_KEY_ID


def test_a_junk_key_is_refused_with_the_key_id(pair: tuple[str, str]) -> None:
    error = refusal(peer_post(pair[0]), "junk")
    assert error.message == "not an RSA public key"
    assert error.key_id == PEER_KEY_ID


@pytest.mark.parametrize("age_hours,accepted", [(11, True), (-11, True), (13, False),
                                                (-13, False), (12, True)])
def test_the_date_must_be_within_12_hours(pair: tuple[str, str], age_hours: int,
                                          accepted: bool) -> None:
    headers = peer_post(pair[0])  # signed with Date = NOW
    now = NOW + dt.timedelta(hours=age_hours)
    if accepted:
        assert verify_post(headers, pair[1], now=now).key_id == PEER_KEY_ID
    else:
        error = refusal(headers, pair[1], now=now)
        assert error.message == f"Date '{NOW_HTTP}' is more than 12 h from now"
        assert error.key_id == PEER_KEY_ID


def test_the_skew_is_configurable(pair: tuple[str, str]) -> None:
    headers = peer_post(pair[0])
    with pytest.raises(SignatureError) as caught:
        verify_request(method="POST", target="/ap/inbox", headers=headers, body=BODY,
                       public_pem=pair[1], now=NOW + dt.timedelta(minutes=31),
                       max_skew=dt.timedelta(minutes=30))
    assert caught.value.message == f"Date '{NOW_HTTP}' is more than 0.5 h from now"


def test_an_unreadable_date_is_refused(pair: tuple[str, str]) -> None:
    error = refusal(peer_post(pair[0], date="yesterday"), pair[1])
    assert error.message == "Date 'yesterday' is not an HTTP date"


@pytest.mark.parametrize("names,missing", [
    (("(request-target)", "host", "date"), "digest"),
    (("host", "date", "digest"), "(request-target)"),
    (("(request-target)", "date", "digest"), "host"),
    (("(request-target)", "host", "digest"), "date"),
    (("digest",), "(request-target) host date"),
])
def test_a_post_must_sign_request_target_host_date_and_digest(
        pair: tuple[str, str], names: tuple[str, ...], missing: str) -> None:
    error = refusal(peer_post(pair[0], names=names), pair[1])
    assert error.message == f"signed headers lack {missing}"
    assert error.key_id == PEER_KEY_ID


def test_headers_absent_means_date_only_and_is_refused(pair: tuple[str, str]) -> None:
    headers = peer_post(pair[0])
    headers["Signature"] = re.sub(r'headers="[^"]*",', "", headers["Signature"])
    assert parse_signature(headers["Signature"]).headers == ("date",)
    assert refusal(headers, pair[1]).message == \
        "signed headers lack (request-target) host digest"


def test_a_signed_header_missing_from_the_request(pair: tuple[str, str]) -> None:
    headers = peer_post(pair[0], names=("(request-target)", "host", "date", "digest",
                                        "content-type"))
    del headers["Content-Type"]
    assert refusal(headers, pair[1]).message == "signed header content-type is not in the request"


def test_an_unknown_pseudo_header_is_refused(pair: tuple[str, str]) -> None:
    headers = peer_post(pair[0])
    headers["Signature"] = headers["Signature"].replace('digest"', 'digest (foo)"')
    assert refusal(headers, pair[1]).message == "signed header (foo) is not in the request"


@pytest.mark.parametrize("algorithm", ["hmac-sha256", "rsa-sha512", "ed25519", "RSA-SHA256"])
def test_unknown_algorithms_are_refused(pair: tuple[str, str], algorithm: str) -> None:
    error = refusal(peer_post(pair[0], algorithm=algorithm), pair[1])
    assert error.message == f"unsupported algorithm {algorithm!r}"
    assert error.key_id == PEER_KEY_ID


@pytest.mark.parametrize("value,message", [
    ('keyId="a"', "Signature header has no signature"),
    ('signature="QQ=="', "Signature header has no keyId"),
    ('keyId="",signature="QQ=="', "Signature header has no keyId"),
    ('keyId="a",signature="not base64!"', "signature is not base64"),
    ('keyId="a",signature=""', "signature is empty"),
    ('keyId="a" signature="QQ=="', "Signature header unreadable at character 10"),
    ('keyId="a",keyId="b",signature="QQ=="', "Signature header has keyId twice"),
    ('keyId="a",headers="",signature="QQ=="', "Signature header has an empty headers list"),
    ('keyId="a,signature="QQ=="', "Signature header unreadable at character 20"),
    ('keyId="a",signature="QQ==",', "Signature header unreadable at character 27"),
    ("garbage", "Signature header unreadable at character 0"),
    ('keyId="a",signature="QQ==",created="soon"', "created is not a Unix time"),
    ("=,=", "Signature header unreadable at character 0"),
])
def test_malformed_signature_headers(value: str, message: str) -> None:
    with pytest.raises(SignatureError) as caught:
        parse_signature(value)
    assert caught.value.message == message


def test_a_malformed_header_is_refused_by_verify_too(pair: tuple[str, str]) -> None:
    headers = peer_post(pair[0]) | {"Signature": 'keyId="a" x'}
    assert refusal(headers, pair[1]).message == "Signature header unreadable at character 10"
    headers = peer_post(pair[0])
    del headers["Signature"]
    assert refusal(headers, pair[1]).message == "no Signature header"
    with pytest.raises(SignatureError) as caught:
        key_id_of(headers)
    assert caught.value.message == "no Signature header"


def test_parse_signature_reads_tokens_quotes_and_spaces() -> None:
    params = parse_signature(' keyId="a\\"b" , algorithm=hs2019,headers="(request-target) '
                             'Host  Date",signature="QQ==",extra=ignored')
    assert params == SignatureParams(key_id='a"b', algorithm="hs2019",
                                     headers=("(request-target)", "host", "date"),
                                     signature=b"A")


def test_a_signed_created_and_expires(pair: tuple[str, str]) -> None:
    """hs2019 senders may sign the (created) and (expires) pseudo-headers: their values come
    from the Signature header's parameters."""
    created = int(NOW.timestamp())
    headers = {"Host": "notes.example", "Date": NOW_HTTP, "Digest": BODY_DIGEST}
    key = keys.load_private_key(pair[0])
    names = ["(request-target)", "(created)", "(expires)", "host", "date", "digest"]
    text = "\n".join(["(request-target): post /ap/inbox", f"(created): {created}",
                      f"(expires): {created + 300}", "host: notes.example",
                      f"date: {NOW_HTTP}", f"digest: {BODY_DIGEST}"])
    raw = base64.b64encode(key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
    headers["Signature"] = (f'keyId="{PEER_KEY_ID}",algorithm="hs2019",created={created},'
                            f'expires={created + 300},headers="{" ".join(names)}",'
                            f'signature="{raw}"')
    assert verify_post(headers, pair[1]).created == str(created)
    error = refusal(headers, pair[1], now=NOW + dt.timedelta(seconds=301))
    assert error.message == "the signature has expired"

