"""Who is calling: bearer tokens mapped to users by the deployer's configuration.

Tokens come from, in order:

- ``MESH_API_TOKENS``: ``user:token`` pairs separated by commas;
- ``MESH_API_TOKENS_FILE``: a TOML file with a ``[users]`` table mapping each
  user to a token (``alice = "..."``), which a deployer can mount as a secret.

A token never leaves the API process: sessions record the user's name, not
the token, and nothing logs it.
"""

from __future__ import annotations

import hmac
import os
import secrets
import tomllib
from pathlib import Path

from pydantic import BaseModel


class AuthError(Exception):
    """The token configuration is unusable."""


class Users(BaseModel):
    """Token to user, as configured."""

    by_token: dict[str, str]

    def user_for(self, token: str | None) -> str | None:
        if not token:
            return None
        for known, user in self.by_token.items():
            # Constant-time comparison: a wrong token takes as long however close it is.
            if hmac.compare_digest(known.encode(), token.encode()):
                return user
        return None


def load_users(env: dict[str, str] | None = None) -> Users:
    env = dict(os.environ if env is None else env)
    by_token: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in env.get("MESH_API_TOKENS", "").split(","))):
        user, sep, token = pair.partition(":")
        if not sep or not user.strip() or len(token.strip()) < 16:
            raise AuthError(
                "MESH_API_TOKENS holds user:token pairs separated by commas, "
                "with tokens of at least 16 characters"
            )
        by_token[token.strip()] = user.strip()
    path = env.get("MESH_API_TOKENS_FILE")
    if path:
        by_token.update(_from_file(Path(path)))
    if not by_token:
        raise AuthError("no API users: set MESH_API_TOKENS or MESH_API_TOKENS_FILE (see README)")
    return Users(by_token=by_token)


def _from_file(path: Path) -> dict[str, str]:
    try:
        users = tomllib.loads(path.read_text()).get("users", {})
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise AuthError(f"cannot read the token file {path}: {err}") from None
    if not isinstance(users, dict):
        raise AuthError(f"{path}: [users] must map user names to tokens")
    out = {}
    for user, token in users.items():
        if not isinstance(token, str) or len(token) < 16:
            raise AuthError(f"{path}: the token of {user!r} must be a string of 16+ characters")
        out[token] = user
    return out


def ensure_token_file(path: Path, user: str) -> str:
    """The token of ``user`` in ``path``, created (with a fresh token) if missing."""
    if path.exists():
        for token, name in _from_file(path).items():
            if name == user:
                return token
    token = secrets.token_urlsafe(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        if path.stat().st_size == 0:
            f.write("# API users: user = token. Keep this file secret.\n[users]\n")
        f.write(f'{user} = "{token}"\n')
    path.chmod(0o600)
    return token
