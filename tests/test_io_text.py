"""Text cells: how skmm.io.text.to_texts reads them, and the same rules through TextEncoder and FusionClassifier."""

import numpy as np
import pandas as pd
import pytest

from skmm import TextEncoder
from skmm.io.text import to_texts

from helpers import three_epochs as fast


def test_strings_are_kept_verbatim():
    texts, present = to_texts(["a red car", "  padded  ", "Ünïcode"])
    assert texts == ["a red car", "  padded  ", "Ünïcode"]
    assert present.dtype == bool and present.tolist() == [True, True, True]


@pytest.mark.parametrize("missing", [None, np.nan, float("nan"), pd.NA, pd.NaT, "", "   ", "\t\n", np.float32("nan")])
def test_missing_values_become_empty_and_not_present(missing):
    texts, present = to_texts(pd.Series(["x", missing], dtype=object))
    assert texts == ["x", ""]
    assert present.tolist() == [True, False]


def test_numbers_are_formatted_stably():
    values = [3, np.int64(-7), 3.0, 2.5, 0.1, np.float32(0.1), 1e20, -0.0, float("inf"), True, np.bool_(False)]
    texts, present = to_texts(pd.Series(values, dtype=object))
    assert texts == ["3", "-7", "3", "2.5", "0.1", "0.1", "1e+20", "0", "inf", "True", "False"]
    assert present.all()


def test_float_column_with_nan_reads_like_ints():
    texts, present = to_texts(pd.Series([1, None, 3]))  # pandas makes it float64
    assert texts == ["1", "", "3"]
    assert present.tolist() == [True, False, True]


def test_bytes_are_decoded_as_utf8():
    texts, present = to_texts([b"caf\xc3\xa9", bytearray(b"ok"), np.bytes_(b"np")])
    assert texts == ["café", "ok", "np"]
    assert present.all()


def test_token_lists_are_joined():
    cells = pd.Series([["red", "car"], ("blue",), np.array(["big", "boat"]), [], ["", " "]], dtype=object)
    texts, present = to_texts(cells)
    assert texts == ["red car", "blue", "big boat", "", ""]
    assert present.tolist() == [True, True, True, False, False]


def test_pandas_string_and_categorical_dtypes():
    texts, present = to_texts(pd.Series(["a", None, "b"], dtype="string"))
    assert texts == ["a", "", "b"] and present.tolist() == [True, False, True]
    texts, present = to_texts(pd.Series(["a", None, "a"], dtype="category"))
    assert texts == ["a", "", "a"] and present.tolist() == [True, False, True]


def test_numpy_unicode_array_and_empty_input():
    texts, present = to_texts(np.array(["x", "", "y"]))
    assert texts == ["x", "", "y"] and present.tolist() == [True, False, True]
    texts, present = to_texts([])
    assert texts == [] and present.shape == (0,) and present.dtype == bool


def test_dataframe_rows_join_present_cells():
    df = pd.DataFrame({"title": ["red car", None, None], "brand": ["acme", "zeta", np.nan], "n": [1, 2.5, None]})
    texts, present = to_texts(df)
    assert texts == ["red car acme 1", "zeta 2.5", ""]
    assert present.tolist() == [True, True, False]


def test_2d_numeric_array_reads_as_text():
    texts, present = to_texts(np.array([[1.0, np.nan], [2.0, 0.5]]))
    assert texts == ["1", "2 0.5"]
    assert present.tolist() == [True, True]


def test_single_column_dataframe_equals_series():
    s = pd.Series(["a", None, "c"], name="t")
    assert to_texts(s.to_frame())[0] == to_texts(s)[0]


def _message(values, **kwargs):
    with pytest.raises(TypeError) as info:
        to_texts(values, **kwargs)
    return str(info.value)


def test_error_names_position_column_and_type():
    msg = _message([["a", "b"], {"k": 1}], column="title")
    assert "row at position 1" in msg and "column 'title'" in msg and "dict" in msg


def test_error_names_index_label():
    msg = _message(pd.Series(["ok", object()], index=["p1", "p2"], name="desc"))
    assert "row 'p2' (position 1)" in msg and "column 'desc'" in msg and "object" in msg


