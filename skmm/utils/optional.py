"""Optional libraries: imported where they are used, with an error naming the pip extra."""

import importlib

__all__ = ["import_optional"]


def import_optional(module_name, extra, *, what="this skmm feature"):
    """Import ``module_name`` or raise an ImportError naming the skmm extra that installs it.

    Examples
    --------
    >>> from skmm.utils.optional import import_optional
    >>> import_optional("math", "none").sqrt(4.0)
    2.0
    """
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        top = module_name.partition(".")[0]
        raise ImportError(f'{what} requires {top}: pip install "skmm[{extra}]" ({exc})') from exc
