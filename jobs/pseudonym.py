"""Keyed pseudonymisation of patient identifiers: HMAC-SHA256 from Spark built-ins, no UDF.

Why HMAC and not a plain hash: ID-card and insurance numbers are short and structured, so an unkeyed
SHA-256 is reversible by enumeration. With a secret key the hash is stable across nights (duplicates and
readmissions stay linkable) but cannot be inverted by anyone without the key. HMAC(K, m) =
H((K ^ opad) || H((K ^ ipad) || m)); the padded keys are constants, so Spark's sha2/unhex/concat compute
it per row at full speed.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sys
from pathlib import Path

from pyspark.sql import Column
from pyspark.sql import functions as F

from jobs.errors import PipelineError

KEY_ENV = "DRG_PSEUDONYM_KEY"
KEY_FILE_ENV = "DRG_PSEUDONYM_KEY_FILE"
DEFAULT_KEY_FILE = Path.home() / ".config" / "drg" / "pseudonym.key"
_BLOCK = 64  # SHA-256 block size in bytes


def load_key() -> bytes:
    """The secret: $DRG_PSEUDONYM_KEY, else the file named by $DRG_PSEUDONYM_KEY_FILE, else a per-user
    key file created on first use (fine for a demo; production sets the env var from a secret store)."""
    if os.environ.get(KEY_ENV):
        return os.environ[KEY_ENV].encode("utf-8")
    path = Path(os.environ.get(KEY_FILE_ENV, DEFAULT_KEY_FILE))
    if path.exists():
        return path.read_bytes().strip()
    if KEY_FILE_ENV in os.environ:
        raise PipelineError(f"pseudonymisation key file not found: {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(secrets.token_hex(32))
    path.chmod(0o600)
    print(f"drg: created a pseudonymisation key at {path}; set {KEY_ENV} in production", file=sys.stderr)
    return path.read_bytes().strip()


def hmac_sha256(col: Column, key: bytes) -> Column:
    """Hex HMAC-SHA256 of a string column (null stays null), identical to Python's hmac module."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    ipad = bytearray(b ^ 0x36 for b in key)
    opad = bytearray(b ^ 0x5C for b in key)
    inner = F.unhex(F.sha2(F.concat(F.lit(ipad), F.encode(col, "UTF-8")), 256))
    return F.when(col.isNotNull(), F.sha2(F.concat(F.lit(opad), inner), 256))
