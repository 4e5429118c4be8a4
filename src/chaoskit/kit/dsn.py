"""One reading of every form a user can give a PostgreSQL target in: what hosts it
reaches and where its password is.

- URLs, with any driver suffix (`postgresql://`, `postgres://`, `postgresql+asyncpg://`,
  `postgresql+psycopg://`), several hosts (`h1:5432,h2:5433`), Unix socket paths
  (`%2Fvar%2Frun%2Fpostgresql`), and `host=` / `hostaddr=` query parameters, which
  override the URL's own host as libpq does;
- keyword DSNs, as libpq takes them: `host=127.0.0.1 port=5432 password='p w' dbname=app`.

Anything else is not a database target (`parse_dsn` returns None).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit, urlunsplit

__all__ = ["Dsn", "connection_url", "find_dsns", "parse_dsn"]

_URL_SCHEME = re.compile(r"^postgres(?:ql)?(?:\+[a-z0-9_]+)?$", re.IGNORECASE)
_KEYWORD = re.compile(r"(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']*)")
# a keyword DSN names at least one of these (a lone `x=1` is not a target)
_KEYWORD_MARKS = {"host", "hostaddr", "dbname", "port", "user", "password"}


@dataclass(frozen=True)
class Dsn:
    """A parsed target: every host it may reach (names, addresses or socket paths) and
    its password, if it carries one."""

    text: str
    hosts: tuple[str, ...]
    password: str | None

    @staticmethod
    def is_socket(host: str) -> bool:
        return host.startswith("/")


def _split_hosts(value: str) -> list[str]:
    return [unquote(h).strip() for h in value.split(",") if h.strip()]


def _url_host(part: str) -> str:
    """A host of the URL's netloc, without its port (IPv6 kept whole)."""
    if part.startswith("["):
        return part[1 : part.index("]")] if "]" in part else part
    return part.rsplit(":", 1)[0] if part.count(":") == 1 else part


def _parse_url(text: str) -> Dsn | None:
    parts = urlsplit(text)
    if not _URL_SCHEME.match(parts.scheme or ""):
        return None
    netloc = parts.netloc.rsplit("@", 1)
    userinfo, hostlist = (netloc[0], netloc[1]) if len(netloc) == 2 else ("", netloc[0])
    hosts = [_url_host(unquote(h)) for h in hostlist.split(",") if h]
    query = parse_qs(parts.query)
    for key in ("host", "hostaddr"):
        for value in query.get(key, []):
            hosts += _split_hosts(value)
    password = unquote(userinfo.split(":", 1)[1]) if ":" in userinfo else None
    if "password" in query:
        password = query["password"][-1]
    return Dsn(text, tuple(h for h in hosts if h), password)


def _unquote_keyword(value: str) -> str:
    if value.startswith("'") and value.endswith("'") and len(value) >= 2:
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _parse_keywords(text: str) -> Dsn | None:
    pairs = [(k.lower(), _unquote_keyword(v)) for k, v in _KEYWORD.findall(text)]
    if not pairs or not ({k for k, _ in pairs} & _KEYWORD_MARKS):
        return None
    # a keyword DSN is made of pairs only
    if _KEYWORD.sub("", text).strip():
        return None
    hosts: list[str] = []
    password = None
    for key, value in pairs:
        if key in ("host", "hostaddr"):
            hosts += _split_hosts(value)
        elif key == "password":
            password = value
    return Dsn(text, tuple(hosts), password)


def parse_dsn(text: Any) -> Dsn | None:
    """The target `text` names, in any of the forms above; None when it names none."""
    if not isinstance(text, str) or not text.strip():
        return None
    text = text.strip()
    if "://" in text:
        return _parse_url(text)
    return _parse_keywords(text)


def find_dsns(value: Any) -> Iterator[Dsn]:
    """Every target named anywhere in `value` (a string, or lists and mappings of them)."""
    if isinstance(value, str):
        dsn = parse_dsn(value)
        if dsn is not None:
            yield dsn
    elif isinstance(value, dict):
        for item in value.values():
            yield from find_dsns(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from find_dsns(item)


def connection_url(text: str) -> str:
    """The target as a plain `postgresql://` URL, the form asyncpg takes: a driver
    suffix dropped, a keyword DSN rewritten (its values quoted)."""
    text = text.strip()
    if "://" in text:
        parts = urlsplit(text)
        return urlunsplit(parts._replace(scheme="postgresql"))
    pairs = {k.lower(): _unquote_keyword(v) for k, v in _KEYWORD.findall(text)}
    user = quote(pairs.pop("user", ""), safe="")
    password = pairs.pop("password", None)
    userinfo = (
        f"{user}:{quote(password, safe='')}@"
        if password is not None
        else (f"{user}@" if user else "")
    )
    host = pairs.pop("host", "")
    port = pairs.pop("port", "")
    database = quote(pairs.pop("dbname", ""), safe="")
    if host and "," not in host and not Dsn.is_socket(host):
        netloc = f"{userinfo}{host}{':' + port if port else ''}"
    else:  # sockets and several hosts go in the query, as libpq reads them
        netloc = userinfo.rstrip("@") + ("@" if userinfo else "")
        pairs.update({k: v for k, v in (("host", host), ("port", port)) if v})
    return urlunsplit(("postgresql", netloc, f"/{database}", urlencode(pairs), ""))
