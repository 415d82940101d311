"""The ``skmm`` command: what is registered, and a data set to play with.

    skmm list                       # registered image encoders, text encoders, fusions
    skmm make-shapes --out DIR      # write the shapes data set (PNG files + shapes.csv)
"""

import argparse
import os
import sys

from .registry import fusions, image_encoders, text_encoders


def _list(args):
    for title, registry in (("image encoders", image_encoders), ("text encoders", text_encoders), ("fusions", fusions)):
        print(f"{title}: {', '.join(registry.names())}")
    return 0


def _make_shapes(args):
    from .datasets import make_shapes

    df = make_shapes(args.n_samples, random_state=args.random_state, directory=os.path.join(args.out, "images"),
                     n_classes=args.n_classes)
    path = os.path.join(args.out, "shapes.csv")
    df.to_csv(path, index=False)
    print(f"{path}: {len(df)} rows, labels {sorted(df['label'].unique())}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="skmm", description="skmm: image+text learning, the scikit-learn way")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list registered backbones and fusions").set_defaults(func=_list)
    shapes = sub.add_parser("make-shapes", help="write the shapes image+text data set")
    shapes.add_argument("--out", required=True)
    shapes.add_argument("--n-samples", type=int, default=200)
    shapes.add_argument("--n-classes", type=int, default=4)
    shapes.add_argument("--random-state", type=int, default=0)
    shapes.set_defaults(func=_make_shapes)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
