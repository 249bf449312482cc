"""How one student file imports another (worker side): only from the folder being graded.

A student file uses another with ``import autoregressive`` (the worker, like the course library, puts the
graded folder first on ``sys.path``).  ``from submission.autoregressive import ...`` would find the
``submission/`` folder beside ``grader.py`` instead, which is not the folder being graded (``--submission
COPY``, a grade of another copy): a broken ``autoregressive.py`` in the graded copy could score through the other
file.  ``GradedFolderAlias`` makes ``submission`` stand for the graded folder: ``submission.<name>`` is the
very module ``<name>`` of that folder (the same object, so the stand-ins of hung functions apply to both).
The same holds on Gradescope, where the student's files are copied into ``source/submission/``.
"""
import importlib
import importlib.abc
import importlib.machinery
import sys
import types

PACKAGE = "submission"


class GradedFolderAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """A finder first on ``sys.meta_path``: ``submission`` and ``submission.<name>`` come from the graded
    folder's top-level modules, and from nowhere else."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == PACKAGE or fullname.startswith(PACKAGE + "."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=fullname == PACKAGE)
        return None

    def create_module(self, spec):
        if spec.name == PACKAGE:
            package = types.ModuleType(PACKAGE, "The folder being graded: submission.<name> is its <name>.py.")
            package.__path__ = []  # submodules come only through this finder
            return package
        name = spec.name[len(PACKAGE) + 1:]
        if "." in name:
            raise ModuleNotFoundError(f"No module named {spec.name!r} (write `import {name.split('.')[0]}`)",
                                      name=spec.name)
        return importlib.import_module(name)  # raises ModuleNotFoundError for a file the folder lacks

    def exec_module(self, module):
        pass  # the module is already imported (create_module returned it)


def install():
    """Put the alias first on ``sys.meta_path`` (once), before any student code runs."""
    if not any(isinstance(finder, GradedFolderAlias) for finder in sys.meta_path):
        sys.meta_path.insert(0, GradedFolderAlias())
