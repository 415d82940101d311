"""Write one benchmark's section into BENCHMARKS.md, leaving the other sections alone."""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS_MD = os.path.join(ROOT, "BENCHMARKS.md")
HEADER = "# Benchmarks\n\nEvery figure below was measured side by side in one run of the command shown with it.\n"


def command_line():
    """The command that ran this benchmark, as a user would type it."""
    return " ".join(["python", os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])


def write_section(name, markdown, path=BENCHMARKS_MD):
    """Replace (or append) the section ``name`` of BENCHMARKS.md with ``markdown``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{markdown.strip()}\n{end}\n"
    text = open(path).read() if os.path.exists(path) else HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end) + r"\n?", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
    with open(path, "w") as fh:
        fh.write(text)
