"""Mass balance: WGMS readers (:mod:`~xfacies.massbalance.wgms`) and the regression of
facies products on measured balances (:mod:`~xfacies.massbalance.regression`)."""

from xfacies.massbalance import wgms
from xfacies.massbalance.regression import CrossValidation, Fit, RegressionResult, regress, tidy_pairs

__all__ = ["Fit", "CrossValidation", "RegressionResult", "regress", "tidy_pairs", "wgms"]
