"""Text that PostgreSQL cannot store, made storable on the way into a read model.

``text`` and ``jsonb`` refuse the NUL character (U+0000). The API refuses it at the
edge, but events written before that (or by a release that did not) hold it, and a
read model must not fail on them for ever: on view connections a NUL is written as
U+FFFD, the replacement character, in text and in JSON alike. The event keeps
what was recorded; only the copy shown is replaced."""

from __future__ import annotations

import json
import re
from typing import Any

from psycopg import Connection
from psycopg.types.json import set_json_dumps
from psycopg.types.string import StrBinaryDumper, StrDumperUnknown

REPLACEMENT = "\ufffd"
# A \u0000 escape in JSON text, not preceded by an odd run of backslashes (which
# would make it the literal characters "\u0000").
_JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


class _NulSafeText(StrDumperUnknown):
    def dump(self, obj: str) -> Any:
        return super().dump(obj.replace("\x00", REPLACEMENT) if "\x00" in obj else obj)


class _NulSafeBinary(StrBinaryDumper):
    def dump(self, obj: str) -> Any:
        return super().dump(obj.replace("\x00", REPLACEMENT) if "\x00" in obj else obj)


def _dumps(obj: Any) -> str:
    text = json.dumps(obj)
    return _JSON_NUL.sub(r"\1\\ufffd", text) if "\\u0000" in text else text


def make_nul_safe(conn: Connection[Any]) -> None:
    conn.adapters.register_dumper(str, _NulSafeBinary)
    conn.adapters.register_dumper(str, _NulSafeText)
    set_json_dumps(_dumps, context=conn)
