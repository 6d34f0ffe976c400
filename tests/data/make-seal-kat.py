#!/usr/bin/env python3
"""Make tests/data/seal-kat.json: a libsodium sealed box for rotor's known-answer tests.

libsodium (through PyNaCl) makes an X25519 key pair and seals a fixed message with
crypto_box_seal. rotor's unit tests in src/seal.rs open that box with the crypto_box crate,
and seal the same message for the same key and open it again. Python is needed only to
remake the vector, never at test time.

    python3 tests/data/make-seal-kat.py            # writes tests/data/seal-kat.json
    python3 tests/data/make-seal-kat.py --check    # libsodium opens the committed vector
    python3 tests/data/make-seal-kat.py --open B64 # libsodium opens a box sealed by rotor

The key pair is a throwaway made for this file; it protects nothing.
"""

import base64
import importlib.metadata
import json
import re
import sys
from pathlib import Path

import nacl
from nacl.public import PrivateKey, SealedBox

MESSAGE = "rotor known-answer test: a value sealed by libsodium, opened by crypto_box"
OUT = Path(__file__).with_name("seal-kat.json")


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def libsodium_version() -> str:
    """PyNaCl bundles libsodium without exposing its version; its changelog names it."""
    try:
        meta = importlib.metadata.metadata("PyNaCl").get_payload() or ""
    except importlib.metadata.PackageNotFoundError:
        meta = ""
    found = re.search(r"[Uu]pdated? ``libsodium`` to ([0-9][0-9A-Za-z.\-]*)", meta)
    return found.group(1) if found else "bundled, version not exposed"


def make() -> None:
    sk = PrivateKey.generate()
    ciphertext = SealedBox(sk.public_key).encrypt(MESSAGE.encode("utf-8"))
    assert len(ciphertext) == len(MESSAGE.encode("utf-8")) + 48
    vector = {
        "secret_key_b64": b64(bytes(sk)),
        "public_key_b64": b64(bytes(sk.public_key)),
        "message": MESSAGE,
        "ciphertext_b64": b64(ciphertext),
        "made_with": f"PyNaCl {nacl.__version__} (libsodium {libsodium_version()})",
    }
    OUT.write_text(json.dumps(vector, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


def secret_key() -> PrivateKey:
    vector = json.loads(OUT.read_text(encoding="utf-8"))
    return PrivateKey(base64.b64decode(vector["secret_key_b64"])), vector


def check() -> None:
    sk, vector = secret_key()
    opened = SealedBox(sk).decrypt(base64.b64decode(vector["ciphertext_b64"]))
    assert opened.decode("utf-8") == vector["message"], "the vector does not open"
    assert b64(bytes(sk.public_key)) == vector["public_key_b64"], "key pair mismatch"
    print("ok: libsodium opens the committed vector")


def open_box(sealed_b64: str) -> None:
    sk, vector = secret_key()
    opened = SealedBox(sk).decrypt(base64.b64decode(sealed_b64)).decode("utf-8")
    assert opened == vector["message"], "opened, but not to the KAT message"
    print("ok: libsodium opens the box and finds the KAT message")


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        check()
    elif len(sys.argv) == 3 and sys.argv[1] == "--open":
        open_box(sys.argv[2])
    elif not sys.argv[1:]:
        make()
    else:
        sys.exit(__doc__)
