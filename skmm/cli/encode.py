"""``skmm encode``: image and text features of a table, for any other model."""

from ..io.columns import detect_columns
from .errors import CommandError
from .files import (
    check_output_file,
    image_root,
    read_table,
    require_columns,
    resolve_image_paths,
    write_table,
)
from .params import apply_params, parse_params

__all__ = ["encode", "register"]


def register(sub, parents):
    """Add the encode parser to ``sub``."""
    p = sub.add_parser(
        "encode",
        parents=parents,
        help="write the image and text features of a table",
        description="Fit ImageEncoder/TextEncoder on DATA's columns and write their features, named "
        "<column>__<feature>.  Without --image-col/--text-col both columns are detected; naming a "
        "backbone asks for that modality.",
    )
    p.add_argument("data", metavar="DATA")
    p.add_argument("--image-col", metavar="COL", help="column of image paths")
    p.add_argument("--text-col", metavar="COL", help="column of texts")
    p.add_argument("--image-root", metavar="DIR", help="directory of relative image paths (default: DATA's)")
    p.add_argument("--image-backbone", metavar="NAME", help="default cnn (see 'skmm list')")
    p.add_argument("--text-backbone", metavar="NAME", help="default tfidf (see 'skmm list')")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        nargs="+",
        metavar="KEY=VALUE",
        help="encoder parameter prefixed by its modality: image__image_size=64, text__dim=32",
    )
    p.add_argument("--cache-dir", metavar="DIR", help="keep the features in this disk cache (see 'skmm cache')")
    p.add_argument("--keep", action="append", default=[], metavar="COL", help="copy this column to the output")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help=".parquet, .csv or .tsv")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=encode)


def _choose_columns(args, df):
    """(image column or None, text column or None), as named, or detected as FusionClassifier does."""
    image_col, text_col = args.image_col, args.text_col
    detect_all = image_col is None and text_col is None
    want_image = image_col is not None or detect_all or bool(args.image_backbone)
    want_text = text_col is not None or detect_all or bool(args.text_backbone)
    candidates = df.drop(columns=[c for c in args.keep if c in df.columns and c not in (image_col, text_col)])
    try:
        found_image, found_text, _ = detect_columns(candidates, image_col, text_col)
    except ValueError as exc:
        message = str(exc).replace("image_col=", "--image-col ").replace("text_col=", "--text-col ")
        raise CommandError(message) from None
    image_col = found_image if want_image else None
    text_col = found_text if want_text else None
    if args.image_backbone and image_col is None:
        raise CommandError(f"no column of image paths found in {args.data!r}; name it with --image-col")
    if args.text_backbone and text_col is None:
        raise CommandError(f"no text column found in {args.data!r}; name it with --text-col")
    if image_col is None and text_col is None:
        raise CommandError(f"found no image-path or text column in {args.data!r}; use --image-col/--text-col")
    return image_col, text_col


def build_encoders(args, image_col, text_col):
    """{column: encoder} for the chosen columns, with --param and --cache-dir applied."""
    from .. import ImageEncoder, TextEncoder

    common = {"verbose": 0 if args.quiet else 1}
    if args.cache_dir:
        common["cache_dir"] = args.cache_dir
    params = parse_params(item for group in args.param for item in group)
    by_modality = {"image": {}, "text": {}}
    for key, value in params.items():
        modality, sep, name = key.partition("__")
        if not sep or modality not in by_modality or not name:
            raise CommandError(
                f"--param {key!r}: encode's parameters start with image__ or text__ (image__image_size=64)"
            )
        by_modality[modality][name] = value
    encoders = {}
    if image_col is not None:
        enc = ImageEncoder(args.image_backbone or "cnn", **common)
        encoders[image_col] = apply_params(enc, by_modality["image"], what="ImageEncoder (image__)")
    elif by_modality["image"]:
        raise CommandError("--param image__...: no image column is encoded")
    if text_col is not None:
        enc = TextEncoder(args.text_backbone or "tfidf", **common)
        encoders[text_col] = apply_params(enc, by_modality["text"], what="TextEncoder (text__)")
    elif by_modality["text"]:
        raise CommandError("--param text__...: no text column is encoded")
    return encoders


def encode(args):
    """``skmm encode``: the kept columns, then each encoder's features, one row per row of DATA."""
    import numpy as np
    import pandas as pd

    check_output_file(args.output, inputs=[args.data], table=True)
    df = read_table(args.data)
    require_columns(df, args.data, image_col=args.image_col, text_col=args.text_col)
    for column in args.keep:
        require_columns(df, args.data, keep=column)
    image_col, text_col = _choose_columns(args, df)
    encoders = build_encoders(args, image_col, text_col)
    if image_col is not None:
        df = resolve_image_paths(df, [image_col], image_root(args))
    blocks = [df[args.keep].reset_index(drop=True)] if args.keep else []
    for column, encoder in encoders.items():
        features = encoder.fit_transform(df[[column]])
        if hasattr(features, "toarray"):  # sparse
            features = features.toarray()
        names = [f"{column}__{name}" for name in encoder.get_feature_names_out()]
        blocks.append(pd.DataFrame(np.asarray(features), columns=names))
    out = pd.concat(blocks, axis=1)
    write_table(out, args.output)
    if args.output != "-":
        shapes = ", ".join(f"{column}: {type(e).__name__}({e.backbone!r})" for column, e in encoders.items())
        print(f"{args.output}: {len(out)} rows x {out.shape[1]} columns ({shapes})")
    return 0
