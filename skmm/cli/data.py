"""``skmm list``, ``skmm make-shapes`` and ``skmm demo``: what is there, and something to try it on."""

import os
import tempfile
import time

from .files import atomic_output

__all__ = ["demo", "list_registered", "make_shapes", "register"]


def register(sub, parents):
    """Add the list, make-shapes and demo parsers to ``sub``."""
    p = sub.add_parser("list", parents=parents, help="list registered backbones and fusions")
    p.set_defaults(func=list_registered)

    p = sub.add_parser(
        "make-shapes",
        parents=parents,
        help="write the shapes image+text data set",
        description="Write OUT/shapes.csv (image_path relative to OUT, caption, label) and OUT/images/*.png.",
    )
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--n-samples", type=int, default=200)
    p.add_argument("--n-classes", type=int, default=4, choices=(2, 4, 6, 9))
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--random-state", type=int, default=0)
    p.set_defaults(func=make_shapes)

    p = sub.add_parser(
        "demo",
        parents=parents,
        help="train on a made-up image+text set and print held-out accuracy",
        description="Make the shapes data set in a temporary directory (the label needs both the image and "
        "the caption), train a FusionClassifier on 75%% of it and score the rest.",
    )
    p.add_argument("--n-samples", type=int, default=240)
    p.add_argument("--max-epochs", type=int, default=15)
    p.add_argument("--fusion", default="concat", metavar="NAME")
    p.add_argument("--random-state", type=int, default=0)
    p.add_argument("-q", "--quiet", action="store_true", help="no epoch table")
    p.set_defaults(func=demo)


def list_registered(args):
    """``skmm list``: one line per registry."""
    from ..registry import fusions, image_backbones, text_backbones

    registries = {"image backbones": image_backbones, "text backbones": text_backbones, "fusions": fusions}
    for title, registry in registries.items():
        print(f"{title}: {', '.join(registry.names())}")
    return 0


def make_shapes(args):
    """``skmm make-shapes``: a portable folder (paths in the CSV are relative to it)."""
    from ..datasets import make_shapes as make

    df = make(
        args.n_samples,
        random_state=args.random_state,
        directory=os.path.join(args.out, "images"),
        n_classes=args.n_classes,
        image_size=args.image_size,
    )
    out = os.path.abspath(args.out)
    df["image_path"] = [os.path.relpath(p, out) for p in df["image_path"]]
    path = os.path.join(args.out, "shapes.csv")
    with atomic_output(path) as tmp:
        df.to_csv(tmp, index=False)
    print(f"{path}: {len(df)} rows, labels {', '.join(sorted(df['label'].unique()))}")
    return 0


def demo(args):
    """``skmm demo``: fit on three quarters of a fresh shapes set, print accuracy on the rest."""
    from sklearn.model_selection import train_test_split

    from .. import FusionClassifier, ImageEncoder, TextEncoder
    from ..datasets import make_shapes as make

    with tempfile.TemporaryDirectory(prefix="skmm-demo-") as tmp:
        df = make(args.n_samples, random_state=args.random_state, directory=tmp, image_size=32)
        train, test = train_test_split(df, test_size=0.25, stratify=df["label"], random_state=args.random_state)
        clf = FusionClassifier(
            # A small CNN at the images' own size: trained end to end in seconds on a laptop CPU.
            image=ImageEncoder("cnn", image_size=32, backbone_kwargs={"channels": (16, 32, 64)}),
            text=TextEncoder("tfidf"),
            image_col="image_path",
            text_col="caption",
            fusion=args.fusion,
            max_epochs=args.max_epochs,
            dim=32,
            hidden_dim=32,
            lr=3e-3,
            random_state=args.random_state,
            verbose=0 if args.quiet else 1,
        )
        print(f"shapes: {len(df)} rows; the label is the caption's colour and the image's shape")
        start = time.perf_counter()
        clf.fit(train, train["label"])
        accuracy = clf.score(test, test["label"])
        seconds = time.perf_counter() - start
    chance = 1 / df["label"].nunique()
    print(
        f"FusionClassifier(image='cnn', text='tfidf', fusion={args.fusion!r}): accuracy {accuracy:.3f} "
        f"on {len(test)} held-out rows (chance {chance:.2f}), trained in {seconds:.1f} s"
    )
    return 0
