"""A service's table as SQL names it, and a ``Query`` as the SQL that answers it."""

from __future__ import annotations

import builtins
from typing import Any

from cms_mock.stores import Fields, Query, folded


class Table:
    """A service's table, the columns the database computes from its records' fields, and the
    case folding its search text is made with (both settled as the store starts: ``schema``)."""

    def __init__(self, name: str, fields: Fields) -> None:
        self.name = name
        self.quoted = f'"{name}"'
        self.ids = f'"{name}_ids"'
        """The sequence integer ids are taken from."""
        self.fields = fields
        self.fold = ""
        """The collation ``lower`` folds with: ICU's root locale where the server has it, else the database's own."""
        self.search_column = ""
        """The column of the searched fields' text, when the table has one."""

    def search_text(self, fields: tuple[str, ...]) -> str:
        """The fields' text in lower case, joined by a character no field and no search text
        holds; a final sigma read as any other (``store.folded``)."""
        text = " || E'\\x1f' || ".join(f"coalesce(body->>{literal(field)}, '')" for field in fields)
        return f"replace(lower(({text}){self.fold}), E'\\u03c2', E'\\u03c3')" if fields else "''"

    def field(self, name: str, numbers: frozenset[str]) -> str:
        """A field of the record in a query: its column, or (a store opened without ``fields``)
        read from ``body``: text in code point order, as Python compares strings, or a number."""
        if name in self.fields.names:
            return f'"f_{name}"'
        return f"((body->>{literal(name)})::numeric)" if name in numbers else f'((body->>{literal(name)}) COLLATE "C")'

    def where(self, query: Query) -> tuple[str, builtins.list[Any]]:
        """The condition the records ``query`` selects meet, and its arguments."""
        conditions, arguments = ["true"], builtins.list[Any]()
        for field, value in query.equal:
            arguments.append(value)
            conditions.append(f"{self.field(field, frozenset())} = ${len(arguments)}")
        if query.text is not None:
            arguments.append("%" + folded(query.text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
            known = self.search_column and query.fields.searched == self.fields.searched
            searched = f'"{self.search_column}"' if known else self.search_text(query.fields.searched)
            conditions.append(f"{searched} LIKE ${len(arguments)}")
        return " AND ".join(conditions), arguments

    def order(self, query: Query) -> str:
        """``query``'s sort, ties in creation order."""
        order = ", ".join(f"{self.field(field, query.fields.numbers)}{' DESC' if descending else ''}" for field, descending in query.sort)
        return f"{order}, seq" if order else "seq"


def literal(text: str) -> str:
    """``text`` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"
