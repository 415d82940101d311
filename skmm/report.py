"""An evaluation report as one self-contained HTML file (``pip install "skmm[plot]"``).

:func:`write_report` scores a fitted classifier on labelled data and writes
``report.html``: the metrics, the plots of :mod:`skmm.plotting`, the modality
importance of :mod:`skmm.inspection` and a gallery of the worst mistakes. Every
image (plots and thumbnails) is inlined as a ``data:`` URI, the style sheet is
inline and there is no script, so the file can be mailed, archived or opened
offline on its own. Every string that comes from the data or the model (labels,
texts, column names) is HTML-escaped.

``skmm evaluate`` writes it beside ``metrics.json`` and ``predictions.csv``.
"""

import base64
import html
import io
import math
import os
import warnings
from contextlib import suppress

import numpy as np
import pandas as pd

from .utils.files import atomic_output
from .utils.optional import import_optional
from .utils.validation import check_int

__all__ = ["write_report"]

#: The file :func:`write_report` writes in its directory.
REPORT_NAME = "report.html"
#: Largest side, in pixels, of a mistake's thumbnail.
THUMBNAIL_SIZE = 96
#: Characters of a row's text shown in the gallery (longer texts end with an ellipsis).
MAX_TEXT_CHARS = 400

_MISSING_PROBA = object()


def write_report(model, X, y, directory, *, n_mistakes=12, n_repeats=3, random_state=0, proba=None):
    """Write ``directory/report.html``: how ``model`` does on ``(X, y)``, with pictures.

    Parameters
    ----------
    model : fitted classifier
        A :class:`~skmm.FusionClassifier` gets every section; any other fitted
        scikit-learn classifier with ``predict_proba`` gets the metrics, the
        confusion matrix and the gallery (the other sections say why they are
        left out).
    X : DataFrame or array-like
        Data the model can predict on, usually held-out rows. Thumbnails are read
        from its image column(s) (paths), texts from its text column(s).
    y : array-like of shape (n_samples,)
        The true labels.
    directory : str or os.PathLike
        Where to write ``report.html`` (created if missing). The file is written
        to a temporary name and renamed, so an interrupted run leaves the old
        report, or none, never half of one.
    n_mistakes : int, default=12
        How many wrong predictions the gallery shows, the most confident first.
    n_repeats : int, default=3
        Permutations per modality for the modality importance.
    random_state : int, RandomState or None, default=0
        Seeds those permutations.
    proba : array of shape (n_samples, n_classes), optional
        ``model.predict_proba(X)``, when the caller has it already.

    Returns
    -------
    str
        The path of the report.

    Examples
    --------
    >>> import tempfile
    >>> from skmm import FusionClassifier
    >>> from skmm.datasets import make_shapes
    >>> from skmm.report import write_report
    >>> df = make_shapes(60, random_state=0)
    >>> clf = FusionClassifier(image="pixels", text="tfidf", fusion="gated", max_epochs=3).fit(df, df["label"])
    >>> path = write_report(clf, df, df["label"], tempfile.mkdtemp())
    >>> path.endswith("report.html")
    True
    """
    import_optional("matplotlib", "plot", what="skmm.report")
    n_mistakes = check_int("n_mistakes", n_mistakes, min_value=0)
    n_repeats = check_int("n_repeats", n_repeats)
    y = np.asarray(y)
    if len(y) != _n_rows(X):
        raise ValueError(f"X has {_n_rows(X)} rows but y has {len(y)} labels")
    if len(y) == 0:
        raise ValueError("the report needs at least one row")
    classes = np.asarray(model.classes_)
    if proba is None:
        proba = model.predict_proba(X)
    proba = np.asarray(proba, dtype=float)
    if proba.shape != (len(y), len(classes)):
        raise ValueError(f"proba has shape {proba.shape}, expected {(len(y), len(classes))}")
    y_pred = classes[np.argmax(proba, axis=1)]
    weights, weights_note = _modality_weights(model, X)

    sections = [
        _header(model, len(y)),
        _metrics_section(classes, y, y_pred, proba),
        _learning_curves_section(model),
        _confusion_section(classes, y, y_pred),
        _importance_section(model, X, y, n_repeats, random_state),
        _weights_section(weights, weights_note),
        _mistakes_section(model, X, y, y_pred, proba, weights, n_mistakes),
    ]
    page = _page(sections)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(os.fspath(directory), REPORT_NAME)
    _write_atomic(path, page)
    return path


# ------------------------------------------------------------------------- helpers


def _e(value):
    """``value`` as text safe anywhere in HTML (element content and quoted attributes)."""
    return html.escape(str(value), quote=True)


