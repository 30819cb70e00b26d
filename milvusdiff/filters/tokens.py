"""Lexer for Milvus boolean filter expressions.

Follows the lexical rules of Milvus' Plan.g4: keywords are accepted only in all-lower or all-upper
case (`and`/`AND`, never `And`, which is an identifier), integers follow Go's base prefixes
(`0x1F`, `0b101`, and a leading `0` means octal), strings take C-style escapes in either quote
style, and `r"..."` is a raw string. Operators that Milvus' grammar knows but milvusdiff does not
translate (bitwise, `**`, regex match, template variables) are rejected here, where the exact
character position is known.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from milvusdiff.errors import FilterConversionError


class T(Enum):
    """Token kinds."""

    INT = "integer"
    FLOAT = "float"
    STRING = "string"
    BOOL = "boolean"
    IDENT = "identifier"
    META = "$meta"
    LPAREN = "("
    RPAREN = ")"
    LBRACKET = "["
    RBRACKET = "]"
    COMMA = ","
    CMP = "comparison operator"
    PLUS = "+"
    MINUS = "-"
    MULDIV = "arithmetic operator"
    AND = "and"
    OR = "or"
    NOT = "not"
    IN = "in"
    LIKE = "like"
    IS = "is"
    NULL = "null"
    EXISTS = "exists"
    EOF = "end of expression"


@dataclass(frozen=True)
class Token:
    kind: T
    text: str
    pos: int
    value: object = None


_KEYWORDS = {
    "and": T.AND,
    "or": T.OR,
    "not": T.NOT,
    "in": T.IN,
    "like": T.LIKE,
    "is": T.IS,
    "null": T.NULL,
    "exists": T.EXISTS,
}
_BOOLEANS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}

# Longest first, so `<=` wins over `<` and `**` over `*`.
_SYMBOLS: tuple[tuple[str, T], ...] = (
    ("==", T.CMP),
    ("!=", T.CMP),
    ("<=", T.CMP),
    (">=", T.CMP),
    ("&&", T.AND),
    ("||", T.OR),
    ("<", T.CMP),
    (">", T.CMP),
    ("!", T.NOT),
    ("+", T.PLUS),
    ("-", T.MINUS),
    ("*", T.MULDIV),
    ("/", T.MULDIV),
    ("%", T.MULDIV),
    ("(", T.LPAREN),
    (")", T.RPAREN),
    ("[", T.LBRACKET),
    ("]", T.RBRACKET),
    (",", T.COMMA),
)
_UNSUPPORTED_SYMBOLS: tuple[tuple[str, str], ...] = (
    ("**", "the power operator '**' is not supported"),
    ("<<", "the shift operator '<<' is not supported"),
    (">>", "the shift operator '>>' is not supported"),
    ("=~", "regular-expression match '=~' is not supported"),
    ("!~", "regular-expression match '!~' is not supported"),
    ("&", "the bitwise operator '&' is not supported"),
    ("|", "the bitwise operator '|' is not supported"),
    ("^", "the bitwise operator '^' is not supported"),
    ("~", "the bitwise operator '~' is not supported"),
    ("{", "template variables ('{name}') are not supported"),
    ("=", "'=' is not an operator; use '=='"),
)
_SIMPLE_ESCAPES = {
    "'": "'",
    '"': '"',
    "?": "?",
    "\\": "\\",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
}
_DIGITS = "0123456789"
_HEX = _DIGITS + "abcdefABCDEF"
_WORD_START = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
INT64_MAX = 2**63 - 1


def tokenize(text: str) -> list[Token]:
    """Split `text` into tokens, ending with an EOF token at position len(text)."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
        elif ch in "\"'" or (ch in "rR" and text[i + 1 : i + 2] in ("'", '"')):
            token, i = _read_string(text, i)
            tokens.append(token)
        elif ch in _DIGITS or (ch == "." and text[i + 1 : i + 2] in tuple(_DIGITS)):
            token, i = _read_number(text, i)
            tokens.append(token)
        elif ch in _WORD_START:
            token, i = _read_word(text, i)
            tokens.append(token)
        elif text.startswith("$meta", i) and not _is_word_char(text[i + 5 : i + 6]):
            tokens.append(Token(T.META, "$meta", i))
            i += 5
        else:
            token = _read_symbol(text, i)
            tokens.append(token)
            i += len(token.text)
    tokens.append(Token(T.EOF, "", n))
    return tokens


def _is_word_char(ch: str) -> bool:
    return ch != "" and ch in _WORD_START + _DIGITS


