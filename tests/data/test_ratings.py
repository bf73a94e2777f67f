"""Rating strings and numbers -> IG+/IG-/HY buckets (DESIGN.md, REFERENCES.md: DFPS buckets)."""

import numpy as np
import pytest

import bayesbond as bb
from bayesbond.data.ratings import (
    RATING_SCALE,
    UNRATED,
    clean_rating,
    rating_buckets,
    rating_number,
)
from bayesbond.errors import DataError

SP = {
    "IG+": ["AAA", "AA+", "AA", "AA-", "A+", "A", "A-"],
    "IG-": ["BBB+", "BBB", "BBB-"],
    "HY": ["BB+", "BB", "BB-", "B+", "B", "B-", "CCC+", "CCC", "CCC-", "CC", "C", "D", "SD", "RD"],
}
MOODYS = {
    "IG+": ["Aaa", "Aa1", "Aa2", "Aa3", "A1", "A2", "A3"],
    "IG-": ["Baa1", "Baa2", "Baa3"],
    "HY": ["Ba1", "Ba2", "Ba3", "B1", "B2", "B3", "Caa1", "Caa2", "Caa3", "Ca", "C"],
}


@pytest.mark.parametrize("table", [SP, MOODYS], ids=["sp_fitch", "moodys"])
def test_agency_scales(table):
    for bucket, ratings in table.items():
        for r in ratings:
            assert bb.rating_bucket(r) == bucket, r


def test_numeric_scale_boundaries():
    expected = ["IG+"] * 7 + ["IG-"] * 3 + ["HY"] * 12
    assert [bb.rating_bucket(n) for n in range(1, 23)] == expected
    assert [bb.rating_bucket(float(n)) for n in range(1, 23)] == expected
    assert [bb.rating_bucket(str(n)) for n in range(1, 23)] == expected
    assert [bb.rating_bucket(np.int64(n)) for n in range(1, 23)] == expected


def test_numeric_matches_letters_notch_for_notch():
    for i, r in enumerate(RATING_SCALE, start=1):
        assert rating_number(r) == i
    # Moody's notch k equals S&P notch k for Aaa..Caa3
    assert rating_number("Baa3") == rating_number("BBB-") == 10
    assert rating_number("Ba1") == rating_number("BB+") == 11
    assert rating_number("Caa3") == rating_number("CCC-") == 19


def test_whitespace_and_capitalised_moodys():
    assert bb.rating_bucket(" BBB- ") == "IG-"
    assert bb.rating_bucket("BAA1") == "IG-"
    assert bb.rating_bucket("aa3") == "IG+"


@pytest.mark.parametrize("bad", ["NR", "AAA+", "Baa4", "X", "", 0, 23, 2.5, True, None])
def test_unknown_raises(bad):
    with pytest.raises(DataError, match="unknown rating"):
        bb.rating_bucket(bad)


def test_vectorised_lists_unknowns_and_keeps_missing():
    out = rating_buckets(["AAA", None, np.nan, "Ba2", 9])
    assert list(out) == ["IG+", None, None, "HY", "IG-"]
    with pytest.raises(DataError) as exc:
        rating_buckets(["AAA", "NR", "ZZ", "NR"], where="column 'rating'")
    msg = str(exc.value)
    assert "'NR'" in msg and "'ZZ'" in msg and "column 'rating'" in msg
    with pytest.raises(DataError):
        rating_buckets(["AAA", None], missing_ok=False)


def test_vectorised_keeps_shape():
    arr = np.array([["AAA", "BB"], ["BBB", "A-"]], dtype=object)
    assert rating_buckets(arr).tolist() == [["IG+", "HY"], ["IG-", "IG+"]]


@pytest.mark.parametrize(
    "label, bucket",
    [
        ("Baa3u", "IG-"),  # unsolicited / unsupported
        ("A-(sf)", "IG+"),  # structured finance
        ("Asf", "IG+"),
        ("(P)Baa3", "IG-"),  # Moody's provisional
        ("AA-(EXP)", "IG+"),  # Fitch expected
        ("BBBpi", "IG-"),  # S&P public information
        ("BBB+ *-", "IG-"),  # Bloomberg watch marks
        ("A1 *+", "IG+"),
        ("BB+*-", "HY"),
        ("A- (CW Negative)", "IG+"),
        ("BBB /Watch Neg", "IG-"),
        ("A+ RWN", "IG+"),
        ("BBB-u", "IG-"),
    ],
)
def test_vendor_qualifiers_are_stripped(label, bucket):
    assert bb.rating_bucket(label) == bucket
    assert rating_buckets([label]).tolist() == [bucket]


def test_unrated_labels_error_or_missing():
    labels = ["NR", "WR", "WD", "", "  ", "*+", "N.R."]
    for lab in labels:
        assert clean_rating(lab) in UNRATED
    with pytest.raises(DataError, match=r"unrated label.*'NR'.*'WD'.*unrated='missing'"):
        rating_buckets(["AAA", *labels], where="column 'rating'")
    out = rating_buckets(["AAA", *labels, None], unrated="missing")
    assert out.tolist() == ["IG+"] + [None] * (len(labels) + 1)
    with pytest.raises(DataError, match="unknown rating.*'ZZ'"):  # unknowns stay errors
        rating_buckets(["ZZ", "NR"], unrated="missing")
    with pytest.raises(DataError, match="unrated must be"):
        rating_buckets(["AAA"], unrated="drop")
