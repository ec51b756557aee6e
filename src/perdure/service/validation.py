"""Checks on values that come from outside, made before anything is stored.

Each refusal is an ``InvalidParameterError`` (400) that names the value and the fix, so a
hostile or careless request never reaches the database half-checked: PostgreSQL cannot store
some strings that Python holds, both databases overflow on some numbers that Python parses,
and Python's own JSON parser fails on input nested too deeply.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

from perdure.errors import InvalidParameterError

# Payloads and request bodies may nest arrays and objects this deep. Python's json module (in
# the API, in the SDK that decodes payloads in a worker, in the dashboard that pretty-prints
# them) recurses once per level and raises RecursionError at the interpreter's limit of 1,000
# frames, counting its caller's own frames; a payload that passes here must still decode there,
# a few hundred frames down a worker's or a page's stack. Half of that limit leaves the room.
MAX_JSON_DEPTH = 512

# Lambda's pattern for a function name, asked of an execution's name too.
NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
NAME_RULE = "1 to 64 letters, digits, '-' or '_'"
# Lambda's pattern for a version or alias name (Invoke's Qualifier).
QUALIFIER = re.compile(r"[a-zA-Z0-9$_-]{1,128}")
QUALIFIER_RULE = "1 to 128 characters among letters, digits, '$', '_' and '-' ([a-zA-Z0-9$_-])"
# Lambda's pattern for a tenant ID (X-Amz-Tenant-Id, ChainedInvokeOptions.TenantId).
TENANT_ID = re.compile(r"[a-zA-Z0-9._:/=+\-@ ]{1,256}")
TENANT_ID_RULE = "1 to 256 characters among letters, digits, '._:/=+-@' and space"

# SQLite's INTEGER and PostgreSQL's bigint both end here.
MAX_STORED_INTEGER = 2**63 - 1

# A JSON string, escapes included (unrolled so a long string is one pass, not one match per character).
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_NESTING = {"[": 1, "{": 1, "]": -1, "}": -1}
# PostgreSQL's text cannot hold NUL; a lone surrogate cannot be encoded as UTF-8 for either database.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def check_json_depth(what: str, text: str) -> None:
    """Refuses ``text`` if its arrays and objects nest more than ``MAX_JSON_DEPTH`` levels deep.

    It is counted without parsing (parsing is what fails on deep input), over the brackets
    outside JSON strings; text that is not JSON is counted the same way.
    """
    # Almost every payload has fewer brackets in all than the limit: one count decides.
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return
    brackets = _BRACKET.findall(_JSON_STRING.sub("", text))
    if brackets and max(accumulate(map(_NESTING.__getitem__, brackets))) > MAX_JSON_DEPTH:
        raise InvalidParameterError(
            f"The {what} is nested more than {MAX_JSON_DEPTH} levels deep (arrays and objects within each "
            "other). Flatten it, or send it as a string."
        )


def check_text(what: str, value: str) -> None:
    """Refuses a string that cannot be stored: one with NUL (U+0000) or a lone surrogate."""
    problem = unstorable(value)
    if problem is not None:
        raise InvalidParameterError(f"The {what} {problem}. Remove it, or encode the value (as base64, for instance).")


def unstorable(value: str) -> str | None:
    """Says what in ``value`` cannot be stored ("contains the NUL character ..."), or None."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    code = ord(found.group())
    character = "the NUL character (U+0000)" if code == 0 else f"a lone surrogate (U+{code:04X})"
    return (
        f"contains {character}, which Perdure cannot hold: PostgreSQL text cannot hold NUL, "
        "and text is stored as UTF-8"
    )


def check_strings(what: str, value: Any) -> None:
    """Refuses a parsed JSON value if any string in it, key or value, fails ``check_text``."""
    for path, text in _strings(what, value):
        check_text(path, text)


def _strings(path: str, value: Any) -> Iterator[tuple[str, str]]:
    # Walked with a stack, not recursion: the depth is bounded, but a stack costs nothing.
    pending = [(path, value)]
    while pending:
        where, item = pending.pop()
        if isinstance(item, str):
            yield where, item
        elif isinstance(item, dict):
            for key, inner in item.items():
                yield f"key {key!r} of the {where}", key
                pending.append((f"{where} field {key!r}", inner))
        elif isinstance(item, list):
            pending.extend((f"{where} item {index}", inner) for index, inner in enumerate(item))


def parse_count(text: str) -> int | None:
    """Returns ``text`` as a number when it is plain ASCII digits that fit a database integer, else None.

    ``str.isdigit`` alone accepts "²" and "٣", which ``int`` then refuses or reads.
    """
    if not text.isascii() or not text.isdigit():
        return None
    number = int(text)
    return number if number <= MAX_STORED_INTEGER else None


def check_qualifier(qualifier: str) -> None:
    """Refuses a qualifier outside Lambda's pattern: it becomes part of an ARN and a reply header."""
    if not QUALIFIER.fullmatch(qualifier):
        raise InvalidParameterError(
            f"Invalid Qualifier {qualifier!r}: a version or alias name is {QUALIFIER_RULE}."
        )
