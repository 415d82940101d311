"""``skmm cache info|prune|clear``: look after a disk feature cache (see docs/cache.md)."""

import json
import os
import sys

from .errors import CommandError
from .files import human_bytes

__all__ = ["clear", "info", "prune", "register"]


def register(sub, parents):
    """Add the cache parser and its info, prune and clear subcommands to ``sub``."""
    p = sub.add_parser(
        "cache",
        parents=parents,
        help="show, prune or clear a disk feature cache",
        description="Look after a directory given to encoders as cache_dir=.",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    a = actions.add_parser("info", parents=parents, help="entries and size, per fingerprint")
    a.add_argument("directory", metavar="DIR")
    a.add_argument("--json", action="store_true", help="print the full info as JSON")
    a.set_defaults(func=info)

    a = actions.add_parser("prune", parents=parents, help="delete least recently used entries down to a size")
    a.add_argument("directory", metavar="DIR")
    a.add_argument(
        "--max-bytes",
        metavar="SIZE",
        help="the size to prune to: bytes or 500M, 1G, 2GiB (default: SKMM_CACHE_MAX_BYTES, else 10 GiB)",
    )
    a.set_defaults(func=prune)

    a = actions.add_parser("clear", parents=parents, help="delete every entry (or one fingerprint's)")
    a.add_argument("directory", metavar="DIR")
    a.add_argument("--fingerprint", metavar="FP", help="delete only this fingerprint's entries (as 'info' names it)")
    a.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    a.set_defaults(func=clear)


def _open(directory):
    from ..cache import get_cache

    if not os.path.exists(directory):
        raise CommandError(f"cache directory {directory!r} does not exist")
    if not os.path.isdir(directory):
        raise CommandError(f"{directory!r} is not a directory")
    return get_cache(directory)


def _shorten(text, width=72):
    text = str(text)
    return text if len(text) <= width else text[: width - 3] + "..."


def info(args):
    """``skmm cache info``: a summary line and one line per fingerprint (or everything as JSON)."""
    summary = _open(args.directory).info()
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    signed = "signed entries (SKMM_CACHE_KEY set)" if summary["keyed"] else "unsigned entries"
    print(
        f"{summary['directory']}: {summary['entries']} entries, {human_bytes(summary['bytes'])} "
        f"(limit {human_bytes(summary['max_bytes'])}), {signed}; {human_bytes(summary['file_bytes'])} on disk"
    )
    if summary["old_layout_dirs"]:
        print(
            f"{summary['old_layout_dirs']} subdirectories of an older skmm's cache (one file per entry) are ignored; "
            "'skmm cache clear' deletes them"
        )
    if summary["fingerprints"]:
        print(f"{'entries':>8}  {'size':>10}  {'dtype':<8}  fingerprint")
        for fp in summary["fingerprints"]:
            name = fp["fingerprint"] if fp["fingerprint"] is not None else f"(unknown; directory {fp['name']})"
            print(f"{fp['entries']:>8}  {human_bytes(fp['bytes']):>10}  {fp['dtype'] or '?':<8}  {_shorten(name)}")
    return 0


def prune(args):
    """``skmm cache prune``: least recently used entries deleted until the rest fit in --max-bytes."""
    cache = _open(args.directory)
    try:
        result = cache.prune(max_bytes=args.max_bytes)
    except (ValueError, TypeError) as exc:
        raise CommandError(f"--max-bytes {args.max_bytes!r}: {exc}") from None
    print(
        f"{cache.directory}: removed {result['removed_entries']} entries ({human_bytes(result['removed_bytes'])}); "
        f"{result['entries']} entries ({human_bytes(result['bytes'])}) left"
    )
    return 0


def _fingerprint(summary, wanted):
    """The fingerprint ``wanted`` names: itself, or the storage name 'info' shows for it."""
    for fp in summary["fingerprints"]:
        if wanted in (fp["fingerprint"], fp["name"]):
            if fp["fingerprint"] is None:
                raise CommandError(f"the fingerprint of {fp['name']!r} is unknown; clear the whole cache instead")
            return fp["fingerprint"]
    raise CommandError(f"no entries for fingerprint {wanted!r} in {summary['directory']!r} (see 'skmm cache info')")


def clear(args):
    """``skmm cache clear``: delete the cache's entries, after a confirmation or with --yes."""
    cache = _open(args.directory)
    before = cache.info()
    fingerprint = None
    entries, size = before["entries"], before["bytes"]
    if args.fingerprint is not None:
        fingerprint = _fingerprint(before, args.fingerprint)
        chosen = [fp for fp in before["fingerprints"] if fp["fingerprint"] == fingerprint]
        entries, size = sum(fp["entries"] for fp in chosen), sum(fp["bytes"] for fp in chosen)
    if not args.yes:
        if not sys.stdin.isatty():
            raise CommandError("cache clear deletes entries; confirm with --yes (no terminal to ask on)")
        answer = input(f"delete {entries} entries ({human_bytes(size)}) in {cache.directory}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 0
    cache.clear(fingerprint)
    print(f"{cache.directory}: removed {entries} entries ({human_bytes(size)})")
    return 0
