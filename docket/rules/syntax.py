"""A parser for CEL source, only ever given source the ``cel`` engine has
already accepted (the engine is the authority on syntax; it exposes no
syntax tree, only the names an expression references). The tokenizer and
recursive-descent parser follow the cel-spec grammar and build a small tree
of frozen dataclasses (``_Lit``, ``_Ident``, ``_Select``, ``_Call`` ...);
``_scoped`` walks it with the comprehension variables in scope and ``_emit``
turns a tree back into CEL source with every operator parenthesised. The
tree serves the load-time static checks (:mod:`docket.rules.compiler`) and
the source-to-source rewrite (:mod:`docket.rules.rewrite`); an expression
it cannot handle raises ``_Unsupported``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from docket.rules.engine import _COMPREHENSIONS


class _Unsupported(Exception):
    """The engine accepted an expression this module's parser cannot handle."""


@dataclass(frozen=True)
class _Lit:
    kind: str  # int | uint | double | string | bytes | bool | null
    text: str  # the literal exactly as written


@dataclass(frozen=True)
class _Ident:
    name: str


@dataclass(frozen=True)
class _Select:
    operand: Any
    field: str


@dataclass(frozen=True)
class _Call:
    target: Any  # None for a global call f(x); the receiver for x.f()
    name: str
    args: tuple


@dataclass(frozen=True)
class _Index:
    operand: Any
    index: Any


@dataclass(frozen=True)
class _List:
    items: tuple


@dataclass(frozen=True)
class _Map:
    entries: tuple  # ((key, value), ...)


@dataclass(frozen=True)
class _Unary:
    op: str
    operand: Any


@dataclass(frozen=True)
class _Binary:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class _Cond:
    cond: Any
    then: Any
    other: Any


_STRING_BODY = (
    r"'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"|'(?:\\.|[^\\'\n\r])*'|\"(?:\\.|[^\\\"\n\r])*\""
)
_RAW_STRING_BODY = r"'''.*?'''|\"\"\".*?\"\"\"|'[^'\n\r]*'|\"[^\"\n\r]*\""
_TOKEN = re.compile(
    r"(?P<space>[\t\n\f\r ]+|//[^\n]*)"
    rf"|(?P<raw>(?:[rR][bB]?|[bB][rR])(?:{_RAW_STRING_BODY}))"
    rf"|(?P<string>[bB]?(?:{_STRING_BODY}))"
    r"|(?P<number>0[xX][0-9a-fA-F]+[uU]?|(?:\d+\.\d+|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\d+[uU]?)"
    r"|(?P<ident>[_a-zA-Z][_a-zA-Z0-9]*)"
    r"|(?P<op>\|\||&&|==|!=|<=|>=|[-+*/%<>!?:.,()\[\]{}])",
    re.S,
)
_RELATIONS = frozenset({"<", "<=", ">", ">=", "==", "!=", "in"})


