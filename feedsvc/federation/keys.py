"""RSA key pairs for our actors (generated once, kept in the store) and the loading of PEM
keys, ours and remote actors', into `cryptography` objects. Only keys: no HTTP, no store,
and never a key in a log line or an error message."""

from __future__ import annotations

import functools
import logging

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from feedsvc.errors import SignatureError

logger = logging.getLogger(__name__)

KEY_SIZE = 2048  # what Mastodon generates for its actors
PUBLIC_EXPONENT = 65537
KEY_CACHE_SIZE = 1024  # parsed keys kept per process: ours plus the remote actors in touch


def generate_key_pair() -> tuple[str, str]:
    """A new RSA-2048 pair as PEM text: (private PKCS#8 unencrypted, public SubjectPublicKeyInfo)."""
    key = rsa.generate_private_key(public_exponent=PUBLIC_EXPONENT, key_size=KEY_SIZE)
    private_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    return private_pem.decode("ascii"), public_pem.decode("ascii")


@functools.lru_cache(maxsize=KEY_CACHE_SIZE)
def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """The RSA private key in `pem` (parsed once per process; parsing costs far more than a
    signature). SignatureError when it is not one."""
    try:
        key = serialization.load_pem_private_key(pem.encode("utf-8"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError) as e:
        raise SignatureError("not an RSA private key") from e  # the cause quotes no key bytes
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SignatureError("not an RSA private key")
    return key


@functools.lru_cache(maxsize=KEY_CACHE_SIZE)
def load_public_key(pem: str) -> rsa.RSAPublicKey:
    """The RSA public key in `pem` (SubjectPublicKeyInfo, or PKCS#1 "RSA PUBLIC KEY"), parsed
    once per process. SignatureError when it is not one."""
    try:
        key = serialization.load_pem_public_key(pem.encode("utf-8"))
    except (ValueError, TypeError, UnicodeEncodeError) as e:
        raise SignatureError("not an RSA public key") from e
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureError("not an RSA public key")
    return key
