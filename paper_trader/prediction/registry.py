"""Versioned model artifacts under ``MODELS_DIR``.

Layout::

    MODELS_DIR/current                 the live version's name (replaced atomically)
    MODELS_DIR/<version>/metadata.json spec hash and feature names, label rule, interval,
                                       training range, metrics, library versions, file hashes
    MODELS_DIR/<version>/xgboost.ubj   XGBoost's own format
    MODELS_DIR/<version>/*.skops       scikit-learn models, in skops' format (no pickle)
    MODELS_DIR/<version>/predictions.npz  the walk-forward out-of-sample predictions
    MODELS_DIR/<version>/compiled.npz  the three models compiled to arrays: what is loaded

A version is written into a hidden staging directory, synced, and renamed into place; only then
does ``current`` point to it. Loading checks every file's SHA-256 against ``metadata.json``,
the feature-spec hash, the feature names and the interval before anything is deserialised;
skops may only build the types listed in ``TRUSTED_TYPES``. Each refusal is a ``ModelError``
that says what is wrong and what to do. A version with ``compiled.npz`` loads from it alone,
with numpy (``model_file.py``); one published before it is compiled from the libraries' files.
"""

import hashlib
import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from paper_trader.domain import Interval
from paper_trader.errors import ModelError
from paper_trader.features.atomic import atomic_text, current_umask
from paper_trader.features.spec import FeatureSpec
from paper_trader.prediction import model_file
from paper_trader.prediction.bundle import ModelBundle
from paper_trader.prediction.compiled import MODEL_NAMES
from paper_trader.runtime.versions import package_versions

if TYPE_CHECKING:
    import xgboost as xgb

FORMAT = 1
POINTER = "current"
XGBOOST_FILE = "xgboost.ubj"
PREDICTIONS_FILE = "predictions.npz"
TRUSTED_TYPES = frozenset({"sklearn.tree._tree.Tree"})
LIBRARIES = ("numpy", "scikit-learn", "xgboost-cpu", "skops", "pandas")


def sha256(path: Path) -> str:
    """Return the hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class Artifacts:
    """What a trained version consists of, before it is written."""

    estimators: dict[str, Any]  # model name -> fitted estimator
    calibrators: dict[str, Any]  # model name -> fitted calibrator
    predictions: dict[str, np.ndarray[Any, Any]]
    metadata: dict[str, Any]  # everything but the version, time, libraries and file hashes


class ModelRegistry:
    """Publish, list, prune and load the versions in one directory."""

    def __init__(self, root: Path, *, keep: int = 5) -> None:
        self.root = root
        self.keep = max(1, keep)

    def current_version(self) -> str | None:
        """Return the version ``current`` names, or None if there is no pointer yet."""
        try:
            name = (self.root / POINTER).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ModelError(f"cannot read {self.root / POINTER}: {exc}") from exc
        return name or None

    def versions(self) -> list[str]:
        """Return the published versions, oldest first."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "metadata.json").is_file())

    def require_root(self) -> None:
        """Raise ``ModelError`` unless ``MODELS_DIR`` is an existing, writable directory."""
        if not self.root.is_dir():
            raise ModelError(f"MODELS_DIR {self.root} does not exist or is not a directory")
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise ModelError(f"MODELS_DIR {self.root} is not writable")

    def publish(self, artifacts: Artifacts, *, make_current: bool = True) -> str:
        """Write a new version atomically, point ``current`` at it, prune; return its name."""
        self.require_root()
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        try:
            staging.chmod(0o777 & ~current_umask())  # mkdtemp's is private; mkdir's is not
            files = _write_files(staging, artifacts)
            created = datetime.now(UTC)
            version = f"{created:%Y%m%dT%H%M%S%fZ}-{_short_digest(files)}"
            document = {
                "format": FORMAT,
                "version": version,
                "created_at": created.isoformat(timespec="seconds"),
                **artifacts.metadata,
                "libraries": package_versions(LIBRARIES),
                "files": files,
            }
            with atomic_text(staging / "metadata.json") as out:
                json.dump(document, out, indent=2, sort_keys=True)
            _sync_tree(staging)
            staging.rename(self.root / version)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if make_current:
            self.set_current(version)
        self.prune()
        return version

    def set_current(self, version: str) -> None:
        """Point ``current`` at a published version, atomically."""
        if not (self.root / version / "metadata.json").is_file():
            raise ModelError(f"no published model version {version!r} in {self.root}")
        with atomic_text(self.root / POINTER) as out:
            out.write(version + "\n")

    def prune(self) -> list[str]:
        """Delete all but the newest ``keep`` versions, never the current one; return them."""
        current = self.current_version()
        old = [v for v in self.versions()[: -self.keep] if v != current]
        for version in old:
            shutil.rmtree(self.root / version, ignore_errors=True)
        return old

    def metadata(self, version: str) -> dict[str, Any]:
        """Return a version's parsed ``metadata.json``; raise ``ModelError`` if unreadable."""
        path = self.root / version / "metadata.json"
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ModelError(f"model {version}: {path} is missing") from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"model {version}: {path} is not readable JSON ({exc})") from exc
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ModelError(f"model {version}: {path} is not a format-{FORMAT} model record")
        return document

    def load(
        self, spec: FeatureSpec, interval: Interval, version: str | None = None
    ) -> ModelBundle:
        """Verify and load a version (default: the current one) for the running spec.

        Raises ``ModelError`` when there is no model, a file is missing, damaged or altered,
        or the model was trained on another feature spec, feature list or interval.
        """
        version = version or self.current_version()
        if version is None:
            raise ModelError(f"no trained model in {self.root}: run `train` first")
        document = self.metadata(version)
        check_fits(document, spec, interval, version)
        folder = self.root / version
        _verify_files(folder, document, version)
        if model_file.COMPILED_FILE in document["files"]:
            members = model_file.read(folder / model_file.COMPILED_FILE, version)
            return ModelBundle.from_members(version=version, metadata=document, members=members)
        return ModelBundle.compile(
            version=version,
            metadata=document,
            booster=_load_booster(folder / XGBOOST_FILE, version),
            estimators={
                n: _load_skops(folder / f"{n}.skops", version)
                for n in MODEL_NAMES
                if n != "xgboost"
            },
            calibrators=_load_skops(folder / "calibrators.skops", version),
        )


