"""Reading the runbooks as PowerShell, without PowerShell: the PowerShell grammar for tree-sitter
(tree-sitter-powershell, the grammar editors use), and PowerShell's own rule for the single-quoted
strings that hold the file's names.

The grammar knows only the ASCII quote; PowerShell also closes a single-quoted string at
\u2018 \u2019 \u201a \u201b. So the strings' boundaries come from the grammar, and their content is
read here with PowerShell's rule, which refuses a quote of any kind that is not doubled.
"""

from __future__ import annotations

from collections.abc import Iterator

import tree_sitter_powershell
from tree_sitter import Language, Node, Parser

_PARSER = Parser(Language(tree_sitter_powershell.language()))
SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"


def parse(script: str) -> Node:
    """The syntax tree of `script` (without its byte-order mark)."""
    return _PARSER.parse(script.encode()).root_node


def syntax_errors(root: Node) -> list[str]:
    """Each place the grammar could not read, as 'line:column: text'."""
    return [
        f"{node.start_point.row + 1}:{node.start_point.column + 1}: {_text(node)!r}"
        for node in _walk(root)
        if node.type == "ERROR" or node.is_missing
    ]


def nodes(root: Node, kind: str) -> list[Node]:
    return [node for node in _walk(root) if node.type == kind]


def verbatim(literal: Node) -> str:
    """The value of a single-quoted string, as PowerShell reads it: each doubled quote is one
    quote. A quote not doubled would have ended the string there: an AssertionError."""
    text = _text(literal)
    assert text[0] == "'" and text[-1] == "'", text
    value: list[str] = []
    inside = iter(text[1:-1])
    for char in inside:
        if char in SINGLE_QUOTES:
            assert next(inside, "") in SINGLE_QUOTES, f"{text}: a quote ends the string early"
        value.append(char)
    return "".join(value)


def _text(node: Node) -> str:
    return (node.text or b"").decode()


def _walk(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children:
        yield from _walk(child)
