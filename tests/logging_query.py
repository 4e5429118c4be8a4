"""Cloud Logging's query language, as Google documents it, for the fake: parsed (a
malformed filter is refused as Logging refuses it) and evaluated on entries.

Comparisons `path OP value` (`=`, `!=`, `>`, `<`, `>=`, `<=`, `:` has, `=~`/`!~`
regular expressions), paths of names or quoted names (`labels."run.googleapis.com/x"`),
values quoted or bare; `NOT`/`-`, `AND` (or juxtaposition) and `OR`, where OR binds
tighter than AND, as in Logging; parentheses.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

__all__ = ["LoggingQueryError", "matches", "parse_query"]

_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<op>>=|<=|!=|=~|!~|[=<>:])|(?P<paren>[()])'
    r'|(?P<dot>\.)|(?P<word>[^\s()"=<>:!.]+))'
)
_OPERATORS = {"=", "!=", ">", "<", ">=", "<=", ":", "=~", "!~"}


class LoggingQueryError(ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise LoggingQueryError(f"unexpected {text[position : position + 10]!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise LoggingQueryError("the filter ends too soon")
        self.at += 1
        return token

    def conjunction(self) -> Any:
        terms = [self.disjunction()]
        while (token := self.peek()) is not None and token != ("paren", ")"):
            if token == ("word", "AND"):
                self.take()
            terms.append(self.disjunction())
        return ("and", terms) if len(terms) > 1 else terms[0]

    def disjunction(self) -> Any:
        terms = [self.negation()]
        while self.peek() == ("word", "OR"):
            self.take()
            terms.append(self.negation())
        return ("or", terms) if len(terms) > 1 else terms[0]

    def negation(self) -> Any:
        token = self.peek()
        if token in (("word", "NOT"),):
            self.take()
            return ("not", self.negation())
        if (
            token is not None
            and token[0] == "word"
            and token[1].startswith("-")
            and len(token[1]) > 1
        ):
            self.tokens[self.at] = ("word", token[1][1:])
            return ("not", self.negation())
        return self.primary()

    def primary(self) -> Any:
        token = self.take()
        if token == ("paren", "("):
            inner = self.conjunction()
            if self.take() != ("paren", ")"):
                raise LoggingQueryError("a parenthesis is not closed")
            return inner
        if token[0] not in ("word", "string") or token[1] in ("AND", "OR"):
            raise LoggingQueryError(f"unexpected {token[1]!r}")
        path = [self._segment(token)]
        while self.peek() == ("dot", "."):
            self.take()
            path.append(self._segment(self.take()))
        operator = self.peek()
        if operator is None or operator[0] != "op":
            if len(path) == 1:  # a bare value: a global restriction
                return ("has", path[0])
            raise LoggingQueryError(f"{'.'.join(path)!r} is not compared with anything")
        self.take()
        value = self.take()
        if value[0] not in ("word", "string") or value[1] in ("AND", "OR", "NOT"):
            raise LoggingQueryError(f"{'.'.join(path)} {operator[1]} has no value")
        return ("cmp", path, operator[1], self._segment(value))

    @staticmethod
    def _segment(token: tuple[str, str]) -> str:
        kind, text = token
        if kind == "string":
            return re.sub(r"\\(.)", r"\1", text[1:-1])
        if kind != "word":
            raise LoggingQueryError(f"unexpected {text!r}")
        return text


def parse_query(text: str) -> Any:
    """The filter's syntax tree; LoggingQueryError says what Logging would refuse."""
    if not text.strip():
        return ("and", [])
    parser = _Parser(text)
    tree = parser.conjunction()
    if parser.peek() is not None:
        raise LoggingQueryError(f"unexpected {parser.peek()[1]!r}")  # type: ignore[index]
    return tree


def _moment(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _lookup(entry: Any, path: list[str]) -> Any:
    for part in path:
        if not isinstance(entry, dict):
            return None
        entry = entry.get(part)
    return entry


def _compare(value: Any, operator: str, wanted: str, timestamp: bool) -> bool:
    if value is None:
        return operator == "!="
    if operator in ("=~", "!~"):
        found = re.search(wanted, str(value)) is not None
        return found if operator == "=~" else not found
    if operator == ":":
        return wanted.lower() in str(value).lower()
    left: Any = str(value)
    right: Any = wanted
    if timestamp and _moment(left) and _moment(right):
        left, right = _moment(left), _moment(right)
    return {
        "=": left == right,
        "!=": left != right,
        ">": left > right,
        "<": left < right,
        ">=": left >= right,
        "<=": left <= right,
    }[operator]


def matches(tree: Any, entry: dict[str, Any]) -> bool:
    kind = tree[0]
    if kind == "and":
        return all(matches(term, entry) for term in tree[1])
    if kind == "or":
        return any(matches(term, entry) for term in tree[1])
    if kind == "not":
        return not matches(tree[1], entry)
    if kind == "has":
        return tree[1].lower() in str(entry).lower()
    _, path, operator, wanted = tree
    return _compare(_lookup(entry, path), operator, wanted, path == ["timestamp"])


def lower_time_bound(tree: Any) -> bool:
    """Whether the filter bounds `timestamp` from below at its top level."""
    terms = tree[1] if tree[0] == "and" else [tree]
    return any(t[0] == "cmp" and t[1] == ["timestamp"] and t[2] in (">", ">=") for t in terms)
