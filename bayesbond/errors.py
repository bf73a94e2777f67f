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


class IdentificationWarning(UserWarning):
    """A model the data barely identify (e.g. a rating bucket with one bond), found before
    sampling: the message names the group or bond and the fix."""
