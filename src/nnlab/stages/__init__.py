"""The handout's stages as experiments: each module has ``Config``, ``TITLE`` and ``run(config, out_dir)``.

``STAGES`` maps the command-line id (``nnlab run ID``) to its module, in run order.
"""

from nnlab.stages import ablation, accuracy, cnn, stage1, stage2, stage3, stage4, stage5, stage6, stage7
from nnlab.stages.common import Result

STAGES = {
    "1": stage1,
    "2": stage2,
    "3": stage3,
    "4": stage4,
    "5": stage5,
    "accuracy": accuracy,
    "cnn": cnn,
    "6": stage6,
    "7": stage7,
    "ablation": ablation,
}

__all__ = ["STAGES", "Result"]
