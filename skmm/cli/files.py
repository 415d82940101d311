"""The command's files: reading tables, writing outputs atomically, image paths, sizes."""

import os
import sys

from ..io.columns import is_text_column, looks_like_image_paths
from ..utils.files import atomic_output
from .errors import CommandError, one_line

__all__ = [
    "TABLE_FORMATS",
    "atomic_output",
    "check_input_file",
    "check_output_dir",
    "check_output_file",
    "guess_image_columns",
    "human_bytes",
    "image_root",
    "read_table",
    "require_columns",
    "resolve_image_paths",
    "write_table",
]

#: Extensions read and written as tables, and the format each stands for.
TABLE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}

#: Suffixes that mark a column of image paths when no --image-col is given.



# ------------------------------------------------------------------------ inputs


def check_input_file(path, what="file"):
    """Refuse, before anything is read, a path that is missing, not a regular file or empty."""
    if not os.path.lexists(path):
        raise CommandError(f"{what} {path!r} does not exist")
    if os.path.isdir(path):
        raise CommandError(f"{what} {path!r} is a directory, not a file")
    if not os.path.isfile(path):  # FIFOs, sockets, devices, dangling links: reading them may block
        raise CommandError(f"{what} {path!r} is not a regular file")
    if not os.access(path, os.R_OK):
        raise CommandError(f"{what} {path!r} is not readable (permission denied)")
    if os.path.getsize(path) == 0:
        raise CommandError(f"{what} {path!r} is empty")


def _table_format(path, flag):
    if path == "-" and flag is not None:
        return "csv"
    ext = os.path.splitext(path)[1].lower()
    try:
        return TABLE_FORMATS[ext]
    except KeyError:
        known = ", ".join(TABLE_FORMATS)
        where = f"{flag} {path!r}" if flag else repr(path)
        raise CommandError(f"{where}: unknown table format {ext or '(no extension)'!r}; use one of {known}") from None


def _check_parquet_engine(path):
    for engine in ("pyarrow", "fastparquet"):
        try:
            __import__(engine)
            return
        except ImportError:
            pass
    raise CommandError(f"{path!r}: parquet files need pyarrow (pip install pyarrow), or use .csv")


def read_table(path):
    """The table in ``path`` (.csv, .tsv, .parquet) as a DataFrame with at least one row."""
    import pandas as pd

    check_input_file(path, "data file")
    fmt = _table_format(path, None)
    if fmt == "parquet":
        _check_parquet_engine(path)
    try:
        if fmt == "parquet":
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(path, sep="\t" if fmt == "tsv" else ",")
    except pd.errors.EmptyDataError:
        raise CommandError(f"data file {path!r} is empty (no header, no rows)") from None
    except pd.errors.ParserError as exc:
        raise CommandError(f"data file {path!r} is not a valid {fmt.upper()} table: {one_line(exc)}") from None
    except UnicodeDecodeError as exc:
        raise CommandError(f"data file {path!r} is not UTF-8 text: {one_line(exc)}") from None
    except OSError as exc:
        raise CommandError(f"cannot read data file {path!r}: {exc.strerror or one_line(exc)}") from None
    except Exception as exc:  # a damaged parquet file raises the engine's own errors
        raise CommandError(f"cannot read data file {path!r}: {one_line(exc)}") from None
    if len(df) == 0:
        raise CommandError(f"data file {path!r} has no rows (columns: {', '.join(map(str, df.columns))})")
    return df


def require_columns(df, path, **options):
    """Check that every ``--option`` naming a column (``target="label"``) names one of ``df``'s."""
    for option, column in options.items():
        if column is not None and column not in df.columns:
            columns = ", ".join(map(str, df.columns))
            flag = "--" + option.replace("_", "-")
            raise CommandError(f"{flag} {column!r} is not a column of {path!r}; its columns are: {columns}")


def image_root(args):
    """The directory relative image paths are read from: --image-root, else the data file's."""
    root = args.image_root
    if root is None:
        return os.path.dirname(os.path.abspath(args.data))
    if not os.path.isdir(root):
        raise CommandError(f"--image-root {root!r} is not a directory")
    return os.path.abspath(root)


def guess_image_columns(df):
    """Columns that hold image paths, by the rule FusionClassifier uses (:mod:`skmm.io.columns`)."""
    return [column for column in df.columns if is_text_column(df[column]) and looks_like_image_paths(df[column])]


def _resolve(value, root):
    if isinstance(value, str) and ";" in value:  # several pictures in one cell (skmm.io.roles.PICTURE_SEPARATOR)
        return ";".join(_resolve(part.strip(), root) for part in value.split(";") if part.strip())
    if not isinstance(value, str) or not value.strip() or "://" in value:
        return value  # missing values stay missing; URLs are the encoder's business
    path = os.path.expanduser(value)
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(root, path))


def resolve_image_paths(df, columns, root):
    """A copy of ``df`` whose image ``columns`` hold absolute paths, relative ones read from ``root``."""
    df = df.copy()
    for column in columns:
        if column in df.columns:
            df[column] = df[column].map(lambda value: _resolve(value, root)).astype(object)
    return df


# ----------------------------------------------------------------------- outputs


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output_file(path, *, inputs=(), table=False):
    """Refuse, before any work, an output path that cannot be written or would overwrite an input."""
    if path == "-" and table:
        return
    if table:
        if _table_format(path, "-o") == "parquet":
            _check_parquet_engine(path)
    if os.path.isdir(path):
        raise CommandError(f"-o {path!r} is a directory; give a file name")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise CommandError(f"-o {path!r}: directory {parent!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CommandError(f"-o {path!r}: directory {parent!r} is not writable")
    for other in inputs:
        if _same_file(path, other):
            raise CommandError(f"-o {path!r} is an input of this command; choose another output")


def check_output_dir(path):
    """Refuse, before any work, a report directory that cannot be made or written."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise CommandError(f"-o {path!r} exists and is not a directory")
    target = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(target):
        raise CommandError(f"-o {path!r}: directory {target!r} does not exist")
    if not os.access(target, os.W_OK | os.X_OK):
        raise CommandError(f"-o {path!r}: directory {target!r} is not writable")


def write_table(df, path):
    """Write ``df`` to ``path`` (.csv, .tsv, .parquet; "-" is CSV on stdout), atomically."""
    if path == "-":
        df.to_csv(sys.stdout, index=False)
        return
    fmt = _table_format(path, "-o")
    with atomic_output(path) as tmp:
        if fmt == "parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False, sep="\t" if fmt == "tsv" else ",")


def human_bytes(n):
    """``1536`` -> ``"1.5 KiB"``: binary units, as ``du -h`` and the cache's ``max_bytes`` read them."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024:
            break
        n /= 1024
    else:
        unit = "PiB"
    return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
