"""Personal data in columns: detectors (true and false positives), masked examples, the PII check in suites and
validation (YAML too), infer_suite, and the mask_pii / hash_pii transforms with a salt kept out of the store."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest

import keel.data
from keel.core.errors import InvalidArgument, ValidationFailed
from keel.data import pii
from keel.data.checks import PII

SALT = "s3cret-salt-for-tests-0123456789"


def _luhn_check_digit(body: str) -> str:
    """The digit that makes ``body + digit`` pass Luhn (written here independently of keel's)."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d // 10 + d % 10
    return str((10 - total % 10) % 10)


def _found(values: Sequence[str | None], kind: str, *, free_text: bool = False) -> list[bool]:
    """Per value: does the detector of ``kind`` find it (each value scanned alone, so no column-level rule applies)."""
    out = []
    for v in values:
        findings = pii.find_pii(pd.DataFrame({"c": [v]}), kinds=[kind], free_text=["c"] if free_text else ())
        out.append(bool(findings))
    return out


def _assert_masked(findings: list[pii.PIIFinding], raws: list[str]) -> None:
    assert findings and all(f.examples for f in findings)
    for f in findings:
        for example in f.examples:
            assert "*" in example
            for raw in raws:
                assert raw not in example, (raw, example)


# --- detectors --------------------------------------------------------------------------------------------


def test_emails_are_found_inside_text_and_look_alikes_are_not() -> None:
    hits = ["john.doe@example.com", "write to A.B+tag@sub.example.co.uk today", "<x_y@mail-server.org>", "a@b.co"]
    misses = ["john@localhost", "@example.com", "john.doe at example.com", "name@domain", "x@y.c", "", None]
    assert _found(hits, "email") == [True] * 4
    assert _found(misses, "email") == [False] * 7
    findings = pii.find_pii(pd.DataFrame({"c": hits}))
    assert [(f.kind, f.count, f.share) for f in findings] == [("email", 4, 1.0)]
    assert findings[0].examples == ("j*******@e******.com", "A******@s***.e******.c***.uk", "x***@m**********.org")
    _assert_masked(findings, ["john.doe@example.com", "A.B+tag@sub.example.co.uk", "x_y@mail-server.org", "a@b.co"])


def test_phone_numbers_in_e164_and_national_formats() -> None:
    hits = [
        "+44 20 7946 0958", "+14155552671", "call +33-1-23-45-67-89", "(415) 555-2671", "415-555-2671",
        "415.555.2671", "020 7946 0958", "07700 900123", "01 23 45 67 89",
    ]  # fmt: skip
    misses = [
        "2024-01-15", "12345678", "id 4155552671", "version 1.2.3", "+15 degrees", "115-555-2671",  # NANP area 1xx
        "123-45-6789", "4242 4242 4242 4242", "07700900123",  # undelimited national digits: an id, not a phone
    ]  # fmt: skip
    assert _found(hits, "phone") == [True] * len(hits)
    assert _found(misses, "phone") == [False] * len(misses)
    findings = pii.find_pii(pd.DataFrame({"c": hits}), kinds=["phone"])
    assert findings[0].examples == ("+** ** **** **58", "+*********71", "+**-*-**-**-**-89")
    _assert_masked(findings, hits)


def test_card_numbers_need_the_luhn_check() -> None:
    nineteen = "622126" + "0" * 12
    nineteen += _luhn_check_digit(nineteen)
    valid = ["4242 4242 4242 4242", "4111-1111-1111-1111", "5555555555554444", "378282246310005", "4222222222222",
             "paid with 6011 1111 1111 1117 yesterday", nineteen]  # fmt: skip
    invalid = [
        "4242 4242 4242 4241",  # Luhn fails
        "5555555555554445",
        "0000 0000 0000 0000",  # Luhn passes, but no card number starts with 0
        "424242424242",  # 12 digits
        "4242 4242 4242 4242 4242",  # 20 digits: part of a longer number
        "4242  4242 4242 4242",  # a double space breaks the number
    ]
    assert all(pii.luhn_valid("".join(c for c in v if c.isdigit())) for v in valid)
    assert _found(valid, "card") == [True] * len(valid)
    assert _found(invalid, "card") == [False] * len(invalid)
    findings = pii.find_pii(pd.DataFrame({"c": valid}), kinds=["card"])
    assert findings[0].count == len(valid)
    assert findings[0].examples == ("**** **** **** 4242", "****-****-****-1111", "************4444")
    _assert_masked(findings, [*valid, "4242424242424242", "6011 1111 1111 1117"])


def test_a_column_of_random_digit_ids_is_not_taken_for_cards() -> None:
    # random 16-digit ids: about 1 in 10 passes Luhn by chance, which says "ids", not "cards"
    ids = [f"{4000000000000000 + i * 7919:016d}" for i in range(200)]
    passing = sum(pii.luhn_valid(x) for x in ids)
    assert 5 < passing < 60
    assert pii.find_pii(pd.DataFrame({"id": ids}), kinds=["card"]) == []
    # the same numbers one by one are still cards: the rule judges a column, not a value
    assert _found([next(x for x in ids if pii.luhn_valid(x))], "card") == [True]


def test_ibans_need_the_country_length_and_the_mod_97_check() -> None:
    valid = [
        "GB82 WEST 1234 5698 7654 32", "de89370400440532013000", "FR14 2004 1010 0505 0001 3M02 606",
        "NL91ABNA0417164300", "NO9386011117947", "pay to BE68539007547034 please",
    ]  # fmt: skip
    invalid = [
        "GB82 WEST 1234 5698 7654 33",  # check digits wrong
        "GB82 WEST 1234 5698 7654",  # too short for GB
        "XX82 WEST 1234 5698 7654 32",  # no such country
        "DE89370400440532013000X",  # glued to a letter
    ]
    assert [pii.iban_valid(v) for v in valid[:5]] == [True] * 5
    assert _found(valid, "iban") == [True] * len(valid)
    assert _found(invalid, "iban") == [False] * len(invalid)
    assert pii.IBAN_LENGTHS["GB"] == 22 and pii.IBAN_LENGTHS["NO"] == 15 and pii.IBAN_LENGTHS["RU"] == 33
    findings = pii.find_pii(pd.DataFrame({"c": valid}), kinds=["iban"])
    assert findings[0].examples == ("GB** **** **** **** **54 32", "de****************3000", "FR** **** **** **** **** ***2 606")
    _assert_masked(findings, [*valid, "BE68539007547034"])


def test_ip_addresses_and_not_version_strings() -> None:
    v4 = ["10.0.0.1", "request from 192.168.1.20.", "ip=8.8.8.8"]
    v6 = ["2001:db8::8a2e:370:7334", "::1", "::ffff:192.0.2.1", "fe80::1%eth0", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"]
    not_v4 = ["1.2.3.4.5", "v1.2.3.4", "256.1.1.1", "1.2.3", "192.168.01.1", "release 10.0.0.1.2"]
    not_v6 = ["12:30:45", "00:1A:2B:3C:4D:5E", "::", "a:b", "2001:db8::1::2"]
    assert _found(v4, "ipv4") == [True] * len(v4)
    assert _found(v6, "ipv6") == [True] * len(v6)
    assert _found(not_v4, "ipv4") == [False] * len(not_v4)
    assert _found(not_v6, "ipv6") == [False] * len(not_v6)
    findings = pii.find_pii(pd.DataFrame({"c": v4 + v6}), kinds=["ipv4", "ipv6"])
    # ::ffff:192.0.2.1 holds an IPv4 address as well
    assert [(f.kind, f.count) for f in findings] == [("ipv4", 4), ("ipv6", 5)]
    assert findings[0].examples == ("10.*.*.*", "192.*.*.*", "8.*.*.*")
    _assert_masked(findings, ["10.0.0.1", "192.168.1.20", "8.8.8.8", "2001:db8::8a2e:370:7334", "::ffff:192.0.2.1"])


def test_person_names_only_in_columns_declared_free_text() -> None:
    notes = ["Met Maria Garcia today", "Dear Sean O'Brien,", "Dr. Wei Zhang called"]
    not_names = ["Will Power", "maria garcia", "New York", "Maria", "Maria GARCIA", "Garcia Maria"]
    assert _found(notes, "name", free_text=True) == [True] * 3
    assert _found(not_names, "name", free_text=True) == [False] * len(not_names)
    df = pd.DataFrame({"notes": notes})
    assert pii.find_pii(df) == []  # not declared free text: names are not searched for
    findings = pii.find_pii(df, free_text=["notes"])
    assert [(f.kind, f.count) for f in findings] == [("name", 3)]
    assert findings[0].examples == ("M**** G*****", "S*** O******", "W*** Z****")
    _assert_masked(findings, ["Maria Garcia", "Sean O'Brien", "Wei Zhang", "Maria", "Garcia"])
    with pytest.raises(InvalidArgument, match="kind 'name' is searched for only in columns declared free text"):
        pii.find_pii(df, kinds=["name"])
    with pytest.raises(InvalidArgument, match="kinds must be one of email, phone"):
        pii.find_pii(df, kinds=["ssn"])


def test_non_text_columns_hold_no_pii_and_counts_are_per_value() -> None:
    df = pd.DataFrame(
        {
            "n": [4242424242424242, 1, 2],
            "mixed": ["a@x.com and b@y.com", "call +44 20 7946 0958 or a@x.com", None],
        }
    )
    findings = pii.find_pii(df)
    assert [(f.column, f.kind, f.count, round(f.share, 4)) for f in findings] == [
        ("mixed", "email", 2, 0.6667),
        ("mixed", "phone", 1, 0.3333),
    ]
    assert findings[0].to_dict()["examples"] == ["a***@x***.com", "b***@y***.com"]


# --- the PII check: suites, validation, YAML --------------------------------------------------------------


def _customers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "contact": ["ann.lee@example.com", "+44 20 7946 0958", "none", "bob@corp.io"],
            "card": ["4242 4242 4242 4242", "", "", "5555555555554444"],
            "notes": ["called Maria Garcia", "ok", "ok", "ok"],
            "city": ["Paris", "Rome", "Oslo", "Lima"],
        }
    )


