"""How the ``skmm`` command fails: one line on stderr and an exit status."""

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_UNEXPECTED", "CommandError", "one_line"]

#: Bad arguments, bad input data, or an error skmm or scikit-learn raised on purpose.
EXIT_ERROR = 2
#: An exception nobody meant to raise (a bug, or something the command does not know).
EXIT_UNEXPECTED = 1
#: Ctrl-C, as shells report it (128 + SIGINT).
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """A problem with what the user asked for; printed as ``skmm: error: <message>``, exit status 2."""


def one_line(exc):
    """The message of ``exc`` on one line (multi-line messages joined, an empty one named by its type)."""
    text = str(exc)
    if isinstance(exc, KeyError) and len(exc.args) == 1 and text == repr(exc.args[0]):
        text = f"missing key {text}"  # KeyError's str() is the repr of its key alone
    text = " ".join(text.split())
    return text or type(exc).__name__
