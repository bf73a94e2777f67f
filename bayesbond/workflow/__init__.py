"""Workflow: fits to answers (expected returns, comparison, checks, reports, plots).

Public names are loaded lazily (PEP 562), so importing a workflow module imports only what it
needs.
"""

from importlib import import_module

# public name -> module that defines it
_EXPORTS = {
    "ppc": "bayesbond.workflow.predictive_checks",
    "PPCResult": "bayesbond.workflow.predictive_checks",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bayesbond.workflow' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *__all__})