RAW = [
    "4111111111111111", "378282246310005", "ann.lee@example.com", "+44 20 7946 0958", "bob@corp.io", "4242 4242 4242 4242",
    "4242424242424242", "5555555555554444", "Maria Garcia", "ann.lee", "7946 0958",
]  # fmt: skip


def _no_raw(text: str) -> None:
    for raw in RAW:
        assert raw not in text, raw


def test_a_suite_with_the_pii_check_fails_and_reports_masked_examples() -> None:
    suite = keel.data.Suite(
        [
            PII(column="contact"),
            PII(column="card", kinds=("card",), severity="warn"),
            PII(column="notes", free_text=True, max_count=1),
            PII(column="city"),
        ],
        name="customers",
    )
    result = keel.data.validate(_customers(), suite)
    contact, card, notes, city = result.results
    assert not result.passed and [r.column for r in result.errors] == ["contact"]
    assert (contact.failed_count, contact.failed_share) == (3, 0.75)
    assert contact.message == "personal data: email in 2 values (50.00%), phone in 1 values (25.00%); allowed: none"
    assert contact.examples == ["email: a******@e******.com", "email: b***@c***.io", "phone: +** ** **** **58"]
    assert (
        not card.passed and card.severity == "warn" and card.examples == ["card: **** **** **** 4242", "card: ************4444"]
    )
    assert notes.passed and notes.failed_count == 1 and notes.message.startswith("ok: within the limits (name in 1 values")
    assert city.passed and city.message == "ok" and city.examples == []
    assert result.failing_rows is not None and result.failing_rows.tolist() == [True, True, False, True]
    _no_raw(json.dumps(result.to_dict()))
    _no_raw(result.summary())


