"""The examples in the docstrings run and print what they show (those marked +SKIP need data,
a model or a cluster and are covered by the other tests)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import xfacies

MODULES = sorted(m.name for m in pkgutil.walk_packages(xfacies.__path__, "xfacies."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    import warnings

    from xfacies.errors import MovedWarning

    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MovedWarning)  # the alias of a moved module warns on import
        mod = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(mod, name, globs=dict(vars(mod))):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (see above)"


def test_modules_are_found():
    assert {"xfacies.inference", "xfacies.halo", "xfacies.products"} <= set(MODULES)
