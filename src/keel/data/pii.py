"""Personal data in columns: detectors with counts and masked examples, and the masking and salted hashing
behind the ``mask_pii`` and ``hash_pii`` transforms.

>>> keel.data.find_pii(df)                      # doctest: +SKIP
[PIIFinding(column='email', kind='email', count=2000, share=1.0, examples=('u***@e******.com', ...))]

Detectors (``KINDS``), each searching inside text, not only whole values:

- ``email``: ``local@domain.tld`` (RFC 5322's common subset: no quoted local parts, no IP literals).
- ``phone``: E.164 (``+`` then 8 to 15 digits, single spaces or dashes allowed between them); the national
  formats of North America (``(555) 234-5678``, ``555-234-5678``, ``555.234.5678``; NANP area and exchange
  codes start 2-9), the UK (``020 7946 0958``, ``07700 900123``) and France (``01 23 45 67 89``). National
  numbers need their separators: an undelimited run of digits is far more often an id than a phone number.
- ``card``: 13 to 19 digits (single spaces or dashes between them), not starting with 0, passing the Luhn
  check. A random number passes Luhn one time in ten, so a column where fewer than half of 20 or more
  card-shaped values pass is taken for ids, not cards.
- ``iban``: ISO 13616: a country code, 2 check digits and the account (grouped by 4 or not, any case),
  the exact length of that country and the mod-97 check.
- ``ipv4``/``ipv6``: candidates that the stdlib ``ipaddress`` module accepts; dotted runs longer than four
  (``1.2.3.4.5``) and tokens glued to letters (``v1.2.3.4``) are versions, not addresses.
- ``name``: only in columns declared free text: a given name from a shipped list of about 460 common ones
  (``keel.data.pii_names``) followed by a capitalised surname (``Maria Garcia``, ``Sean O'Brien``).

Counting is vectorised: one RE2 pass (pyarrow) per detector over the column; the checks that need
code (Luhn, mod 97, ``ipaddress``, the name list) run in Python on the candidate values only.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import itertools
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from keel.core.errors import InvalidArgument
from keel.data.frames import require_arrow, to_arrow
from keel.data.pii_names import FIRST_NAMES

KINDS = ("email", "phone", "card", "iban", "ipv4", "ipv6", "name")
STRUCTURED_KINDS = KINDS[:-1]  # names are searched for only where a column is declared free text
EXAMPLES = 3
SALT_ENV = "KEEL_PII_SALT"
MIN_SALT_BYTES = 16
_FINGERPRINT_SUFFIX = b"keel-pii-fingerprint"
# Luhn passes 1 random number in 10: below this share of valid candidates a column holds ids, not cards
_CARD_MIN_VALID_SHARE = 0.5
_CARD_MIN_CANDIDATES = 20

Span = tuple[int, int]


@dataclass(frozen=True)
class PIIFinding:
    """Personal data of one kind in one column: how many values hold it, their share of the rows, and up to
    three examples, masked (never the raw value)."""

    column: str
    kind: str
    count: int
    share: float
    examples: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The finding as JSON-ready data."""
        return {**asdict(self), "examples": list(self.examples)}


# --- validators and masks ---------------------------------------------------------------------------------


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn check (payment card numbers)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_valid(text: str) -> bool:
    digits = re.sub("[^0-9]", "", text)
    return 13 <= len(digits) <= 19 and digits[0] != "0" and luhn_valid(digits)


# ISO 13616 IBAN lengths by country (the SWIFT IBAN registry)
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29,
    "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
    "YE": 30,
}  # fmt: skip