def _n_rows(X):
    return X.shape[0] if hasattr(X, "shape") else len(X)


def _fmt(value, digits=3):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _note(text):
    return f'<p class="note">{_e(text)}</p>'


def _section(ident, title, body):
    return f'<section id="{ident}">\n<h2>{_e(title)}</h2>\n{body}\n</section>'


def _png_uri(data):
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _figure(draw, *, size=(6.4, 4.2)):
    """A PNG data URI of what ``draw(ax)`` draws on a new Agg figure (no pyplot, no global state)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Labels and column names are data: a "$" in them must not start mathtext.
    with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
        fig = Figure(figsize=size, dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        draw(ax)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    return _png_uri(buffer.getvalue())


def _plot(uri, alt):
    return f'<figure class="plot"><img src="{uri}" alt="{_e(alt)}"></figure>'


def _table(header, rows, *, cls=""):
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>'


def _write_atomic(path, text):
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


# ------------------------------------------------------------------------ sections


def _header(model, n_rows):
    from . import __version__

    modalities = getattr(model, "modalities_", None)
    rows = [
        ("model", type(model).__name__),
        ("fusion", getattr(model, "fusion", "n/a")),
        ("modalities", ", ".join(map(str, modalities)) if modalities is not None else "n/a"),
        ("classes", ", ".join(map(str, model.classes_))),
        ("rows evaluated", n_rows),
    ]
    summary = "\n".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return (
        f"<header>\n<h1>Evaluation report</h1>\n<p class=\"note\">skmm {_e(__version__)}</p>\n"
        f'<table class="summary">\n{summary}\n</table>\n</header>'
    )


def _metrics_section(classes, y, y_pred, proba):
    from sklearn.metrics import accuracy_score, classification_report, f1_score, log_loss

    accuracy = accuracy_score(y, y_pred)
    f1 = f1_score(y, y_pred, average="macro", zero_division=0)
    try:
        loss = log_loss(y, proba, labels=classes)
    except ValueError:  # labels the model never saw have no probability
        loss = None
    summary = _table(
        ["accuracy", "macro-F1", "log-loss", "rows"],
        [[_fmt(accuracy), _fmt(f1), _fmt(loss), len(y)]],
        cls="metrics",
    )
    report = classification_report(y, y_pred, output_dict=True, zero_division=0)
    rows = [
        [label, _fmt(s["precision"]), _fmt(s["recall"]), _fmt(s["f1-score"]), int(s["support"])]
        for label, s in report.items()
        if isinstance(s, dict)
    ]
    per_class = _table(["class", "precision", "recall", "F1", "support"], rows, cls="per-class")
    body = summary + "\n<h3>Per class</h3>\n" + per_class
    if loss is None:
        body += _note("log-loss: n/a, the data holds labels the model never saw")
    return _section("metrics", "Metrics", body)


def _learning_curves_section(model):
    from .plotting import plot_learning_curves

    history = getattr(getattr(model, "net_", None), "history", None)
    if not history:
        return _section("learning-curves", "Learning curves", _note("no training history: not a FusionClassifier"))
    def draw(ax):
        from matplotlib.ticker import MaxNLocator

        plot_learning_curves(model, ax=ax)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs: no 1.25

    uri = _figure(draw)
    return _section("learning-curves", "Learning curves", _plot(uri, "learning curves"))


def _confusion_section(classes, y, y_pred):
    from sklearn.metrics import ConfusionMatrixDisplay

    labels = list(classes) + sorted(set(y.tolist()) - set(classes.tolist()), key=str)
    n = len(labels)

    def draw(ax):  # as skmm.plotting.plot_confusion_matrix draws it, from the predictions made once
        ConfusionMatrixDisplay.from_predictions(
            y, y_pred, labels=labels, ax=ax, xticks_rotation=45, colorbar=False
        )
        ax.set_title("Confusion matrix")

    side = min(12.0, max(4.8, 0.6 * n + 2.5))
    uri = _figure(draw, size=(side, side))
    return _section("confusion-matrix", "Confusion matrix", _plot(uri, "confusion matrix"))


def _importance_section(model, X, y, n_repeats, random_state):
    from .inspection import modality_importance
    from .plotting import plot_modality_importance

    title = "Modality importance"
    if not (hasattr(model, "model_inputs") and hasattr(model, "modalities_")):
        return _section("modality-importance", title, _note("needs a FusionClassifier"))
    result = modality_importance(model, X, y, n_repeats=n_repeats, random_state=random_state)
    uri = _figure(lambda ax: plot_modality_importance(result, ax=ax), size=(6.4, 1.6 + 0.7 * len(result.modalities)))
    rows = [
        [name, f"{_fmt(pm)} ± {_fmt(ps)}", f"{_fmt(rm)} ± {_fmt(rs)}"]
        for name, pm, ps, rm, rs in zip(
            result.modalities,
            result.importances_mean,
            result.importances_std,
            result.removal_importances_mean,
            result.removal_importances_std,
        )
    ]
    table = _table(["modality", "permuted: score drop", "removed: score drop"], rows, cls="importance")
    note = _note(
        f"Accuracy drop when a modality is shuffled across rows ({n_repeats} repeats, mean ± std) and when it is "
        f"removed (every row treated as missing it). Baseline accuracy {_fmt(result.baseline_score)}."
    )
    return _section("modality-importance", title, _plot(uri, "modality importance") + "\n" + table + "\n" + note)


def _modality_weights(model, X):
    """(per-row weights DataFrame or None, why not)."""
    if not hasattr(model, "modality_weights"):
        return None, "needs a FusionClassifier"
    try:
        return model.modality_weights(X), None
    except ValueError:  # fusions that do not weigh modalities say so
        fusion = getattr(model, "fusion", None)
        return None, f"fusion={fusion!r} does not weigh modalities per row (gated, attention and late do)"


def _weights_section(weights, note):
    from .plotting import plot_modality_weights

    title = "Modality weights"
    if weights is None:
        return _section("modality-weights", title, _note(f"not available: {note}"))
    uri = _figure(lambda ax: plot_modality_weights(weights, ax=ax), size=(6.4, 1.6 + 0.7 * weights.shape[1]))
    body = _plot(uri, "modality weights") + "\n" + _note("How much the fusion weighs each modality, over the rows.")
    return _section("modality-weights", title, body)


# ------------------------------------------------------------------------- gallery


def _columns_of(model, X, role):
    """The columns of ``X`` (a DataFrame) that the model reads as ``role`` ("image" or "text")."""
    if not isinstance(X, pd.DataFrame):
        return []
    roles = getattr(model, "column_roles_", None)  # wide tables: {column: role}
    if isinstance(roles, dict):
        columns = [c for c, r in roles.items() if r == role]
    else:
        column = getattr(model, f"{role}_col_", None)
        columns = [] if column is None else [column]
    return [c for c in columns if c in X.columns]


def _is_missing(value):
    if value is None:
        return True
    with suppress(TypeError, ValueError):
        return bool(pd.isna(value))
    return False


def _thumbnail(value):
    """(data URI or None, why there is none) for an image path."""
    if _is_missing(value) or (isinstance(value, str) and not value.strip()):
        return None, "no image"
    path = os.fspath(value) if isinstance(value, (str, os.PathLike)) else None
    if path is None:
        return None, "no image"
    if "://" in path:
        return None, "remote image, not fetched"
    if not os.path.isfile(path):
        return None, "image file not found"
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DecompressionBombWarning and the like: the answer is no thumbnail
            with Image.open(path) as img:
                img.draft("RGB", (2 * THUMBNAIL_SIZE, 2 * THUMBNAIL_SIZE))  # JPEG: decode at a reduced scale
                img = ImageOps.exif_transpose(img)
                if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                    rgba = img.convert("RGBA")
                    img = Image.new("RGB", rgba.size, "white")
                    img.paste(rgba, mask=rgba.getchannel("A"))
                else:
                    img = img.convert("RGB")
                img.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
                buffer = io.BytesIO()
                img.save(buffer, format="PNG", optimize=True)
    except Exception:  # a damaged or unsupported file: the gallery says so rather than failing the report
        return None, "unreadable image"
    return _png_uri(buffer.getvalue()), None


def _text(value):
    if _is_missing(value):
        return None
    text = str(value)
    return text if len(text) <= MAX_TEXT_CHARS else text[: MAX_TEXT_CHARS - 1] + "…"


def _worst_mistakes(y, y_pred, proba, n):
    """Positions of the wrong predictions, the most confident first (ties: row order)."""
    wrong = np.flatnonzero(y_pred != y)
    confidence = proba.max(axis=1)[wrong]
    return wrong[np.argsort(-confidence, kind="stable")][:n]


def _mistakes_section(model, X, y, y_pred, proba, weights, n_mistakes):
    title = "Worst mistakes"
    positions = _worst_mistakes(y, y_pred, proba, n_mistakes)
    n_wrong = int((y_pred != y).sum())
    if n_wrong == 0:
        return _section("mistakes", title, _note("No mistakes: every row is predicted right."))
    image_cols = _columns_of(model, X, "image")
    text_cols = _columns_of(model, X, "text")
    index = X.index if isinstance(X, pd.DataFrame) else None
    class_position = {label: j for j, label in enumerate(np.asarray(model.classes_).tolist())}
    cards = []
    for pos in positions:
        parts = []
        for column in image_cols or [None]:
            uri, why = _thumbnail(X[column].iloc[pos]) if column is not None else (None, "no image")
            if uri is None:
                parts.append(f'<div class="thumb noimage">{_e(why)}</div>')
            else:
                alt = f"row {index[pos] if index is not None else pos}" + (f", {column}" if column else "")
                parts.append(f'<img class="thumb" src="{uri}" alt="{_e(alt)}">')
        thumbs = '<div class="thumbs">' + "".join(parts) + "</div>"
        true, pred = y[pos], y_pred[pos]
        j = class_position.get(true.item() if hasattr(true, "item") else true)
        facts = [
            ("row", index[pos] if index is not None else pos),
            ("true", true),
            ("predicted", pred),
            ("confidence", _fmt(proba[pos].max())),
            ("p(true)", _fmt(proba[pos, j]) if j is not None else "unseen label"),
        ]
        dl = "".join(f"<dt>{_e(k)}</dt><dd class=\"{_e(k.replace('(', '-').rstrip(')'))}\">{_e(v)}</dd>"
                     for k, v in facts)
        texts = []
        for column in text_cols:
            text = _text(X[column].iloc[pos])
            label = f'<span class="col">{_e(column)}</span> ' if len(text_cols) > 1 else ""
            texts.append(f'<p class="text">{label}{_e(text) if text is not None else "<em>no text</em>"}</p>')
        bars = ""
        if weights is not None:
            row = weights.iloc[pos]
            bars = '<div class="weights">' + "".join(
                f'<div class="weight"><span class="name">{_e(name)}</span>'
                f'<span class="bar"><span style="width:{100 * float(w):.1f}%"></span></span>'
                f'<span class="value">{_fmt(float(w), 2)}</span></div>'
                for name, w in row.items()
            ) + "</div>"
        cards.append(f'<div class="mistake">{thumbs}<dl>{dl}</dl>{"".join(texts)}{bars}</div>')
    intro = _note(
        f"{len(positions)} of the {n_wrong} wrong predictions ({n_wrong / len(y):.1%} of the rows), "
        "the most confident first."
    )
    return _section("mistakes", title, intro + '\n<div class="gallery">\n' + "\n".join(cards) + "\n</div>")


# ---------------------------------------------------------------------------- page

_STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2330;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; background: #fff; }
h1 { margin-bottom: .2em; } h2 { border-bottom: 1px solid #d6dae3; padding-bottom: .2em; margin-top: 1.8em; }
.note { color: #5a6275; font-size: .9em; }
table { border-collapse: collapse; margin: .6em 0; }
th, td { padding: .25em .8em; border-bottom: 1px solid #e6e9ef; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f3f5f9; }
table.summary th { text-align: left; color: #5a6275; font-weight: normal; }
table.summary td { text-align: left; }
figure.plot { margin: .6em 0; } figure.plot img { max-width: 100%; height: auto; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr)); gap: 12px; }
.mistake { border: 1px solid #d6dae3; border-radius: 6px; padding: 10px; background: #fafbfd; }
.thumbs { display: flex; gap: 6px; flex-wrap: wrap; }
.thumb { width: 96px; height: 96px; object-fit: contain; image-rendering: pixelated; background: #fff;
         border: 1px solid #e6e9ef; }
.noimage { display: flex; align-items: center; justify-content: center; text-align: center;
           color: #8a91a3; font-size: .8em; }
dl { display: grid; grid-template-columns: auto 1fr; gap: 0 .8em; margin: .5em 0; font-size: .9em; }
dt { color: #5a6275; } dd { margin: 0; overflow-wrap: anywhere; }
dd.true { color: #1b7a3a; font-weight: 600; } dd.predicted { color: #b3261e; font-weight: 600; }
.text { font-size: .9em; margin: .3em 0; overflow-wrap: anywhere; white-space: pre-wrap; }
.col { color: #5a6275; font-size: .85em; }
.weight { display: grid; grid-template-columns: 5em 1fr 2.5em; gap: .4em; align-items: center; font-size: .8em; }
.weight .name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.bar { background: #e6e9ef; height: .6em; border-radius: 3px; overflow: hidden; display: block; }
.bar span { background: #3b6fd6; height: 100%; display: block; }
"""


def _page(sections):
    body = "\n\n".join(sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>skmm evaluation report</title>\n"
        # No scripts, no requests: a favicon request would be the only outside fetch, so it points nowhere.
        '<link rel="icon" href="data:,">\n'
        f"<style>{_STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
