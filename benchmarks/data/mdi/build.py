#!/usr/bin/env python3
"""Build the "mdi" image+text classification set from the npm package @mdi/svg.

Provenance: Material Design Icons by Pictogrammers (https://pictogrammers.com,
Apache 2.0 licence), npm package ``@mdi/svg`` version 7.4.47, fetched with
``npm pack``.  Its ``meta.json`` gives each icon a name, aliases (other names users
search for) and tags, which are the library's categories ("Home Automation",
"Food / Drink", ...).

Each row is one icon that has exactly one tag: its SVG rendered to a 64x64 PNG on
white with rsvg-convert (image); its name and aliases, with the words of its tag
removed so the text does not spell the label out (text); its tag (label).
Deprecated icons are dropped, tags with fewer than 40 such icons too, and each tag
is capped at 120 icons (seeded choice).  Split: see ``benchmarks/data/iconset.py``
(grouped by normalised name, stratified, 75/25, seed 0).

    python build.py --out DIR        # writes DIR/mdi.csv and DIR/png/

Needs npm, rsvg-convert (Debian: librsvg2-bin) and scikit-learn.  Deterministic.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from iconset import fetch_npm, render, select, split, without_label_words, words, write  # noqa: E402

PACKAGE, VERSION = "@mdi/svg", "7.4.47"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--min-count", type=int, default=40)
    ap.add_argument("--cap", type=int, default=120)
    args = ap.parse_args()
    package = fetch_npm(PACKAGE, VERSION, os.path.join(args.out, "src"))
    meta = json.load(open(os.path.join(package, "meta.json")))
    rows = []
    for info in sorted(meta, key=lambda m: m["name"]):
        if info.get("deprecated") or len(info.get("tags", [])) != 1:
            continue
        name, label = info["name"], info["tags"][0]
        svg = os.path.join(package, "svg", f"{name}.svg")
        if not os.path.exists(svg):
            continue
        tokens = words(name) + [w for alias in info.get("aliases", []) for w in words(alias)]
        tokens = list(dict.fromkeys(without_label_words(tokens, label)))
        rows.append({"id": f"mdi-{name}", "name": name, "svg": svg, "label": label, "text": " ".join(tokens)})
    rows = select(rows, args.min_count, args.cap)
    render(rows, os.path.join(args.out, "png"), args.size)
    split(rows)
    write(rows, os.path.join(args.out, "mdi.csv"), f"npm {PACKAGE}@{VERSION}")


if __name__ == "__main__":
    main()
