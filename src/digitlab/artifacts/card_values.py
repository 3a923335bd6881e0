"""Checks of the JSON values in a model card, from one number to a flat object or list of them (config,
versions, history, lr schedule): each returns the value as its type, or raises CardError naming the
field (`where`) and what it got. The card's sections (`card_sections`) are read with these."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import DigitlabError

_T = TypeVar("_T")

# Bounds that keep a hostile card from asking for gigabytes (the card's own are in card.py)
MAX_DEPTH = 16  # nesting of the card's JSON (it needs 4)
MAX_ITEMS = 100_000  # entries of any list or object (history rows, lr schedule values)
MAX_TEXT = 4096  # characters of any string (paths, notes)


class CardError(DigitlabError):
    """A card that is not valid; the message names the field (the loader adds the file's path)."""


def shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_depth(value: object) -> None:
    """Refuse JSON nested deeper than MAX_DEPTH (checked without recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                raise CardError(f"not a digitlab model file (nested deeper than {MAX_DEPTH} levels)")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def optional(value: object, where: str, check: Callable[[Any, str], _T]) -> _T | None:
    return None if value is None else check(value, where)


def read_object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CardError(f"{where} must be an object, got {shown(value)}")
    if len(value) > MAX_ITEMS:
        raise CardError(f"{where} has {len(value):,} entries (at most {MAX_ITEMS:,})")
    return value


def read_list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise CardError(f"{where} must be a list, got {shown(value)}")
    if len(value) > MAX_ITEMS:
        raise CardError(f"{where} has {len(value):,} entries (at most {MAX_ITEMS:,})")
    return value


def read_bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise CardError(f"{where} must be true or false, got {shown(value)}")
    return value


def read_int(value: object, where: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise CardError(f"{where} must be a whole number from {low:,} to {high:,}, got {shown(value)}")
    return value


def read_number(
    value: object, where: str, low: float = -math.inf, high: float = math.inf, finite: bool = True
) -> float:
    """A JSON number; NaN and infinities only where `finite` is False (a loss can be NaN)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise CardError(f"{where} must be a number, got {shown(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float
        raise CardError(f"{where} must be a finite number, got {shown(value)}") from None
    if math.isnan(number) or math.isinf(number):
        if finite:
            raise CardError(f"{where} must be a finite number, got {shown(value)}")
        return number
    if not low <= number <= high:
        raise CardError(f"{where} must lie in [{low:g}, {high:g}], got {shown(value)}")
    return value  # ints stay ints (an epoch number reads back as it was written)


def read_text(value: object, where: str, max_length: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise CardError(f"{where} must be a string, got {shown(value)}")
    if len(value) > max_length:
        raise CardError(f"{where} is {len(value):,} characters long (at most {max_length:,})")
    return value


def _scalar(value: object, where: str) -> Any:
    """A string, finite number, true/false or null."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return read_number(value, where) if isinstance(value, float) else value
    if isinstance(value, str):
        return read_text(value, where)
    raise CardError(f"{where} must be a string, number, true, false or null, got {shown(value)}")


def read_plain(value: object, where: str, depth: int = 0) -> Any:
    """Scalars, and lists and objects of them a few levels deep (provenance)."""
    if depth > 3:
        raise CardError(f"{where} is nested too deeply")
    if isinstance(value, list):
        return [read_plain(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(read_list(value, where))]
    if isinstance(value, dict):
        return {
            read_text(k, where, 200): read_plain(v, f"{where}.{k}", depth + 1)
            for k, v in read_object(value, where).items()
        }
    return _scalar(value, where)


def read_positive(value: object, where: str) -> float:
    number = read_number(value, where, 0.0, 1e6)
    if number == 0:
        raise CardError(f"{where} must be above 0, got 0")
    return number


def read_sha256(value: object, where: str) -> str:
    text = read_text(value, where, 64)
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise CardError(f"{where} must be 64 hexadecimal digits, got {shown(value)}")
    return text


def read_fraction(value: object, where: str) -> float | None:
    return None if value is None else float(read_number(value, where, 0.0, 1.0))


def read_per_class(
    value: object, where: str, classes: tuple[str, ...], check: Callable[[Any, str], _T]
) -> dict[str, _T]:
    spec = read_object(value, where)
    unknown = set(spec) - set(classes)
    if unknown:
        raise CardError(f"{where} names classes the model does not have: {sorted(unknown)[:5]}")
    return {c: check(spec[c], f"{where}.{c}") for c in classes if c in spec}


def read_config(value: object, where: str) -> dict[str, Any]:
    return {read_text(k, where, 100): _scalar(v, f"{where}.{k}") for k, v in read_object(value, where).items()}


def read_history(value: object, where: str) -> list[dict[str, float]]:
    rows: list[dict[str, float]] = []
    for i, row in enumerate(read_list(value, where)):
        entries = read_object(row, f"{where}[{i}]")
        rows.append(
            {read_text(k, where, 100): read_number(v, f"{where}[{i}].{k}", finite=False) for k, v in entries.items()}
        )
    return rows


def read_lr_schedule(value: object, where: str) -> list[float]:
    return [read_number(v, f"{where}[{i}]", 0.0) for i, v in enumerate(read_list(value, where))]


def read_versions(value: object, where: str) -> dict[str, str]:
    return {read_text(k, where, 100): read_text(v, f"{where}.{k}", 200) for k, v in read_object(value, where).items()}
