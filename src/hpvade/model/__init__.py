from ._model import HPVADE
from ._module import HPVADEModule
from ._refine import calibrate_platform, refine_proportions
from ._simulate import PseudobulkSimulator
from ._trainingplan import HPVADETrainingPlan, NonFiniteLossError

__all__ = [
    "HPVADE",
    "HPVADEModule",
    "HPVADETrainingPlan",
    "NonFiniteLossError",
    "PseudobulkSimulator",
    "calibrate_platform",
    "refine_proportions",
]
