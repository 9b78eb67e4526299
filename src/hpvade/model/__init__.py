from ._model import HPVADE
from ._module import HPVADEModule
from ._refine import adapt_signature, calibrate_platform, refine_proportions, robust_fit
from ._simulate import PseudobulkSimulator
from ._trainingplan import HPVADETrainingPlan, NonFiniteLossError

__all__ = [
    "HPVADE",
    "HPVADEModule",
    "HPVADETrainingPlan",
    "NonFiniteLossError",
    "PseudobulkSimulator",
    "adapt_signature",
    "calibrate_platform",
    "refine_proportions",
    "robust_fit",
]