def check_fits(
    document: dict[str, Any], spec: FeatureSpec, interval: Interval, version: str
) -> None:
    """Raise ``ModelError`` unless the model was trained on this spec, inputs and interval."""
    theirs = document.get("spec_hash")
    if theirs != spec.version_hash:
        raise ModelError(
            f"model {version} was trained on feature spec {theirs}, but the running spec is "
            f"{spec.version_hash}: train a new model (`train`); a model is never padded or "
            "truncated to fit"
        )
    if tuple(document.get("feature_names", ())) != spec.model_inputs:
        raise ModelError(f"model {version}: its feature names differ from the running spec's")
    if document.get("interval") != interval.value:
        raise ModelError(
            f"model {version} was trained on {document.get('interval')} candles, but INTERVAL "
            f"is {interval.value}: train a model for {interval.value}"
        )


def _write_files(folder: Path, artifacts: Artifacts) -> dict[str, str]:
    """Write every artifact file into ``folder``; return name -> SHA-256."""
    import skops.io as sio  # noqa: PLC0415 -- only training writes the libraries' files

    booster = artifacts.estimators["xgboost"].get_booster()
    booster.save_model(str(folder / XGBOOST_FILE))
    compiled = ModelBundle.compile(
        version="(being published)",
        metadata=artifacts.metadata,
        booster=booster,
        estimators=artifacts.estimators,
        calibrators=artifacts.calibrators,
    )
    model_file.write(folder / model_file.COMPILED_FILE, compiled.members)
    for name, estimator in artifacts.estimators.items():
        if name != "xgboost":
            sio.dump(estimator, folder / f"{name}.skops")
    sio.dump(dict(artifacts.calibrators), folder / "calibrators.skops")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, allow_pickle=False, **artifacts.predictions)
    (folder / PREDICTIONS_FILE).write_bytes(buffer.getvalue())
    return {p.name: sha256(p) for p in sorted(folder.iterdir()) if p.is_file()}


def _short_digest(files: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:8]


def _sync_tree(folder: Path) -> None:
    """fsync every file and the directory itself, so the rename publishes complete files."""
    for path in folder.iterdir():
        with path.open("rb") as handle:
            os.fsync(handle.fileno())
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _verify_files(folder: Path, document: dict[str, Any], version: str) -> None:
    files = document.get("files")
    if not isinstance(files, dict) or not files:
        raise ModelError(f"model {version}: metadata.json lists no files")
    for name, recorded in sorted(files.items()):
        path = folder / name
        if not path.is_file():
            raise ModelError(f"model {version}: {name} is missing")
        actual = sha256(path)
        if actual != recorded:
            raise ModelError(
                f"model {version}: {name} has SHA-256 {actual[:12]}…, metadata.json records "
                f"{str(recorded)[:12]}…: the file was damaged or altered; retrain or restore it"
            )


def _load_booster(path: Path, version: str) -> "xgb.Booster":
    import xgboost as xgb  # noqa: PLC0415 -- a version without compiled.npz

    try:
        return xgb.Booster(model_file=str(path))
    except xgb.core.XGBoostError as exc:
        raise ModelError(f"model {version}: {path.name} is not a valid XGBoost model") from exc


def _load_skops(path: Path, version: str) -> Any:
    import skops.io as sio  # noqa: PLC0415 -- a version without compiled.npz

    try:
        untrusted = set(sio.get_untrusted_types(file=path))
    except Exception as exc:  # skops raises many kinds of error on a damaged file
        raise ModelError(f"model {version}: {path.name} cannot be read ({exc})") from exc
    if not untrusted <= TRUSTED_TYPES:
        raise ModelError(
            f"model {version}: {path.name} contains types that are not trusted: "
            f"{', '.join(sorted(untrusted - TRUSTED_TYPES))}"
        )
    try:
        return sio.load(path, trusted=sorted(untrusted))
    except Exception as exc:  # as above
        raise ModelError(f"model {version}: {path.name} cannot be loaded ({exc})") from exc