def iban_valid(text: str) -> bool:
    """Whether ``text`` (spaces allowed, any case) is an IBAN: a known country, its exact length, mod 97 == 1."""
    iban = text.replace(" ", "").upper()
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban[2:4].isdigit() or not iban.isalnum() or not iban.isascii():
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _ipv4_valid(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _ipv6_valid(text: str) -> bool:
    if not any(c not in ":." for c in text):  # "::" alone is grammatical but says nothing
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _stars(n: int) -> str:
    return "*" * max(n, 3)  # at least three, so a short value's length does not show


def _mask_email(text: str) -> str:
    local, _, domain = text.rpartition("@")
    labels = domain.split(".")
    masked = [label[:1] + _stars(len(label) - 1) for label in labels[:-1]]
    return f"{local[:1]}{_stars(len(local) - 1)}@{'.'.join([*masked, labels[-1]])}"


def _keep_last(text: str, keep: int, keep_prefix: int = 0) -> str:
    """Star every letter or digit but the first ``keep_prefix`` and the last ``keep``; separators stay."""
    positions = [i for i, ch in enumerate(text) if ch.isalnum()]
    shown = set(positions[:keep_prefix]) | set(positions[-keep:] if keep else [])
    return "".join(ch if (i in shown or not ch.isalnum()) else "*" for i, ch in enumerate(text))


def _mask_ip(text: str, sep: str) -> str:
    first, _, rest = text.partition(sep)
    return first + sep + re.sub("[0-9A-Za-z]+", "*", rest)


def _mask_name(text: str) -> str:
    return " ".join(token[:1] + _stars(len(token) - 1) for token in text.split())


def _normalise_phone(text: str) -> str:
    return ("+" if text.startswith("+") else "") + re.sub("[^0-9]", "", text)


# --- detectors --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Detector:
    kind: str
    re2: str  # the candidate test pyarrow runs over the whole column (RE2: no lookarounds)
    pattern: re.Pattern[str]  # the same shape in Python, with exact edges, for spans
    mask: Callable[[str], str]
    normalise: Callable[[str], str]  # what is hashed: one person's value written two ways hashes the same
    valid: Callable[[str], bool] | None = None  # None: the RE2 match is the verdict, no Python pass needed

    def spans(self, text: str) -> Iterator[Span]:
        for m in self.pattern.finditer(text):
            if self.valid is None or self.valid(m.group()):
                yield m.span()


class _IbanDetector(_Detector):
    """IBAN-shaped runs, cut at the length of their country: written in groups of 4, an IBAN may be followed by a
    word the pattern also takes for a group (``BE68 5390 0754 7034 please``)."""

    def spans(self, text: str) -> Iterator[Span]:
        for m in self.pattern.finditer(text):
            length = IBAN_LENGTHS.get(m.group()[:2].upper())
            if length is None:
                continue
            seen, end = 0, m.start()
            while end < m.end() and seen < length:
                seen += text[end] != " "
                end += 1
            if seen == length and (end == m.end() or text[end] == " ") and iban_valid(text[m.start() : end]):
                yield m.start(), end


_TOKEN = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")  # O'Brien, O\u2019Brien, Smith-Jones


class _NameDetector(_Detector):
    """A listed given name, then (after spaces or tabs) a capitalised surname with a lower-case letter."""

    def spans(self, text: str) -> Iterator[Span]:
        tokens = list(self.pattern.finditer(text))
        for first, last in itertools.pairwise(tokens):
            gap = text[first.end() : last.start()]
            surname = last.group()
            if (
                first.group() in FIRST_NAMES
                and gap.strip(" \t") == "" and gap
                and surname[0].isupper() and any(c.islower() for c in surname)
            ):  # fmt: skip
                yield first.start(), last.end()


def _edged(core: str, before: str, after: str) -> tuple[str, re.Pattern[str]]:
    """RE2 and Python forms of ``core`` where the character before is not in class ``before`` and the one after
    not in class ``after`` (RE2 has no lookarounds, so it consumes the neighbour; fine for a yes/no test)."""
    re2 = f"(?:^|[^{before}])(?:{core})(?:$|[^{after}])"
    return re2, re.compile(f"(?<![{before}])(?:{core})(?![{after}])")


_EMAIL = (
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}"
)
_PHONE = "|".join((
    r"\+[1-9](?:[ -]?[0-9]){7,14}",  # E.164, 8 to 15 digits
    r"(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[-. ])[2-9][0-9]{2}[-. ][0-9]{4}",  # North America (NANP)
    r"0[1-9][0-9]{1,3}[ -][0-9]{3,4}[ -]?[0-9]{3,4}",  # UK
    r"0[1-9](?:[ .-][0-9]{2}){4}",  # France
))  # fmt: skip
_CARD = r"[0-9](?:[ -]?[0-9]){12,18}"
_IBAN = r"[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,3})?"
_IPV4 = r"(?:[0-9]{1,3}\.){3}[0-9]{1,3}"
_IPV6 = r"(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9A-Fa-f]{1,4})?"