def _tokenize(source: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            raise _Unsupported(f"unexpected character {source[pos]!r} at offset {pos}")
        pos = match.end()
        kind = match.lastgroup
        if kind == "space":
            continue
        text = match.group()
        if kind in ("raw", "string"):
            prefix = text[: len(text) - len(text.lstrip("rRbB"))]
            kind = "bytes" if "b" in prefix.lower() else "string"
        tokens.append((kind, text))
    tokens.append(("end", ""))
    return tokens


class _Parser:
    """Recursive descent over the CEL grammar (cel-spec ``langdef.md``)."""

    def __init__(self, source: str):
        self.tokens = _tokenize(source)
        self.pos = 0

    def parse(self):
        node = self.expr()
        if self.tokens[self.pos][0] != "end":
            raise _Unsupported(f"unexpected {self.tokens[self.pos][1]!r}")
        return node

    def peek(self, offset: int = 0) -> tuple[str, str]:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def accept(self, text: str) -> bool:
        kind, value = self.tokens[self.pos]
        if value == text and kind in ("op", "ident"):
            self.pos += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            raise _Unsupported(f"expected {text!r}, found {self.peek()[1]!r}")

    def expr(self):
        cond = self.logical("||", self.conjunction)
        if self.accept("?"):
            then = self.logical("||", self.conjunction)
            self.expect(":")
            return _Cond(cond, then, self.expr())
        return cond

    def logical(self, op: str, operand):
        node = operand()
        while self.accept(op):
            node = _Binary(op, node, operand())
        return node

    def conjunction(self):
        return self.logical("&&", self.relation)

    def relation(self):
        node = self.addition()
        while self.peek()[1] in _RELATIONS and self.peek()[0] in ("op", "ident"):
            op = self.peek()[1]
            self.pos += 1
            node = _Binary(op, node, self.addition())
        return node

    def addition(self):
        node = self.multiplication()
        while self.peek()[0] == "op" and self.peek()[1] in ("+", "-"):
            op = self.peek()[1]
            self.pos += 1
            node = _Binary(op, node, self.multiplication())
        return node

    def multiplication(self):
        node = self.unary()
        while self.peek()[0] == "op" and self.peek()[1] in ("*", "/", "%"):
            op = self.peek()[1]
            self.pos += 1
            node = _Binary(op, node, self.unary())
        return node

    def unary(self):
        for op in ("!", "-"):
            count = 0
            while self.accept(op):
                count += 1
            if count:
                # As in cel-go and cel-rust, an even run (``!!x``, ``--x``) is no operator at all.
                operand = self.unary() if self.peek() in (("op", "!"), ("op", "-")) else self.member()
                return operand if count % 2 == 0 else _Unary(op, operand)
        return self.member()

    def member(self):
        node = self.primary()
        while True:
            if self.accept("."):
                name = self.identifier()
                node = _Call(node, name, self.arguments(")")) if self.accept("(") else _Select(node, name)
            elif self.accept("["):
                index = self.expr()
                self.expect("]")
                node = _Index(node, index)
            else:
                return node

    def identifier(self) -> str:
        kind, text = self.peek()
        if kind != "ident":
            raise _Unsupported(f"expected an identifier, found {text!r}")
        self.pos += 1
        return text

    def arguments(self, close: str) -> tuple:
        items = []
        while not self.accept(close):
            items.append(self.expr())
            if not self.accept(","):
                self.expect(close)
                break
        return tuple(items)

    def primary(self):
        kind, text = self.peek()
        if kind == "op" and text == "." and self.peek(1)[0] == "ident":
            self.pos += 1
            return self.named("." + self.identifier())
        if kind == "ident":
            if text in ("true", "false"):
                self.pos += 1
                return _Lit("bool", text)
            if text == "null":
                self.pos += 1
                return _Lit("null", text)
            if text == "in":
                raise _Unsupported("unexpected 'in'")
            self.pos += 1
            return self.named(text)
        if kind == "number":
            self.pos += 1
            if text[:2].lower() == "0x":
                return _Lit("uint" if text[-1] in "uU" else "int", text)
            if text[-1] in "uU":
                return _Lit("uint", text)
            return _Lit("double" if any(c in text for c in ".eE") else "int", text)
        if kind in ("string", "bytes"):
            self.pos += 1
            return _Lit(kind, text)
        if self.accept("("):
            node = self.expr()
            self.expect(")")
            return node
        if self.accept("["):
            return _List(self.arguments("]"))
        if self.accept("{"):
            entries = []
            while not self.accept("}"):
                key = self.expr()
                self.expect(":")
                entries.append((key, self.expr()))
                if not self.accept(","):
                    self.expect("}")
                    break
            return _Map(tuple(entries))
        raise _Unsupported(f"unexpected {text!r}")

    def named(self, name: str):
        if self.accept("("):
            return _Call(None, name, self.arguments(")"))
        if self.peek() == ("op", "{"):
            raise _Unsupported("message construction is not supported")
        return _Ident(name)


def _children(node) -> tuple:
    if isinstance(node, _Select):
        return (node.operand,)
    if isinstance(node, _Call):
        return ((node.target,) if node.target is not None else ()) + node.args
    if isinstance(node, _Index):
        return (node.operand, node.index)
    if isinstance(node, _List):
        return node.items
    if isinstance(node, _Map):
        return tuple(part for entry in node.entries for part in entry)
    if isinstance(node, _Unary):
        return (node.operand,)
    if isinstance(node, _Binary):
        return (node.left, node.right)
    if isinstance(node, _Cond):
        return (node.cond, node.then, node.other)
    return ()


def _is_comprehension(node) -> bool:
    return (
        isinstance(node, _Call)
        and node.target is not None
        and node.name in _COMPREHENSIONS
        and len(node.args) >= 2
        and isinstance(node.args[0], _Ident)
    )


def _scoped(node, bound: frozenset = frozenset()):
    """Yield ``(node, bound)`` for every node, ``bound`` being the comprehension variables in scope."""
    yield node, bound
    if _is_comprehension(node):
        yield from _scoped(node.target, bound)
        inner = bound | {node.args[0].name}
        for arg in node.args[1:]:
            yield from _scoped(arg, inner)
        return
    for child in _children(node):
        yield from _scoped(child, bound)


def _emit(node) -> str:
    """CEL source for ``node``; every operator application is parenthesised."""
    if isinstance(node, _Lit):
        return node.text
    if isinstance(node, _Ident):
        return node.name
    if isinstance(node, _Select):
        return f"{_emit(node.operand)}.{node.field}"
    if isinstance(node, _Call):
        args = ", ".join(_emit(a) for a in node.args)
        return f"{node.name}({args})" if node.target is None else f"{_emit(node.target)}.{node.name}({args})"
    if isinstance(node, _Index):
        return f"{_emit(node.operand)}[{_emit(node.index)}]"
    if isinstance(node, _List):
        return "[" + ", ".join(_emit(i) for i in node.items) + "]"
    if isinstance(node, _Map):
        return "{" + ", ".join(f"{_emit(k)}: {_emit(v)}" for k, v in node.entries) + "}"
    if isinstance(node, _Unary):
        return f"({node.op}{_emit(node.operand)})"
    if isinstance(node, _Binary):
        return f"({_emit(node.left)} {node.op} {_emit(node.right)})"
    if isinstance(node, _Cond):
        return f"({_emit(node.cond)} ? {_emit(node.then)} : {_emit(node.other)})"
    raise TypeError(node)  # pragma: no cover
