"""Whatsminer (btminer) privileged API v1/v2: the token handshake and AES-encrypted commands.

As pyasic and MicroBT's tools do it (research notes, section 1.8): ``get_token`` returns
``time``, ``salt`` and ``newsalt``; ``host_passwd_md5`` is the hash part of
``md5crypt(password, salt)``, the signature the hash part of
``md5crypt(host_passwd_md5 + time, newsalt)``; the command JSON (with ``"token": sign``) is
AES-256-ECB encrypted with ``sha256(host_passwd_md5)``, NUL-padded to 16 bytes, base64, sent as
``{"enc": 1, "data": ...}``; the reply ``{"enc": "..."}`` decrypts the same way.
Used by the simulator (server side) and by admin actions (:func:`privileged`).
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from minectl_py.miner import api

_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def md5crypt(password: str, salt: str) -> str:
    """The classic ``$1$salt$hash`` MD5-crypt (FreeBSD's algorithm)."""
    pw, sl, magic = password.encode(), salt.encode()[:8], b"$1$"
    ctx = pw + magic + sl
    alt = hashlib.md5(pw + sl + pw).digest()
    for n in range(len(pw), 0, -16):
        ctx += alt[: min(16, n)]
    i = len(pw)
    while i:
        ctx += b"\0" if i & 1 else pw[:1]
        i >>= 1
    final = hashlib.md5(ctx).digest()
    for r in range(1000):
        c = pw if r & 1 else final
        if r % 3:
            c += sl
        if r % 7:
            c += pw
        c += final if r & 1 else pw
        final = hashlib.md5(c).digest()
    out = ""
    for a, b, c3 in ((0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)):
        v = final[a] << 16 | final[b] << 8 | final[c3]
        for _ in range(4):
            out += _ITOA64[v & 0x3F]
            v >>= 6
    v = final[11]
    for _ in range(2):
        out += _ITOA64[v & 0x3F]
        v >>= 6
    return f"$1${sl.decode()}${out}"


def passwd_md5(password: str, salt: str) -> str:
    return md5crypt(password, salt).split("$")[3]


def sign(host_passwd_md5: str, time_s: str, newsalt: str) -> str:
    return md5crypt(host_passwd_md5 + time_s, newsalt).split("$")[3]


def _cipher(host_passwd_md5: str) -> Cipher:
    return Cipher(algorithms.AES(hashlib.sha256(host_passwd_md5.encode()).digest()), modes.ECB())


def encrypt(host_passwd_md5: str, obj: Any) -> str:
    raw = json.dumps(obj).encode()
    raw += b"\0" * (-len(raw) % 16)
    enc = _cipher(host_passwd_md5).encryptor()
    return base64.b64encode(enc.update(raw) + enc.finalize()).decode()


def decrypt(host_passwd_md5: str, data: str) -> Any:
    """Raises ValueError on anything that is not an encrypted JSON object."""
    try:
        blob = base64.b64decode(data, validate=False)
        if not blob or len(blob) % 16:
            raise ValueError("not a multiple of 16 bytes")
        dec = _cipher(host_passwd_md5).decryptor()
        return json.loads((dec.update(blob) + dec.finalize()).rstrip(b"\0").decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot decrypt: {e}") from None


async def token(ip: str, *, port: int = api.DEFAULT_PORT, timeout: float = 10.0) -> api.Reply:
    """``get_token``: an ok Reply whose ``data["Msg"]`` holds ``time``, ``salt`` and ``newsalt``,
    or the failure (nothing privileged has been sent yet)."""
    tok = await api.command(ip, "get_token", port=port, connect_timeout=timeout, timeout=timeout)
    msg = tok.data.get("Msg") if tok.ok and isinstance(tok.data, dict) else None
    good = isinstance(msg, dict) and all(isinstance(msg.get(k), str) for k in ("time", "salt", "newsalt"))
    if tok.ok and not good:
        return api.Reply(False, data=tok.data, raw=tok.raw, reason="error", detail="no token in get_token reply")
    return tok


async def send_privileged(
    ip: str,
    msg: dict[str, str],
    cmd: str,
    password: str,
    *,
    port: int = api.DEFAULT_PORT,
    timeout: float = 10.0,
    **params: Any,
) -> api.Reply:
    """The encrypted command, signed with the token ``msg`` from :func:`token`.

    An encrypted reply is decrypted and classified like any reply; a plain one (the firmware's
    errors: ``can't access write cmd``, ``check token err``, undecryptable data) is returned as is."""
    key = passwd_md5(password, msg["salt"])
    body = {"cmd": cmd, **params, "token": sign(key, msg["time"], msg["newsalt"])}
    payload = json.dumps({"enc": 1, "data": encrypt(key, body)}).encode()
    rep = await api.send(ip, payload, port=port, connect_timeout=timeout, timeout=timeout)
    if isinstance(rep.data, dict) and isinstance(rep.data.get("enc"), str):
        try:
            inner = decrypt(key, rep.data["enc"])
        except ValueError as e:
            return api.Reply(False, raw=rep.raw, reason="garbage", detail=str(e), elapsed_ms=rep.elapsed_ms)
        out = api.classify(json.dumps(inner).encode() + b"\0")
        out.raw, out.elapsed_ms = rep.raw, rep.elapsed_ms
        return out
    return rep


async def privileged(
    ip: str, cmd: str, password: str = "admin", *, port: int = api.DEFAULT_PORT, timeout: float = 10.0, **params: Any
) -> api.Reply:
    """Run one privileged command (``reboot``, ``restart_btminer``, ``update_pools``,
    ``set_led``, ``power_off``, ``power_on``) on a Whatsminer. Never raises for the miner."""
    tok = await token(ip, port=port, timeout=timeout)
    if not tok.ok:
        return tok
    return await send_privileged(ip, tok.data["Msg"], cmd, password, port=port, timeout=timeout, **params)
