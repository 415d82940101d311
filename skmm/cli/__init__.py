"""The ``skmm`` command: the whole loop, from a table of image paths and texts to a report.

::

    skmm fit DATA.csv --target label -o model.joblib      # train, save (joblib)
    skmm predict model.joblib DATA.csv -o predictions.csv [--proba]
    skmm evaluate model.joblib DATA.csv --target label -o report/
    skmm encode DATA.csv --image-backbone pixels -o features.csv
    skmm demo                                              # a minute on a laptop
    skmm list                                              # backbones and fusions
    skmm make-shapes --out DIR                             # a small data set to try
    skmm cache info|prune|clear DIR                        # a disk feature cache

Also ``python -m skmm.cli``.  Errors are one line on stderr (``--debug`` for the
traceback) with exit status 2; outputs are written to a temporary file beside
the target and renamed when complete.  docs/cli.md is the guide.

The modules: :mod:`~skmm.cli.main` (parser, exit statuses),
:mod:`~skmm.cli.model` (fit, predict, evaluate), :mod:`~skmm.cli.encode`,
:mod:`~skmm.cli.cache`, :mod:`~skmm.cli.data` (list, make-shapes, demo),
:mod:`~skmm.cli.files` (tables, atomic outputs, image paths) and
:mod:`~skmm.cli.params` (``--param key=value``).
"""

from .main import main

__all__ = ["main"]