def _detectors() -> dict[str, _Detector]:
    phone_re2, phone_py = _edged(_PHONE, "0-9A-Za-z_+", "0-9A-Za-z_")
    card_py = re.compile(f"(?<![0-9])(?<![0-9][ -])(?:{_CARD})(?![0-9]|[ -][0-9])")
    card_re2 = f"(?:^|[^0-9 -]|[^0-9][ -]|^[ -])(?:{_CARD})(?:$|[^0-9 -]|[ -][^0-9]|[ -]$)"
    iban_re2, iban_py = _edged(_IBAN, "0-9A-Za-z", "0-9A-Za-z")
    ipv4_py = re.compile(f"(?<![0-9A-Za-z_.])(?:{_IPV4})(?![0-9]|\\.[0-9])")
    ipv4_re2 = f"(?:^|[^0-9A-Za-z_.])(?:{_IPV4})(?:$|[^0-9.]|\\.$|\\.[^0-9])"
    ipv6_py = re.compile(f"(?<![0-9A-Za-z_:.])(?:{_IPV6})(?![0-9A-Za-z_:]|\\.[0-9])")
    found = [
        _Detector("email", _EMAIL, re.compile(_EMAIL), _mask_email, str.lower),
        _Detector("phone", phone_re2, phone_py, lambda t: _keep_last(t, 2), _normalise_phone),
        _Detector("card", card_re2, card_py, lambda t: _keep_last(t, 4), lambda t: re.sub("[^0-9]", "", t), _card_valid),
        _IbanDetector(
            "iban", iban_re2, iban_py, lambda t: _keep_last(t, 4, keep_prefix=2), lambda t: t.replace(" ", "").upper(), iban_valid
        ),
        _Detector("ipv4", ipv4_re2, ipv4_py, lambda t: _mask_ip(t, "."), lambda t: str(ipaddress.ip_address(t)), _ipv4_valid),
        _Detector(
            "ipv6",
            "[0-9A-Fa-f]*:[0-9A-Fa-f]*:",
            ipv6_py,
            lambda t: _mask_ip(t, ":"),
            lambda t: str(ipaddress.ip_address(t)),
            _ipv6_valid,
        ),
        _NameDetector("name", r"\p{Lu}\p{Ll}+[ \t]+\p{Lu}", _TOKEN, _mask_name, lambda t: " ".join(t.casefold().split())),
    ]
    return {d.kind: d for d in found}


DETECTORS = _detectors()


def check_kinds(kinds: Sequence[str] | None, free_text: bool, what: str) -> tuple[str, ...]:
    """The detector kinds to run: ``kinds`` validated, or by default every structured kind (plus ``name`` for a
    free-text column). ``InvalidArgument`` for an unknown kind or ``name`` on a column not declared free text."""
    if kinds is None or len(kinds) == 0:
        return KINDS if free_text else STRUCTURED_KINDS
    if isinstance(kinds, str) or not all(isinstance(k, str) for k in kinds):
        raise InvalidArgument.for_field(f"{what} kinds", kinds, f"a list of: {', '.join(KINDS)}")
    unknown = [k for k in kinds if k not in DETECTORS]
    if unknown:
        raise InvalidArgument.for_field(f"{what} kinds", unknown[0], f"one of {', '.join(KINDS)}")
    if "name" in kinds and not free_text:
        raise InvalidArgument(
            f"{what}: kind 'name' is searched for only in columns declared free text (free_text=True): "
            "capitalised word pairs elsewhere are mostly not people"
        )
    return tuple(k for k in KINDS if k in kinds)


# --- scanning ---------------------------------------------------------------------------------------------


def _text_array(column: Any) -> Any:
    """The column as one Arrow string array, or None when it holds no text (numbers, dates, ...)."""
    pa = require_arrow()
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if pa.types.is_large_string(column.type):
        column = pc.cast(column, pa.string())
    return column if pa.types.is_string(column.type) else None


def _candidates(arr: Any, detector: _Detector) -> np.ndarray:
    import pyarrow.compute as pc

    matched = pc.fill_null(pc.match_substring_regex(arr, pattern=detector.re2), False)
    return np.asarray(matched.to_numpy(zero_copy_only=False), dtype=bool)


_LUHN_DOUBLE = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9], dtype=np.uint8)  # a digit doubled, its digits summed


