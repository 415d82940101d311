#!/usr/bin/env python3
"""Build the "tabler" image+text classification set from the npm package @tabler/icons.

Provenance: Tabler Icons (https://tabler.io/icons, MIT licence), npm package
``@tabler/icons`` version 3.52.0, fetched with ``npm pack``.  Its ``icons.json``
gives each icon a name, a category (chosen by the Tabler authors) and search tags.

Each row is one outline icon: its SVG rendered to a 64x64 PNG on white with
rsvg-convert (image); its name and tags, with the words of its category removed so
the text does not spell the label out (text); its category (label).  Icons without
a category are dropped, categories with fewer than 40 icons too, and each category
is capped at 150 icons (seeded choice).  Split: see ``benchmarks/data/iconset.py``
(grouped by normalised name, stratified, 75/25, seed 0).

    python build.py --out DIR        # writes DIR/tabler.csv and DIR/png/

Needs npm, rsvg-convert (Debian: librsvg2-bin) and scikit-learn.  Deterministic.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from iconset import fetch_npm, render, select, split, without_label_words, words, write  # noqa: E402

PACKAGE, VERSION = "@tabler/icons", "3.52.0"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--min-count", type=int, default=40)
    ap.add_argument("--cap", type=int, default=150)
    args = ap.parse_args()
    package = fetch_npm(PACKAGE, VERSION, os.path.join(args.out, "src"))
    meta = json.load(open(os.path.join(package, "icons.json")))
    rows = []
    for name, info in sorted(meta.items()):
        label = (info.get("category") or "").strip()
        svg = os.path.join(package, "icons", "outline", f"{name}.svg")
        if not label or not os.path.exists(svg):
            continue
        tokens = words(name) + [w for tag in info.get("tags", []) for w in words(str(tag))]
        tokens = list(dict.fromkeys(without_label_words(tokens, label)))
        rows.append({"id": f"tabler-{name}", "name": name, "svg": svg, "label": label, "text": " ".join(tokens)})
    rows = select(rows, args.min_count, args.cap)
    render(rows, os.path.join(args.out, "png"), args.size)
    split(rows)
    write(rows, os.path.join(args.out, "tabler.csv"), f"npm {PACKAGE}@{VERSION}")


if __name__ == "__main__":
    main()