def _read_symbol(text: str, i: int) -> Token:
    for symbol, message in _UNSUPPORTED_SYMBOLS:
        if text.startswith(symbol, i) and not any(text.startswith(s, i) and len(s) > len(symbol) for s, _ in _SYMBOLS):
            raise FilterConversionError(message, position=i, construct=symbol)
    for symbol, kind in _SYMBOLS:
        if text.startswith(symbol, i):
            return Token(kind, symbol, i)
    raise FilterConversionError(f"unexpected character {text[i]!r}", position=i, construct="character")


def _read_word(text: str, start: int) -> tuple[Token, int]:
    end = start
    while end < len(text) and _is_word_char(text[end]):
        end += 1
    word = text[start:end]
    if word in _BOOLEANS:
        return Token(T.BOOL, word, start, _BOOLEANS[word]), end
    keyword = _KEYWORDS.get(word.lower())
    if keyword is not None and word in (word.lower(), word.upper()):
        return Token(keyword, word, start), end
    return Token(T.IDENT, word, start), end


def _read_number(text: str, start: int) -> tuple[Token, int]:
    end = start
    while end < len(text) and (_is_word_char(text[end]) or text[end] == "."):
        # An exponent sign belongs to the number: 1e-5.
        end += 1
        if text[end - 1] in "eE" and text[end : end + 1] in ("+", "-") and not text[start:end].startswith(("0x", "0X")):
            end += 1
    raw = text[start:end]
    token = _parse_number(raw, start)
    if token is None:
        raise FilterConversionError(f"malformed number {raw!r}", position=start, construct="number")
    return token, end


def _parse_number(raw: str, pos: int) -> Token | None:
    lowered = raw.lower()
    if "_" in raw:
        return None
    try:
        if lowered.startswith("0x"):
            return Token(T.INT, raw, pos, int(raw[2:], 16))
        if lowered.startswith("0b"):
            return Token(T.INT, raw, pos, int(raw[2:], 2))
        if all(c in _DIGITS for c in raw):
            # Go's base-0 rule, as Milvus parses integers: a leading zero means octal.
            value = int(raw, 8) if len(raw) > 1 and raw[0] == "0" else int(raw)
            return Token(T.INT, raw, pos, value)
        if any(c not in _DIGITS + ".eE+-" for c in raw):
            return None
        value_f = float(raw)
    except ValueError:
        return None
    if not math.isfinite(value_f):
        raise FilterConversionError(f"float literal {raw!r} is out of range", position=pos, construct="number")
    return Token(T.FLOAT, raw, pos, value_f)


def _read_string(text: str, start: int) -> tuple[Token, int]:
    raw = text[start] in "rR"
    quote_at = start + 1 if raw else start
    quote = text[quote_at]
    out: list[str] = []
    i = quote_at + 1
    while i < len(text):
        ch = text[i]
        if ch == quote:
            return Token(T.STRING, text[start : i + 1], start, "".join(out)), i + 1
        if ch in "\r\n":
            break
        if ch == "\\" and raw:
            # A raw string keeps its backslashes; one only stops the next quote from closing it.
            out.append(text[i : i + 2])
            i += 2
        elif ch == "\\":
            value, i = _read_escape(text, i)
            out.append(value)
        else:
            out.append(ch)
            i += 1
    raise FilterConversionError("unterminated string literal", position=start, construct="string literal")


def _read_escape(text: str, i: int) -> tuple[str, int]:
    """Decode the escape sequence starting at the backslash text[i]; return (value, next index)."""
    kind = text[i + 1 : i + 2]
    if kind in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[kind], i + 2
    digits = ""
    if kind in ("x", "u", "U"):
        width = {"x": 2, "u": 4, "U": 8}[kind]
        digits = text[i + 2 : i + 2 + width]
        end = i + 2 + width
        valid = len(digits) == width and all(c in _HEX for c in digits)
        code = int(digits, 16) if valid else -1
    else:
        end = i + 1
        while end < len(text) and end < i + 4 and text[end] in "01234567":
            end += 1
        valid = end > i + 1
        code = int(text[i + 1 : end], 8) if valid else -1
    # \x and octal escapes denote bytes in Milvus (Go); only the ASCII ones are characters.
    byte_escape = kind not in ("u", "U")
    if not valid or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF or (byte_escape and code > 0x7F):
        raise FilterConversionError(
            f"invalid escape sequence {text[i:end]!r} in string literal", position=i, construct="escape sequence"
        )
    if code == 0:
        raise FilterConversionError(
            "a NUL character in a string literal is not supported", position=i, construct="escape sequence"
        )
    return chr(code), end
