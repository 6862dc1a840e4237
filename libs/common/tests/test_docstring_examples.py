"""The examples in shop_common's docstrings run, so they cannot drift from the code.

Each module's doctests run here (no network: an example that needs PostgreSQL or RabbitMQ
is marked `# doctest: +SKIP`, and says so in its prose).
"""

from __future__ import annotations

import doctest
import importlib
import io
import pkgutil

import pytest

import shop_common

MODULES = sorted(m.name for m in pkgutil.walk_packages(shop_common.__path__, "shop_common."))
_FINDER = doctest.DocTestFinder(exclude_empty=True)
EXAMPLES = {
    test.name: test
    for name in MODULES
    for test in _FINDER.find(importlib.import_module(name), name)
    if test.examples
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_docstring_example(name: str) -> None:
    test = EXAMPLES[name]
    test.globs = dict(test.globs)  # each run starts from the module's own namespace
    output = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    try:
        result = runner.run(test, out=output.write, clear_globs=True)
    finally:
        test.globs = {}
    assert result.failed == 0, output.getvalue()


def test_the_packages_that_show_their_use_keep_their_examples() -> None:
    modules = {test.name.partition(".__")[0] for test in EXAMPLES.values()}
    assert {
        "shop_common.http",
        "shop_common.messaging",
        "shop_common.state",
        "shop_common.worker",
    } <= modules
