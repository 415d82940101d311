"""The model commands: ``skmm fit``, ``skmm predict`` and ``skmm evaluate``.

A model file is the fitted estimator saved with :func:`joblib.dump`, so
``joblib.load("model.joblib")`` gives it back in Python.  Like every pickle, it
runs code when loaded: load model files only from sources you trust.
"""

import importlib.util
import json
import os
import time

from .errors import CommandError, one_line
from .files import (
    atomic_output,
    check_input_file,
    check_output_dir,
    check_output_file,
    guess_image_columns,
    image_root,
    read_table,
    require_columns,
    resolve_image_paths,
    write_table,
)
from .params import apply_params, parse_params

__all__ = ["build_classifier", "evaluate", "fit", "load_model", "predict", "register", "set_verbose"]


def register(sub, parents):
    """Add the fit, predict and evaluate parsers to ``sub``."""
    p = sub.add_parser(
        "fit",
        parents=parents,
        help="train a FusionClassifier (or a FusionRegressor) on a table and save it",
        description="Train a FusionClassifier on DATA (.csv, .tsv or .parquet) and save it with joblib; "
        "with --regression, a FusionRegressor of a numeric target.",
    )
    p.add_argument("data", metavar="DATA", help="table with an image-path and/or a text column and the target")
    p.add_argument("--target", required=True, metavar="COL", help="the column of labels (numbers with --regression)")
    p.add_argument("--regression", action="store_true", help="train a FusionRegressor: the target is numeric")
    _add_column_options(p)
    p.add_argument("--fusion", metavar="NAME", help="fusion strategy (see 'skmm list'); default concat")
    p.add_argument("--image-backbone", metavar="NAME", help="image backbone, e.g. cnn, pixels, torchvision:resnet18")
    p.add_argument("--text-backbone", metavar="NAME", help="text backbone, e.g. gru, tfidf, hf:<dir>")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        nargs="+",
        help="FusionClassifier (FusionRegressor) parameter, value read as a Python literal (max_epochs=5, image__image_size=64)",
    )
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="where to save the model (model.joblib)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or epoch table")
    p.set_defaults(func=fit)

    p = sub.add_parser(
        "predict",
        parents=parents,
        help="predict labels (and probabilities) for a table",
        description="Predict the rows of DATA with a saved model; write a column 'prediction' "
        "(and 'proba_<class>' columns with --proba).",
    )
    p.add_argument("model", metavar="MODEL", help="a model saved by 'skmm fit' (load only trusted files)")
    p.add_argument("data", metavar="DATA")
    p.add_argument("--image-root", metavar="DIR", help="directory of relative image paths (default: DATA's)")
    p.add_argument("--proba", action="store_true", help="add one probability column per class")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help=".csv, .tsv or .parquet; '-' for stdout")
    p.set_defaults(func=predict)

    p = sub.add_parser(
        "evaluate",
        parents=parents,
        help="score a saved model on labelled data and write a report",
        description="Score a saved model on DATA; write REPORT_DIR/metrics.json, REPORT_DIR/predictions.csv "
        "and REPORT_DIR/report.html (a self-contained HTML report: metrics, plots, modality importance, "
        "the worst mistakes; needs matplotlib).",
    )
    p.add_argument("model", metavar="MODEL")
    p.add_argument("data", metavar="DATA")
    p.add_argument("--target", required=True, metavar="COL", help="the column of true labels")
    p.add_argument("--image-root", metavar="DIR", help="directory of relative image paths (default: DATA's)")
    p.add_argument("-o", "--output", required=True, metavar="REPORT_DIR", help="directory for the report")
    p.add_argument("--no-report", action="store_true", help="write only metrics.json and predictions.csv")
    p.add_argument(
        "--n-mistakes", type=int, default=12, metavar="N", help="wrong predictions shown in report.html (default 12)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=evaluate)


def _add_column_options(p):
    p.add_argument("--image-col", metavar="COL", help="column of image paths (default: detected)")
    p.add_argument("--text-col", metavar="COL", help="column of texts (default: detected)")
    p.add_argument(
        "--columns", metavar="SPEC",
        help="a wide table: 'auto' (every column's role detected) or COL=ROLE,... with the roles image, text, "
        "numeric, categorical (instead of --image-col/--text-col)",
    )
    p.add_argument("--image-root", metavar="DIR", help="directory of relative image paths (default: DATA's)")


# ---------------------------------------------------------------------------- fit


def parse_columns(spec):
    """``--columns``: "auto", or "COL=ROLE,COL=ROLE" -> {COL: ROLE} (a bad item is a CommandError)."""
    if spec.strip() == "auto":
        return "auto"
    columns = {}
    for item in spec.split(","):
        column, sep, role = item.partition("=")
        if not sep or not column.strip() or not role.strip():
            raise CommandError(f"--columns: {item!r} is not COL=ROLE (roles: image, text, numeric, categorical)")
        columns[column.strip()] = role.strip()
    return columns


def build_classifier(args):
    """The FusionClassifier (FusionRegressor with ``--regression``) the ``fit`` arguments describe (not fitted)."""
    from .. import FusionClassifier, FusionRegressor, ImageEncoder, TextEncoder

    kwargs = {"verbose": 0 if args.quiet else 1}
    if args.image_backbone:
        kwargs["image"] = ImageEncoder(args.image_backbone)
    if args.text_backbone:
        kwargs["text"] = TextEncoder(args.text_backbone)
    if args.fusion:
        kwargs["fusion"] = args.fusion
    if args.image_col:
        kwargs["image_col"] = args.image_col
    if args.text_col:
        kwargs["text_col"] = args.text_col
    if getattr(args, "columns", None):
        kwargs["columns"] = parse_columns(args.columns)
    params = parse_params(item for group in args.param for item in group)
    estimator = FusionRegressor if getattr(args, "regression", False) else FusionClassifier
    return apply_params(estimator(**kwargs), params), params


def set_verbose(model, verbose):
    """Set ``verbose`` on a model and on its fitted encoders (which print the encoding bars)."""
    if "verbose" in model.get_params(deep=False):
        model.set_params(verbose=verbose)
    for encoder in getattr(model, "encoders_", {}).values():
        if "verbose" in encoder.get_params(deep=False):
            encoder.set_params(verbose=verbose)


def fit(args):
    """``skmm fit``: read, train, save atomically; nothing is written unless all of it succeeds."""
    import joblib

    check_output_file(args.output, inputs=[args.data])
    clf, params = build_classifier(args)  # an unknown --param fails before the data is read
    df = read_table(args.data)
    require_columns(df, args.data, target=args.target, image_col=args.image_col, text_col=args.text_col)
    if args.target in (args.image_col, args.text_col):
        raise CommandError(f"--target {args.target!r} is also given as an input column")
    y = df[args.target]
    X = df.drop(columns=[args.target])
    if isinstance(clf.columns, dict):
        image_cols = [c for c, role in clf.columns.items() if role == "image"]
    else:
        image_cols = [args.image_col] if args.image_col else guess_image_columns(X)
    X = resolve_image_paths(X, image_cols, image_root(args))
    start = time.perf_counter()
    clf.fit(X, y)
    seconds = time.perf_counter() - start
    # The progress shown here is the command's; the saved model is as quiet as asked for.
    set_verbose(clf, params.get("verbose", 0))
    with atomic_output(args.output) as tmp:
        joblib.dump(clf, tmp)
    target = f"classes: {', '.join(map(str, clf.classes_))}" if hasattr(clf, "classes_") else f"target {args.target!r}"
    modalities = "+".join(getattr(clf, "modalities_", [])) or "?"
    print(f"{args.output}: {type(clf).__name__}({modalities}, fusion={clf.fusion!r}) "
          f"trained on {len(X)} rows in {seconds:.1f} s; {target}")
    return 0


# ------------------------------------------------------------------ predict, evaluate


def load_model(path, *, regressor=False):
    """The classifier saved in ``path`` by ``skmm fit`` (or any fitted scikit-learn classifier).

    ``regressor=True`` also accepts a fitted FusionRegressor (``skmm predict``).
    """
    import joblib

    check_input_file(path, "model file")
    try:
        model = joblib.load(path)
    except Exception as exc:  # a file that is not a joblib pickle fails in many ways
        raise CommandError(f"cannot load model {path!r} (a file saved by 'skmm fit'?): {one_line(exc)}") from None
    if regressor and hasattr(model, "target_mean_"):
        return model
    if not (hasattr(model, "predict_proba") and hasattr(model, "classes_")):
        if hasattr(model, "target_mean_"):
            raise CommandError(f"{path!r} holds a {type(model).__name__} (a regressor); the command handles "
                               "fitted classifiers only: use it from Python (model.predict, model.score)")
        raise CommandError(f"{path!r} holds a {type(model).__name__}, not a fitted classifier")
    if getattr(model, "multilabel_", False):
        raise CommandError(
            f"{path!r} holds a multilabel {type(model).__name__} (several labels per row); the command handles "
            "one label per row: use it from Python (model.predict gives the labels in the form y had)"
        )
    return model


def _model_image_columns(model, df):
    """The columns the fitted model reads image paths from (guessed if it does not say)."""
    roles = getattr(model, "column_roles_", None)  # wide tables: {column: role}
    if isinstance(roles, dict):
        return [column for column, role in roles.items() if role == "image"]
    column = getattr(model, "image_col_", None)
    return [column] if column is not None else guess_image_columns(df)


def _predict_frame(model, X, *, proba):
    """(predictions, probabilities or None), computing the probabilities once."""
    import numpy as np

    if not proba:
        return model.predict(X), None
    p = model.predict_proba(X)
    return model.classes_[np.argmax(p, axis=1)], p


def _output_frame(model, predictions, proba, **leading):
    import pandas as pd

    columns = dict(leading)
    if getattr(predictions, "ndim", 1) == 2:  # a regressor of several targets: one column each
        table = pd.DataFrame(predictions)
        for j, name in enumerate(table.columns):
            columns[f"prediction_{name}"] = table.iloc[:, j].to_numpy()
    else:
        columns["prediction"] = list(predictions)
    if proba is not None:
        for j, label in enumerate(model.classes_):
            columns[f"proba_{label}"] = proba[:, j]
    return pd.DataFrame(columns)


def predict(args):
    """``skmm predict``: one row of output per row of DATA, in order."""
    check_output_file(args.output, inputs=[args.data, args.model], table=True)
    model = load_model(args.model, regressor=True)
    if args.proba and not hasattr(model, "predict_proba"):
        raise CommandError(f"--proba: {args.model!r} holds a {type(model).__name__}, which has no probabilities")
    set_verbose(model, 0 if args.quiet else 1)
    df = read_table(args.data)
    X = resolve_image_paths(df, _model_image_columns(model, df), image_root(args))
    predictions, proba = _predict_frame(model, X, proba=args.proba)
    write_table(_output_frame(model, predictions, proba), args.output)
    if args.output != "-":
        print(f"{args.output}: {len(X)} predictions" + (" with probabilities" if args.proba else ""))
    return 0


def classification_metrics(model, y_true, y_pred, proba):
    """accuracy, macro-F1, log-loss and the per-class report, as plain JSON data."""
    from sklearn.metrics import accuracy_score, classification_report, f1_score, log_loss

    metrics = {
        "n_samples": int(len(y_true)),
        "classes": [_plain(c) for c in model.classes_],
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_macro": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }
    try:
        metrics["log_loss"] = float(log_loss(y_true, proba, labels=model.classes_))
    except ValueError as exc:  # labels the model never saw have no probability
        metrics["log_loss"] = None
        metrics["log_loss_error"] = one_line(exc)
    report = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    metrics["classification_report"] = {str(k): _plain(v) for k, v in report.items()}
    return metrics


def _plain(value):
    """numpy scalars and nested dicts -> JSON-ready Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "item"):
        return value.item()
    return value


def format_metrics(metrics):
    """The short table ``skmm evaluate`` prints."""
    ll = metrics["log_loss"]
    lines = [
        f"accuracy {metrics['accuracy']:.3f}   macro-F1 {metrics['f1_macro']:.3f}   "
        f"log-loss {'n/a' if ll is None else f'{ll:.3f}'}   ({metrics['n_samples']} rows)"
    ]
    report = metrics["classification_report"]
    rows = [k for k in report if isinstance(report[k], dict) and k not in ("macro avg", "weighted avg")]
    width = max([len("class")] + [len(r) for r in rows])
    lines.append(f"{'class':<{width}}  precision  recall  f1-score  support")
    for r in rows:
        s = report[r]
        scores = f"{s['precision']:9.3f}  {s['recall']:6.3f}  {s['f1-score']:8.3f}  {int(s['support']):7d}"
        lines.append(f"{r:<{width}}  {scores}")
    return "\n".join(lines)


def evaluate(args):
    """``skmm evaluate``: metrics.json, predictions.csv and report.html in REPORT_DIR, and a table on stdout."""
    check_output_dir(args.output)
    if not args.no_report:
        if args.n_mistakes < 0:
            raise CommandError(f"--n-mistakes must be 0 or more, got {args.n_mistakes}")
        if importlib.util.find_spec("matplotlib") is None:
            raise CommandError('report.html needs matplotlib: pip install "skmm[plot]", or pass --no-report')
    model = load_model(args.model)
    set_verbose(model, 0 if args.quiet else 1)
    df = read_table(args.data)
    require_columns(df, args.data, target=args.target)
    y = df[args.target]
    if y.isna().any():
        row = int(y.isna().to_numpy().argmax())
        raise CommandError(f"--target {args.target!r} has a missing label at row {row}")
    X = df.drop(columns=[args.target])
    X = resolve_image_paths(X, _model_image_columns(model, X), image_root(args))
    predictions, proba = _predict_frame(model, X, proba=True)
    metrics = classification_metrics(model, y.to_numpy(), predictions, proba)
    metrics.update(model=os.path.abspath(args.model), data=os.path.abspath(args.data), target=str(args.target))
    frame = _output_frame(model, predictions, proba, target=list(y))
    table = format_metrics(metrics)
    os.makedirs(args.output, exist_ok=True)
    written = ["metrics.json", "predictions.csv"]
    if not args.no_report:  # first: the step most likely to fail leaves the other files unwritten
        from ..report import write_report

        write_report(model, X, y.to_numpy(), args.output, proba=proba, n_mistakes=args.n_mistakes)
        written.append("report.html")
    with atomic_output(os.path.join(args.output, "metrics.json")) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(metrics, f, indent=2, allow_nan=False)
            f.write("\n")
    write_table(frame, os.path.join(args.output, "predictions.csv"))
    print(table)
    print(f"{args.output}: {', '.join(written)}")
    return 0