def _luhn_vector(digits: Any) -> np.ndarray:
    """Luhn over an Arrow string array of 13-19 ASCII digits at once, read from its buffers (no Python string
    per value). Reversed first, so column j of the matrix is the j-th digit from the right for every row."""
    import pyarrow.compute as pc

    reversed_ = pc.binary_reverse(pc.cast(digits, "binary"))
    offsets = np.frombuffer(reversed_.buffers()[1], dtype=np.int32)[reversed_.offset : reversed_.offset + len(digits) + 1]
    data = np.frombuffer(reversed_.buffers()[2], dtype=np.uint8)
    width = np.arange(19, dtype=np.int32)
    present = width < np.diff(offsets)[:, None]
    values = np.where(present, data[np.where(present, offsets[:-1, None] + width, 0)] - np.uint8(48), np.uint8(0))
    values[:, 1::2] = _LUHN_DOUBLE[values[:, 1::2]]
    return np.asarray(values.sum(axis=1, dtype=np.int32) % 10 == 0)


def _card_whole_values(texts: Any) -> tuple[np.ndarray, np.ndarray]:
    """Which of ``texts`` are a card-shaped number and nothing else, and which of those pass Luhn (vectorised)."""
    import pyarrow.compute as pc

    whole = np.asarray(pc.fill_null(pc.match_substring_regex(texts, pattern=f"^(?:{_CARD})$"), False), dtype=bool)
    passed = np.zeros(len(texts), dtype=bool)
    if whole.any():
        digits = pc.replace_substring_regex(texts.filter(whole), pattern="[ -]", replacement="")
        leading = np.asarray(pc.starts_with(digits, "0"), dtype=bool)
        passed[np.flatnonzero(whole)] = _luhn_vector(digits) & ~leading
    return whole, passed


def _kind_rows(arr: Any, detector: _Detector) -> np.ndarray:
    """The rows whose value holds at least one valid match of ``detector``."""
    rows = _candidates(arr, detector)
    if detector.valid is None and not isinstance(detector, _NameDetector):
        return rows
    idx = np.flatnonzero(rows)
    if idx.size == 0:
        return rows
    candidates = arr.take(idx)
    ok = np.zeros(idx.size, dtype=bool)
    rest = np.ones(idx.size, dtype=bool)
    whole = np.zeros(idx.size, dtype=bool)
    if detector.kind == "card":  # the common case, a column of card numbers, needs no Python loop
        whole, passed = _card_whole_values(candidates)
        ok |= passed
        rest &= ~whole
    if rest.any():
        # each distinct value once: columns repeat values (customers across orders), and the check is Python code
        encoded = candidates.filter(rest).dictionary_encode()
        verdicts = np.fromiter(
            (next(detector.spans(t), None) is not None for t in encoded.dictionary.to_pylist()),
            dtype=bool,
            count=len(encoded.dictionary),
        )
        ok[np.flatnonzero(rest)] = verdicts[np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)]
    if detector.kind == "card" and whole.sum() >= _CARD_MIN_CANDIDATES and ok[whole].mean() < _CARD_MIN_VALID_SHARE:
        # values that are only a card-shaped number and mostly fail Luhn are random digit ids, one in ten passing by
        # chance: those are not cards; a card written inside text in the same column still is
        ok[whole] = False
    out = np.zeros(len(arr), dtype=bool)
    out[idx[ok]] = True
    return out


def _examples(arr: Any, rows: np.ndarray, detector: _Detector) -> tuple[str, ...]:
    seen: list[str] = []
    for i in np.flatnonzero(rows)[: EXAMPLES * 20]:  # a few more than needed: duplicates are skipped
        text = arr[int(i)].as_py()
        for start, end in detector.spans(text):
            masked = safe_mask(detector, text[start:end])
            if masked not in seen:
                seen.append(masked)
            if len(seen) == EXAMPLES:
                return tuple(seen)
    return tuple(seen)


def safe_mask(detector: _Detector, raw: str) -> str:
    """``raw`` masked by its detector; never ``raw`` itself, nor a string that contains it."""
    masked = detector.mask(raw)
    return "*" * max(len(raw), 3) if raw in masked else masked


def scan_column(column: Any, name: str, *, kinds: Sequence[str] | None = None, free_text: bool = False) -> tuple[
    list[PIIFinding], np.ndarray
]:  # fmt: skip
    """The findings in one Arrow column (one per kind found) and the mask of the rows holding any of them.
    A column without text (numbers, dates) holds none."""
    selected = check_kinds(kinds, free_text, f"PII scan of {name!r}")
    arr = _text_array(column)
    n = len(column)
    union = np.zeros(n, dtype=bool)
    if arr is None or n == 0:
        return [], union
    findings = []
    for kind in selected:
        detector = DETECTORS[kind]
        rows = _kind_rows(arr, detector)
        count = int(rows.sum())
        if count:
            union |= rows
            findings.append(PIIFinding(name, kind, count, count / n, _examples(arr, rows, detector)))
    return findings, union


