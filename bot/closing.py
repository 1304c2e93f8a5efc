"""``with`` for the objects that hold connections: entering gives the object, leaving (also
on an error) calls its ``close``."""

from __future__ import annotations

from typing import Self


class Closing:
    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
