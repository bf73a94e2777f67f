"""Exceptions and warnings raised by bayesbond."""


class BayesBondError(Exception):
    """Base class of every bayesbond error."""


class DataError(BayesBondError, ValueError):
    """Bad input data: the message names the offending column, bond, date or row."""


class SpecError(BayesBondError, ValueError):
    """A model specification that cannot be used: the message names the key."""


class ModelError(BayesBondError, ValueError):
    """Parameters that do not define a valid model (e.g. an unstable A where one is needed)."""


class ConvergenceWarning(UserWarning):
    """MCMC diagnostics (R-hat, ESS, divergences) outside their thresholds."""


class CrossSectionalDependenceWarning(UserWarning):
    """Residuals that share shocks across bonds while the model treats them as independent
    (e.g. a FactorModel without date effects): bucket-level intervals are too narrow."""


class IdentificationWarning(UserWarning):
    """A model the data barely identify (e.g. a rating bucket with one bond), found before
    sampling: the message names the group or bond and the fix."""


def _label(item) -> str:
    if type(item).__name__ == "datetime64":  # numpy's, without importing numpy here
        item = item.astype("datetime64[us]").item()
    if hasattr(item, "isoformat") and hasattr(item, "hour"):  # datetime, pandas.Timestamp
        text = item.isoformat()
        return text[:10] if text[10:] == "T00:00:00" else text
    return str(item)


def listing(items, n: int = 10, sep: str = ", ") -> str:
    """The first ``n`` items joined by ``sep``, then how many there are in all (for messages).

    Parameters
    ----------
    items : iterable
        Anything; timestamps at midnight are written ``YYYY-MM-DD``, other items with ``str``.
    n : int
        Items shown.
    sep : str
        Separator.

    Returns
    -------
    str
        E.g. ``"a, b, c"``, or ``"a, b, ... (25 in all)"`` when there are more than ``n``.
    """
    items = [_label(i) for i in items]
    return sep.join(items[:n]) + (f"{sep}... ({len(items)} in all)" if len(items) > n else "")
