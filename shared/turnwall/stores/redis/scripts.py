"""The Lua scripts of the Redis store, one `.lua` file each in ``scripts/`` beside this.

Each script is one atomic step on the keys of one hash tag (so it runs unchanged on a
cluster); its file says what KEYS and ARGV it takes and what it returns. A file is
read once, on the script's first run, and its SHA1 computed then; the script itself is
cached by each Redis node on its first EVAL there (see `RedisConnection.run`).
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Final

__all__ = ["LuaScript"]

# Session scripts that slide expiry start with these shared local functions.
_HELPERS: Final = "helpers"


class LuaScript:
    """One script from ``scripts/<name>.lua``, read on first use."""

    def __init__(self, name: str, *, with_helpers: bool = False) -> None:
        self.name = name
        self._parts = (_HELPERS, name) if with_helpers else (name,)
        self._source: str | None = None
        self._sha: str | None = None

    @property
    def source(self) -> str:
        if self._source is None:
            folder = resources.files(__package__).joinpath("scripts")
            self._source = "".join(
                folder.joinpath(f"{part}.lua").read_text(encoding="utf-8") for part in self._parts
            )
        return self._source

    @property
    def sha(self) -> str:
        if self._sha is None:
            self._sha = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()
        return self._sha


INSERT: Final = LuaScript("insert", with_helpers=True)
TOUCH: Final = LuaScript("touch", with_helpers=True)
APPEND: Final = LuaScript("append", with_helpers=True)
COMMIT_RISK: Final = LuaScript("commit_risk", with_helpers=True)
DELETE: Final = LuaScript("delete")
PURGE: Final = LuaScript("purge")
READ_MESSAGES: Final = LuaScript("read_messages")
RESTORE: Final = LuaScript("restore")
REPLACE_FIELD: Final = LuaScript("replace_field")
REPLACE_MESSAGE: Final = LuaScript("replace_message")
INDEX_ADD: Final = LuaScript("index_add")
INDEX_PRUNE: Final = LuaScript("index_prune")
