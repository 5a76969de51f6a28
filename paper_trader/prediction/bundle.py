"""A loaded model version, compiled for fast live inference.

The library objects are turned into flat numpy arrays (``compiled.py``) once, when the version
is published, and kept in its ``compiled.npz`` (``model_file.py``); each member's calibrated
probabilities are then a few vectorised operations per batch, which is what keeps one
prediction far below a millisecond. The library objects are not kept, and the daemon does not
import the libraries to load a version.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from paper_trader.errors import ModelError
from paper_trader.prediction.compiled import (
    MODEL_NAMES,
    CompiledLinear,
    CompiledTrees,
    log_probabilities,
)

if TYPE_CHECKING:
    import xgboost as xgb

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """One model of the ensemble with its calibrator."""

    name: str
    model: CompiledTrees | CompiledLinear
    calibrator: CompiledLinear

    def predict_proba(self, x: FloatArray) -> FloatArray:
        """Return calibrated probabilities (n, 3) for the inputs (n, features)."""
        return self.calibrator.predict_proba(log_probabilities(self.model.predict_proba(x)))


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelBundle:
    """A verified model version: its members, its metadata, and what it was trained on."""

    version: str
    metadata: Mapping[str, Any]
    members: Mapping[str, Member]

    @property
    def spec_hash(self) -> str:
        """Return the feature-spec hash the models were trained on."""
        return str(self.metadata["spec_hash"])

    @property
    def horizon(self) -> int:
        """Return the label horizon in candles."""
        return int(self.metadata["label"]["horizon"])

    @classmethod
    def compile(
        cls,
        *,
        version: str,
        metadata: Mapping[str, Any],
        booster: "xgb.Booster",
        estimators: Mapping[str, Any],
        calibrators: Mapping[str, Any],
    ) -> "ModelBundle":
        """Compile the loaded library objects; raise ``ModelError`` if they do not fit."""
        try:
            models: dict[str, CompiledTrees | CompiledLinear] = {
                "xgboost": CompiledTrees.from_xgboost(booster),
                "forest": CompiledTrees.from_sklearn_forest(estimators["forest"]),
                "logistic": CompiledLinear.from_pipeline(estimators["logistic"]),
            }
            members = {
                name: Member(
                    name=name,
                    model=models[name],
                    calibrator=CompiledLinear.from_logistic(calibrators[name]),
                )
                for name in MODEL_NAMES
            }
        except (KeyError, ValueError) as exc:
            raise ModelError(f"model {version}: its files do not form a model ({exc})") from exc
        return cls.from_members(version=version, metadata=metadata, members=members)

    @classmethod
    def from_members(
        cls, *, version: str, metadata: Mapping[str, Any], members: Mapping[str, Member]
    ) -> "ModelBundle":
        """Return the bundle; raise ``ModelError`` unless every member takes the metadata's
        inputs and gives three classes."""
        width = len(metadata["feature_names"])
        if set(members) != set(MODEL_NAMES):
            raise ModelError(f"model {version}: members {sorted(members)}, not {MODEL_NAMES}")
        for member in members.values():
            if member.model.n_features != width or member.model.n_classes != 3:
                raise ModelError(
                    f"model {version}: {member.name} takes {member.model.n_features} inputs "
                    f"and {member.model.n_classes} classes, metadata lists {width} and 3"
                )
            if member.calibrator.n_features != 3 or member.calibrator.n_classes != 3:
                raise ModelError(f"model {version}: {member.name}'s calibrator is not 3 to 3")
        return cls(version=version, metadata=metadata, members=members)

    def predict(self, x: FloatArray) -> dict[str, FloatArray]:
        """Return each member's calibrated probabilities for a batch of input rows."""
        return {name: member.predict_proba(x) for name, member in self.members.items()}