def test_the_pii_check_survives_the_yaml_round_trip() -> None:
    suite = keel.data.Suite(
        [PII(column="contact", kinds=("email", "phone"), max_share=0.5), PII(column="notes", free_text=True)], name="c"
    )
    text = suite.to_yaml()
    assert "kind: pii" in text and "kinds:\n  - email\n  - phone" in text and "max_share: 0.5" in text
    again = keel.data.Suite.from_yaml(text)
    assert again.checks == suite.checks
    result = keel.data.validate(_customers(), again)
    assert [r.passed for r in result.results] == [False, False]
    assert result.results[0].examples == ["email: a******@e******.com", "email: b***@c***.io", "phone: +** ** **** **58"]
    assert result.results[1].examples == ["name: M**** G*****"]
    _no_raw(json.dumps(result.to_dict()))


def test_validation_stored_with_a_version_keeps_no_raw_value() -> None:
    suite = keel.data.Suite([PII(column="contact", severity="warn")], name="c")
    version = keel.data.log(_customers(), "customers", suite=suite)
    assert version.row_count == 4
    with pytest.raises(ValidationFailed) as refused:
        keel.data.log(_customers(), "customers2", suite=keel.data.Suite([PII(column="contact")]))
    _no_raw(str(refused.value))
    assert "email in 2 values" in str(refused.value)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"kinds": ("ssn",)}, "kinds must be one of"),
        ({"kinds": ("name",)}, "kind 'name' is searched for only in columns declared free text"),
        ({"kinds": "email"}, "kinds must be a list of"),
        ({"max_count": -1}, "max_count must be an integer >= 0"),
        ({"max_share": 1.5}, "max_share must be a number from 0 to 1"),
        ({"severity": "warning"}, "severity must be 'error' or 'warn'"),
    ],
)
def test_bad_pii_check_settings_are_refused_when_the_suite_is_built(params: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        keel.data.Suite([PII(column="contact", **params)])  # type: ignore[arg-type]


def test_max_count_and_max_share_allow_some_personal_data() -> None:
    df = _customers()
    run = lambda check: keel.data.validate(df, keel.data.Suite([check])).results[0]  # noqa: E731
    assert run(PII(column="contact", max_count=3)).passed
    assert not run(PII(column="contact", max_count=2)).passed
    assert run(PII(column="contact", max_share=0.75)).passed
    assert not run(PII(column="contact", max_share=0.74)).passed
    assert not run(PII(column="contact", max_count=10, max_share=0.5)).passed  # both limits hold
    assert run(PII(column="contact", kinds=("phone",), max_count=1)).passed


def test_infer_suite_adds_a_pii_warning_where_it_finds_personal_data(orders: pd.DataFrame) -> None:
    suite = keel.data.infer_suite(_customers(), free_text=["notes"])
    found = {c.column: c for c in suite.checks if isinstance(c, PII)}
    assert set(found) == {"contact", "card", "notes"}
    assert found["contact"].kinds == ("email", "phone") and found["contact"].severity == "warn"
    assert found["contact"].max_share == 1.0 and found["card"].max_share == round(0.5 * 1.5 + 0.01, 4)
    assert found["card"].kinds == ("card",) and not found["card"].free_text
    assert found["notes"].kinds == ("name",) and found["notes"].free_text
    result = keel.data.validate(_customers(), suite)
    pii_results = [r for r in result.results if r.kind == "pii"]
    assert all(r.passed for r in pii_results)  # the data it was inferred from passes; results still show counts
    assert pii_results[0].message == "ok: within the limits (email in 2 values (50.00%), phone in 1 values (25.00%))"
    assert pii_results[0].examples[0] == "email: a******@e******.com"
    # when personal data spreads, the warning fires, with masked examples
    spread = _customers().assign(card=["4242 4242 4242 4242", "4111111111111111", "378282246310005", "5555555555554444"])
    warned = [r for r in keel.data.validate(spread, suite).warnings if r.kind == "pii"]
    assert [r.column for r in warned] == ["card"] and warned[0].failed_count == 4
    assert warned[0].examples == ["card: **** **** **** 4242", "card: ************1111", "card: ***********0005"]
    _no_raw(json.dumps(keel.data.validate(spread, suite).to_dict()))
    # the orders fixture: its email column and nothing else
    inferred = keel.data.infer_suite(orders)
    assert [(c.column, c.kinds) for c in inferred.checks if isinstance(c, PII)] == [("email", ("email",))]
    assert not any(isinstance(c, PII) for c in keel.data.infer_suite(orders, pii=False).checks)
    assert keel.data.Suite.from_yaml(inferred.to_yaml()).checks == inferred.checks
    with pytest.raises(InvalidArgument, match="infer_suite free_text: column 'memo' is not in the data"):
        keel.data.infer_suite(orders, free_text=["memo"])


# --- transforms: mask_pii and hash_pii --------------------------------------------------------------------


def test_mask_pii_masks_in_place_and_keeps_the_rest() -> None:
    masked = keel.data.get_transform("mask_pii")(_customers(), free_text=["notes"])
    assert masked["contact"].tolist() == ["a******@e******.com", "+** ** **** **58", "none", "b***@c***.io"]
    assert masked["card"].tolist() == ["**** **** **** 4242", "", "", "************4444"]
    assert masked["notes"].tolist() == ["called M**** G*****", "ok", "ok", "ok"]
    assert masked["city"].tolist() == ["Paris", "Rome", "Oslo", "Lima"] and masked["id"].tolist() == [1, 2, 3, 4]
    _no_raw(masked.to_csv())
    only_cards = keel.data.get_transform("mask_pii")(_customers(), columns=["card"])
    assert only_cards["contact"].tolist() == _customers()["contact"].tolist()
    with pytest.raises(InvalidArgument, match="mask_pii: column 'id' is int64, not text"):
        keel.data.get_transform("mask_pii")(_customers(), columns=["id"])


def _expected_hash(kind: str, value: str, salt: str = SALT) -> str:
    return hmac.new(salt.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def test_hash_pii_is_a_salted_hmac_stable_across_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_PII_SALT", SALT)
    hash_pii = keel.data.get_transform("hash_pii")
    df = _customers()
    first, second = hash_pii(df, free_text=["notes"]), hash_pii(df, free_text=["notes"])
    pd.testing.assert_frame_equal(first, second)  # same input + same salt -> same hash
    assert first.loc[0, "contact"] == _expected_hash("email", "ann.lee@example.com")
    assert first.loc[1, "contact"] == _expected_hash("phone", "+442079460958")
    assert first.loc[0, "card"] == _expected_hash("card", "4242424242424242")
    assert first.loc[0, "notes"] == "called " + _expected_hash("name", "maria garcia")
    assert first["city"].tolist() == df["city"].tolist()
    # one value written two ways hashes the same (emails lower-cased, card digits only): hashed columns still join
    other = hash_pii(pd.DataFrame({"contact": ["Ann.Lee@Example.COM"], "card": ["4242-4242-4242-4242"]}))
    assert other.loc[0, "contact"] == first.loc[0, "contact"] and other.loc[0, "card"] == first.loc[0, "card"]
    _no_raw(first.to_csv())
    monkeypatch.setenv("KEEL_PII_SALT", SALT + "-other")
    assert hash_pii(df).loc[0, "contact"] != first.loc[0, "contact"]


def test_hash_pii_refuses_a_missing_or_short_salt(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hash_pii = keel.data.get_transform("hash_pii")
    with pytest.raises(InvalidArgument, match="the environment variable KEEL_PII_SALT is not set"):
        hash_pii(_customers())
    with pytest.raises(InvalidArgument, match="the environment variable MY_SALT is not set"):
        hash_pii(_customers(), salt_env="MY_SALT")
    monkeypatch.setenv("KEEL_PII_SALT", "short-salt")
    with pytest.raises(InvalidArgument, match="salt in environment variable KEEL_PII_SALT is shorter than 16 bytes") as e:
        hash_pii(_customers())
    assert "short-salt" not in str(e.value)
    with pytest.raises(InvalidArgument, match=r"the salt file .*nope\.txt' does not exist"):
        hash_pii(_customers(), salt_file=str(tmp_path / "nope.txt"))
    (tmp_path / "short.txt").write_text("tiny\n")
    with pytest.raises(InvalidArgument, match=r"salt in file .*short\.txt is shorter than 16 bytes"):
        hash_pii(_customers(), salt_file=str(tmp_path / "short.txt"))
    with pytest.raises(InvalidArgument, match="salt_env must be the NAME of an environment variable") as e:
        hash_pii(_customers(), salt_env="my secret salt value!")
    assert "secret" not in str(e.value).replace("the NAME", "")
    with pytest.raises(InvalidArgument, match="give salt_env or salt_file, not both"):
        hash_pii(_customers(), salt_env="A", salt_file="b")


def _every_stored_byte(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def test_the_salt_is_never_stored_only_its_source_and_fingerprint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KEEL_PII_SALT", SALT)
    raw = keel.data.log(_customers(), "customers")
    hashed = keel.data.apply("hash_pii", raw, name="customers-hashed", columns=["contact", "card"])
    fingerprint = hashlib.sha256(SALT.encode() + b"keel-pii-fingerprint").hexdigest()[:8]
    assert hashed.transform is not None
    assert hashed.transform["salt"] == {"source": "env:KEEL_PII_SALT", "fingerprint": fingerprint}
    assert hashed.transform["params"] == {"columns": ["contact", "card"]}
    stored = keel.data.get(hashed)
    assert stored.loc[0, "contact"] == _expected_hash("email", "ann.lee@example.com")
    assert stored.loc[0, "notes"] == "called Maria Garcia"  # not in the columns asked for
    transform_json = json.dumps(hashed.transform)
    salt_hex = SALT.encode().hex()
    for text in (transform_json, stored.to_csv(), json.dumps(keel.data.resolve(hashed.ref).transform)):
        assert SALT not in text and salt_hex not in text
    # the whole store on disk (metadata database, artifacts): the salt appears nowhere
    on_disk = _every_stored_byte(tmp_path)
    assert on_disk and SALT.encode() not in on_disk and salt_hex.encode() not in on_disk
    # the same salt from a file: same hashes, same fingerprint, the file named as the source
    salt_file = tmp_path / "salt.txt"
    salt_file.write_text(SALT + "\n")
    monkeypatch.delenv("KEEL_PII_SALT")
    again = keel.data.apply("hash_pii", raw, name="customers-hashed-2", columns=["contact", "card"], salt_file=str(salt_file))
    assert again.transform is not None and again.transform["salt"] == {"source": f"file:{salt_file}", "fingerprint": fingerprint}
    assert again.content_hash == hashed.content_hash
    # a masked version: no raw value stored either
    masked = keel.data.apply("mask_pii", raw, name="customers-masked", free_text=["notes"])
    _no_raw(keel.data.get(masked).to_csv())


def test_the_salt_never_shows_in_a_repr() -> None:
    salt = pii.Salt(SALT.encode(), "env:KEEL_PII_SALT")
    assert SALT not in repr(salt) and salt.record() == {"source": "env:KEEL_PII_SALT", "fingerprint": salt.fingerprint}


def test_a_column_of_card_numbers_is_checked_at_once_with_the_same_verdicts() -> None:
    import random

    rng = random.Random(7)
    bodies = ["4" + "".join(rng.choice("0123456789") for _ in range(rng.randint(11, 17))) for _ in range(300)]
    valid = [b + _luhn_check_digit(b) for b in bodies[:200]]
    invalid = [b + str((int(_luhn_check_digit(b)) + 1) % 10) for b in bodies[200:]]
    spaced = [" ".join(v[i : i + 4] for i in range(0, len(v), 4)) for v in valid[:50]]
    column = valid + invalid + spaced + ["card " + valid[0] + " on file"]
    findings = pii.find_pii(pd.DataFrame({"c": column}), kinds=["card"])
    assert [(f.kind, f.count) for f in findings] == [("card", 251)]
    assert [pii.luhn_valid(v) for v in valid + invalid] == [True] * 200 + [False] * 100


def test_the_cli_infers_pii_checks_and_validation_prints_masked_examples_only(tmp_path: Path) -> None:
    from keel.testing.cli import keel_cmd

    _customers().to_csv(tmp_path / "customers.csv", index=False)
    inferred = keel_cmd(tmp_path, "data", "infer", "customers.csv", "-o", "suite.yaml", "--free-text", "notes")
    assert inferred.returncode == 0, inferred.stderr
    suite = keel.data.Suite.load(tmp_path / "suite.yaml")
    assert {c.column: c.kinds for c in suite.checks if isinstance(c, PII)} == {
        "contact": ("email", "phone"),
        "card": ("card",),
        "notes": ("name",),
    }
    strict = keel.data.Suite([PII(column="contact"), PII(column="notes", free_text=True)], name="strict")
    strict.save(tmp_path / "strict.yaml")
    failed = keel_cmd(tmp_path, "data", "validate", "customers.csv", "--suite", "strict.yaml")
    assert failed.returncode == 1, failed.stderr
    assert "email: a******@e******.com" in failed.stdout and "M**** G*****" in failed.stdout
    _no_raw(failed.stdout + failed.stderr)


def test_a_profile_keeps_no_personal_data_its_top_values_are_masked() -> None:
    emails = [f"user{i % 7}@example.com" for i in range(200)]
    cards = ["4242 4242 4242 4242", "4000 0566 5566 5556"] * 100
    version = keel.data.log(pd.DataFrame({"email": emails, "card": cards, "city": ["Paris", "Lyon"] * 100}), "people")
    profile = keel.data.profile(version)
    stored = json.dumps(profile)
    assert not any(e in stored for e in set(emails)) and not any(c in stored for c in set(cards))
    columns = profile["columns"]
    assert columns["email"]["pii"] == ["email"] and columns["card"]["pii"] == ["card"]
    assert "pii" not in columns["city"] and dict(map(tuple, columns["city"]["top"])) == {"Paris": 100, "Lyon": 100}
    assert sum(c for _, c in columns["card"]["top"]) == 200  # masked values keep their counts (merged when alike)
    assert keel.data.drift(version, pd.DataFrame({"email": emails, "card": cards, "city": ["Paris", "Lyon"] * 100})).drifted == []


def test_a_card_inside_text_is_found_even_in_a_column_that_also_holds_ids() -> None:
    rng = __import__("random").Random(3)
    ids = [str(rng.randrange(10**15, 10**16)) for _ in range(40)]  # order numbers: card-shaped, mostly failing Luhn
    notes = pd.DataFrame({"note": [*ids, "paid with 4111 1111 1111 1111 yesterday"]})
    found = {f.kind: f.count for f in keel.data.find_pii(notes)}
    assert found.get("card", 0) >= 1
    masked = pii.mask_frame(notes)
    assert "4111 1111 1111 1111" not in masked["note"].iloc[-1] and masked["note"].iloc[-1].endswith("1111 yesterday")
    assert list(masked["note"].iloc[:40]) == ids  # the ids, even those passing Luhn by chance, are left as they are


def test_a_long_value_is_masked_before_the_profile_cuts_and_hashes_it() -> None:
    from keel.core.dataset_records import MAX_CATEGORY_CHARS

    long = "x" * (MAX_CATEGORY_CHARS - 30) + " write to john.doe@example.com"  # the address straddles the cut
    version = keel.data.log(pd.DataFrame({"note": [long, "short"] * 5}), "long-notes")
    stored = json.dumps(keel.data.profile(version))
    assert "john.doe" not in stored and "example.com" not in stored
    assert hashlib.sha256(long.encode()).hexdigest()[:16] not in stored  # no unsalted hash of the raw value either