def test_explicit_index_and_column_win():
    msg = _message([{"k": 1}], column="body", index=[42])
    assert "row 42 (position 0)" in msg and "column 'body'" in msg


def test_list_holding_non_strings_is_an_error():
    msg = _message(pd.Series([["a", ["nested"]]], name="tags"))
    assert "row 0 (position 0)" in msg and "column 'tags'" in msg and "list holding a list" in msg


def test_bad_bytes_error_names_row_and_column():
    msg = _message(pd.Series(["ok", b"\xff\xfe"], index=["a", "b"]), column="raw")
    assert "row 'b'" in msg and "column 'raw'" in msg and "UTF-8" in msg


def test_dataframe_error_names_the_cells_column():
    df = pd.DataFrame({"title": ["x", "y"], "meta": ["z", {"k": 1}]}, index=["r1", "r2"])
    msg = _message(df)
    assert "row 'r2' (position 1)" in msg and "column 'meta'" in msg and "dict" in msg


def test_2d_array_error_names_column_position():
    msg = _message(np.array([["x", {"k": 1}]], dtype=object))
    assert "row at position 0" in msg and "column at position 1" in msg


def test_other_types_are_errors():
    assert "complex" in _message([1 + 2j])
    assert "set" in _message(pd.Series([{"a"}], dtype=object))


def test_single_string_and_bad_shapes_are_rejected():
    with pytest.raises(TypeError, match="single str"):
        to_texts("not a column")
    with pytest.raises(ValueError, match="shape"):
        to_texts(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="index has 1 labels for 2 rows"):
        to_texts(["a", "b"], index=["x"])


# -- the same rules end to end: TextEncoder and FusionClassifier, at fit and at predict ------


def test_numbers_bytes_and_lists_are_read_as_text(frame):
    X, y = frame
    odd = X.copy()
    odd.loc["p0", "caption"] = 12345
    odd.loc["p1", "caption"] = 2.5
    odd.loc["p2", "caption"] = "a red ball".encode("utf-8")
    odd.loc["p3", "caption"] = ["a", "blue", "box"]
    odd.loc["p4", "caption"] = np.array(["green", "thing"])
    odd.loc["p5", "caption"] = True
    plain = X.copy()
    plain.loc[["p0", "p1", "p2", "p3", "p4", "p5"], "caption"] = [
        "12345", "2.5", "a red ball", "a blue box", "green thing", "True",
    ]

    encoder = TextEncoder("tfidf").fit(plain["caption"])
    np.testing.assert_array_equal(encoder.transform(odd["caption"]), encoder.transform(plain["caption"]))
    clf = fast(text_col="caption", image_col="image_path").fit(odd, y)
    np.testing.assert_allclose(clf.predict_proba(odd), clf.predict_proba(plain), atol=1e-6)

    # A column that holds only numbers is text too when named as the text column.
    codes = X.assign(caption=np.arange(len(X)) % 7)
    assert fast(max_epochs=1, text_col="caption").fit(codes, y).predict(codes).shape == (len(X),)


@pytest.mark.parametrize(
    "cell, what",
    [({"title": "red"}, "dict"), ({"red"}, "set"), (object(), "object"), ([["red"]], "list holding a list"),
     (b"\xff\xfe red", "bytes are not UTF-8"), (["red", 3], "list holding a int")],
    ids=["dict", "set", "object", "nested-list", "bad-bytes", "mixed-list"],
)
def test_text_cells_that_are_not_text_raise_before_training(frame, cell, what, no_training):
    X, y = frame
    bad = X.copy()
    bad.at["p6", "caption"] = cell
    with pytest.raises(TypeError, match=rf"row 'p6' \(position 6\) in column 'caption': .*{what}"):
        fast(text_col="caption").fit(bad, y)
    assert no_training == []
    # and at predict time, from a model fitted on clean data
    clf = fast(max_epochs=1).fit(X, y)
    with pytest.raises(TypeError, match=r"row 'p6' \(position 6\) in column 'caption'"):
        clf.predict(bad)
