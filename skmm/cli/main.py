"""The ``skmm`` parser and the one place where errors become exit statuses."""

import argparse
import os
import sys
import traceback
import warnings

from . import cache, data, encode, model
from .errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_UNEXPECTED, CommandError, one_line

__all__ = ["build_parser", "main"]

# Errors skmm, scikit-learn, pandas and the OS raise on purpose for bad input:
# reported in one line with exit status 2, like a bad argument.
EXPECTED_ERRORS = (ValueError, TypeError, OSError, ImportError)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``skmm: error: ...``) like every other error."""

    def error(self, message):
        raise CommandError(f"{message} (see '{self.prog} --help')")


def build_parser():
    """The ``skmm`` argument parser, with one subcommand per command module."""
    from .. import __version__

    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand's --debug sets it, its absence does not undo the main parser's.
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks")
    parser = _Parser(
        prog="skmm",
        description="skmm: learn from images and text together, the scikit-learn way.",
        epilog="Run 'skmm COMMAND --help' for a command's options; docs/cli.md has examples.",
    )
    parser.add_argument("--version", action="version", version=f"skmm {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for module in (model, encode, data, cache):
        module.register(sub, [common])
    return parser


def _error(message):
    print(f"skmm: error: {message}", file=sys.stderr)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"skmm: warning: {one_line(message)}", file=sys.stderr if file is None else file)


def main(argv=None):
    """Run the ``skmm`` command with ``argv`` (default ``sys.argv[1:]``); return its exit status.

    Exit status 0 on success; 2 with a one-line ``skmm: error: ...`` on stderr for
    bad arguments, bad input and the errors skmm raises on purpose (ValueError,
    TypeError, OSError, ImportError); 1 for anything unexpected; 130 on Ctrl-C.
    ``--debug`` adds the traceback.

    Examples
    --------
    >>> from skmm.cli import main
    >>> main(["list"])  # doctest: +ELLIPSIS
    image backbones: ...
    0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except CommandError as exc:
        _error(exc)
        return EXIT_ERROR
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    debug = args.debug
    with warnings.catch_warnings():
        if not debug:
            warnings.showwarning = _show_warning
        try:
            return args.func(args) or 0
        except CommandError as exc:
            if debug:
                traceback.print_exc()
            _error(exc)
            return EXIT_ERROR
        except KeyboardInterrupt:
            _error("interrupted")
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            # stdout closed early (skmm predict ... -o - | head): not an error, but nothing more to say
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError):
                pass
            return EXIT_UNEXPECTED
        except EXPECTED_ERRORS as exc:
            if debug:
                traceback.print_exc()
            _error(one_line(exc))
            return EXIT_ERROR
        except Exception as exc:
            if debug:
                traceback.print_exc()
                _error(f"unexpected {type(exc).__name__}: {one_line(exc)}")
            else:
                _error(f"unexpected {type(exc).__name__}: {one_line(exc)} (run again with --debug for the traceback)")
            return EXIT_UNEXPECTED