def find_pii(
    data: Any, columns: Sequence[str] | None = None, *, kinds: Sequence[str] | None = None, free_text: Sequence[str] = ()
) -> list[PIIFinding]:
    """Personal data in ``data`` (any frame, table or path): one finding per column and kind found, with
    counts, shares and masked examples. ``columns``: where to look (default: every text column);
    ``free_text``: the columns also searched for person names."""
    table = to_arrow(data)
    names = list(columns) if columns is not None else list(table.column_names)
    _need(table.column_names, [*names, *free_text], "find_pii")
    found: list[PIIFinding] = []
    for name in names:
        findings, _ = scan_column(table.column(name), name, kinds=kinds, free_text=name in free_text)
        found.extend(findings)
    return found


def _need(present: Sequence[str], wanted: Sequence[str], what: str) -> None:
    missing = [c for c in wanted if c not in present]
    if missing:
        raise InvalidArgument(f"{what}: column {missing[0]!r} is not in the data; expected one of: {', '.join(present)}")


# --- rewriting: masks and salted hashes -------------------------------------------------------------------


def _rewrite_text(text: str, detectors: list[_Detector], replace: Callable[[_Detector, str], str]) -> str:
    if len(detectors) == 1:  # one kind: its matches never overlap, nothing to sort
        detector = detectors[0]
        if type(detector) is _Detector and detector.valid is None:  # a pure pattern: one C-level pass
            return detector.pattern.sub(lambda m: replace(detector, m.group()), text)
        out, pos = [], 0
        for start, end in detector.spans(text):
            out += [text[pos:start], replace(detector, text[start:end])]
            pos = end
        out.append(text[pos:])
        return "".join(out)
    spans = sorted(((start, end, d) for d in detectors for start, end in d.spans(text)), key=lambda s: (s[0], -(s[1] - s[0])))
    out, pos = [], 0
    for start, end, detector in spans:
        if start < pos:
            continue  # overlaps a longer or earlier match already replaced
        out.append(text[pos:start])
        out.append(replace(detector, text[start:end]))
        pos = end
    out.append(text[pos:])
    return "".join(out)


def mask_values(values: Sequence[str]) -> tuple[list[str], tuple[str, ...]]:
    """``values`` with every structured kind of PII masked (names aside: they need a free-text column), and the kinds
    found. For what keel stores about data besides the data itself (a profile's top values and frequencies)."""
    detectors = [DETECTORS[k] for k in KINDS if k != "name"]
    found: set[str] = set()

    def replace(detector: _Detector, raw: str) -> str:
        found.add(detector.kind)
        return safe_mask(detector, raw)

    masked = [_rewrite_text(v, detectors, replace) for v in values]
    return masked, tuple(k for k in KINDS if k in found)


def rewrite_frame(
    df: Any,
    replace: Callable[[_Detector, str], str],
    *,
    columns: Sequence[str] | None,
    kinds: Sequence[str] | None,
    free_text: Sequence[str] | None,
    what: str,
) -> Any:
    """A copy of pandas ``df`` with the personal data found in each text column replaced by ``replace(detector,
    raw)``. Only the kinds the column-level scan reports are replaced (so an id column is not mistaken for
    cards value by value)."""
    pa = require_arrow()
    free = list(free_text or [])
    names = list(columns) if columns is not None else [str(c) for c in df.columns]
    _need([str(c) for c in df.columns], [*names, *free], what)
    out = df.copy()
    for name in names:
        try:
            column = pa.array(df[name], from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            raise InvalidArgument(f"{what}: column {name!r} mixes text with other values; cast it first") from None
        arr = _text_array(column)
        if arr is None:
            if columns is not None:
                raise InvalidArgument(f"{what}: column {name!r} is {df[name].dtype}, not text; cast it to strings first")
            continue
        findings, rows = scan_column(arr, name, kinds=kinds, free_text=name in free)
        if not findings:
            continue
        detectors = [DETECTORS[f.kind] for f in findings]
        idx = np.flatnonzero(rows)
        encoded = arr.take(idx).dictionary_encode()  # each distinct value rewritten once
        rewritten = np.array([_rewrite_text(t, detectors, replace) for t in encoded.dictionary.to_pylist()], dtype=object)
        position = out.columns.get_loc(name)
        out.iloc[idx, position] = rewritten[np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)]
    return out


