"""The accuracy suite's data builders: near-duplicate texts stay on one side of the split."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "data"))
import iconset  # noqa: E402


def test_group_key_merges_style_variants():
    assert iconset.group_key("account-network-outline") == iconset.group_key("account-network") == "account network"
    assert iconset.group_key("battery-50") == "battery"
    assert iconset.group_key("arrow-up") != iconset.group_key("arrow-down")


def test_label_words_are_taken_out_of_the_text():
    assert iconset.without_label_words(["car", "wheels", "vehicle"], "Vehicles") == ["car", "wheels"]


def test_split_keeps_groups_on_one_side_and_every_class_on_both():
    rows = [{"id": f"{c}{i}{s}", "name": f"{c}-thing{i}{s}", "label": c}
            for c in "abc" for i in range(12) for s in ("", "-outline")]
    iconset.split(rows)
    sides = {}
    for row in rows:
        sides.setdefault(row["group"], set()).add(row["split"])
    assert all(len(s) == 1 for s in sides.values())
    for c in "abc":
        assert {r["split"] for r in rows if r["label"] == c} == {"train", "test"}
    assert 0.15 < sum(r["split"] == "test" for r in rows) / len(rows) < 0.35
