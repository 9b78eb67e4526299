from ._model import HPVADE
from ._module import HPVADEModule
from ._simulate import PseudobulkSimulator
from ._trainingplan import HPVADETrainingPlan, NonFiniteLossError

__all__ = [
    "HPVADE",
    "HPVADEModule",
    "HPVADETrainingPlan",
    "NonFiniteLossError",
    "PseudobulkSimulator",
]