def mask_frame(df: Any, *, columns: Sequence[str] | None = None, kinds: Sequence[str] | None = None,
               free_text: Sequence[str] | None = None) -> Any:  # fmt: skip
    """A copy of pandas ``df`` with personal data masked in place inside the text (``j***@e******.com``)."""
    return rewrite_frame(df, safe_mask, columns=columns, kinds=kinds, free_text=free_text, what="mask_pii")


@dataclass(frozen=True)
class Salt:
    """A secret for ``hash_pii``, and where it came from. Its value is never printed, recorded or stored:
    records carry ``source`` and ``fingerprint`` only."""

    value: bytes = field(repr=False)
    source: str

    @property
    def fingerprint(self) -> str:
        """The first 8 hex digits of SHA-256(salt + "keel-pii-fingerprint"): two runs can tell whether they
        used the same salt without revealing it."""
        return hashlib.sha256(self.value + _FINGERPRINT_SUFFIX).hexdigest()[:8]

    def record(self) -> dict[str, str]:
        """What a transform record keeps of the salt: its source and fingerprint."""
        return {"source": self.source, "fingerprint": self.fingerprint}

    def digest(self, kind: str, value: str) -> str:
        """HMAC-SHA256 of ``kind:value`` under this salt, as 64 hex digits."""
        return hmac.new(self.value, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def load_salt(salt_env: str | None = None, salt_file: str | None = None) -> Salt:
    """The salt from the environment variable ``salt_env`` (default ``KEEL_PII_SALT``) or the file ``salt_file``
    (one trailing newline dropped). ``InvalidArgument`` naming the source when it is missing or shorter than
    16 bytes; the message never holds the salt."""
    if salt_env is not None and salt_file is not None:
        raise InvalidArgument("hash_pii: give salt_env or salt_file, not both")
    if salt_file is not None:
        path = Path(salt_file)
        if not path.is_file():
            raise InvalidArgument(f"hash_pii needs a salt: the salt file {str(path)!r} does not exist")
        value, source = path.read_bytes().removesuffix(b"\n").removesuffix(b"\r"), f"file:{path}"
    else:
        env = salt_env or SALT_ENV
        if not isinstance(env, str) or not re.fullmatch("[A-Za-z_][A-Za-z0-9_]*", env):
            # not echoed: a value here that is no variable name may be the secret itself, passed by mistake
            raise InvalidArgument("hash_pii: salt_env must be the NAME of an environment variable (e.g. KEEL_PII_SALT)")
        raw = os.environ.get(env)
        if raw is None:
            raise InvalidArgument(
                f"hash_pii needs a salt: the environment variable {env} is not set (set it to a secret of at least "
                f"{MIN_SALT_BYTES} bytes, e.g. from `python -c 'import secrets; print(secrets.token_hex(16))'`, "
                "or pass salt_file=)"
            )
        value, source = raw.encode(), f"env:{env}"
    if len(value) < MIN_SALT_BYTES:
        where = source.replace("env:", "environment variable ", 1).replace("file:", "file ", 1)
        raise InvalidArgument(f"hash_pii: the salt in {where} is shorter than {MIN_SALT_BYTES} bytes; use a longer secret")
    return Salt(value, source)


def hash_frame(df: Any, salt: Salt, *, columns: Sequence[str] | None = None, kinds: Sequence[str] | None = None,
               free_text: Sequence[str] | None = None) -> Any:  # fmt: skip
    """A copy of pandas ``df`` with each piece of personal data replaced by the HMAC-SHA256 of its normalised
    form (emails lower-cased, card and phone digits only, IBANs upper-cased without spaces, IPs compressed):
    the same value under the same salt gives the same 64 hex digits, so hashed columns still join."""

    def replace(detector: _Detector, raw: str) -> str:
        return salt.digest(detector.kind, detector.normalise(raw))

    return rewrite_frame(df, replace, columns=columns, kinds=kinds, free_text=free_text, what="hash_pii")


__all__ = ["DETECTORS", "KINDS", "PIIFinding", "Salt", "find_pii", "hash_frame", "load_salt", "mask_frame", "scan_column"]
