"""`L`: the list the book's cells get from fastcore (`path.ls()`, `L(enumerate(...))`,
`L(learn.recorder.values).itemgot(2)`), written here with the part of its behaviour chapter 4 uses.

    L(range(12))                       # (#12) [0,1,2,3,4,5,6,7,8,9...]
    L(enumerate("abc")).itemgot(1)     # (#3) ['a','b','c']
    paths.sorted(), xs.map(f), xs.filter(f), xs[[0, 2]], xs[mask]

A plain list underneath (`list(xs)`, `len`, iteration, `==` with a list), so nothing in the book
needs to know it is not fastcore's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, SupportsIndex, overload

SHOWN = 10  # items in the repr before "..."


class L(list[Any]):
    """A list with fastcore's repr and helpers; `L(x)` of a non-iterable (or a string) holds x itself."""

    def __init__(self, items: Any = None, *rest: Any) -> None:
        if rest:
            items = [items, *rest]
        if items is None:
            items = []
        elif isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
            items = [items]
        super().__init__(items)

    def __repr__(self) -> str:
        shown = ",".join(repr(x) for x in list.__getitem__(self, slice(SHOWN)))
        more = "..." if len(self) > SHOWN else ""
        return f"(#{len(self)}) [{shown}{more}]"

    @overload
    def __getitem__(self, index: SupportsIndex) -> Any: ...
    @overload
    def __getitem__(self, index: slice | Iterable[Any]) -> L: ...

    def __getitem__(self, index: Any) -> Any:
        """An int or a slice as a list; a list of ints, or of bools (a mask), picks items, as fastcore."""
        if isinstance(index, SupportsIndex) and not hasattr(index, "__len__"):
            return list.__getitem__(self, index)
        if isinstance(index, slice):
            return L(list.__getitem__(self, index))
        picks = list(index)
        if picks and all(isinstance(p, bool) for p in picks):
            return L(x for x, keep in zip(self, picks) if keep)
        return L(list.__getitem__(self, int(p)) for p in picks)

    def sorted(self, key: Callable[[Any], Any] | str | None = None, reverse: bool = False) -> L:
        """Sorted copy; key: a function or an attribute name, as fastcore's."""
        if isinstance(key, str):
            name = key
            return L(sorted(self, key=lambda x: getattr(x, name), reverse=reverse))
        return L(sorted(self, key=key, reverse=reverse))

    def map(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> L:
        return L(f(x, *args, **kwargs) for x in self)

    def filter(self, f: Callable[[Any], Any] | None = None, negate: bool = False) -> L:
        keep = f or bool
        return L(x for x in self if bool(keep(x)) != negate)

    def itemgot(self, *indices: Any) -> L:
        """Each item's [i] (then [j] of that, ...): `L(recorder.values).itemgot(2)` is the metric column."""
        result = self
        for i in indices:
            result = L(x[i] for x in result)
        return result

    def attrgot(self, name: str, default: Any = None) -> L:
        return L(getattr(x, name, default) for x in self)

    def unique(self) -> L:
        return L(dict.fromkeys(self))

    def enumerate(self) -> L:
        return L(enumerate(self))

    def zip(self) -> L:
        return L(zip(*self))

    def __add__(self, other: Iterable[Any]) -> L:
        return L([*self, *other])
