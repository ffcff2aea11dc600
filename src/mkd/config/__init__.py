"""The recipe: one typed, strict description of a whole run (unknown keys are errors).

schema.py declares it (pydantic models), loading.py reads YAML and `--set` overrides into it,
typed_values.py types the `--set` values. Nothing in a recipe executes code (`yaml.safe_load`).
"""

from mkd.config.loading import DEFAULT_RECIPE, load_recipe, packaged_recipes
from mkd.config.schema import (
    DEFAULT_BASELINES,
    AugmentConfig,
    BaselineConfig,
    BenchConfig,
    DistillConfig,
    FinetuneConfig,
    Recipe,
    StudentConfig,
    TaskConfig,
    TeacherConfig,
    TeacherSpec,
    TrainConfig,
    TransferConfig,
    UnlabelledFile,
)
from mkd.config.typed_values import parse_overrides

__all__ = ["DEFAULT_BASELINES", "DEFAULT_RECIPE", "AugmentConfig", "BaselineConfig", "BenchConfig",
           "DistillConfig", "FinetuneConfig", "Recipe",
           "StudentConfig", "TaskConfig", "TeacherConfig", "TeacherSpec", "TrainConfig", "TransferConfig",
           "UnlabelledFile", "load_recipe", "packaged_recipes", "parse_overrides"]
