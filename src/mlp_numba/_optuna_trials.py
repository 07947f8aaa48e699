"""What a sweep keeps of its trials in the study's storage (:mod:`mlp_numba.sweep`): the model
of each complete trial (an Optuna artifact, so the best model survives a resume and comes back
from other workers), and one finished trial per grid point."""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path


class DuplicateGridPoint(Exception):
    """Another trial of the study holds this trial's grid point: this one ends FAIL."""


def claim_grid_point(optuna, trial, wait, heartbeats, sleep=time.sleep):
    """Return when ``trial`` may train its grid point; raise :class:`DuplicateGridPoint` when
    another trial has it.

    Optuna's grid sampler gives each grid point to one trial, except when workers draw at once or
    a trial was killed (its point runs again): then two trials can hold one point. Every trial has
    written its point before it reads the others', so of two at once at least one sees the
    other. A trial that sees a finished holder is the duplicate. One that sees a running holder
    with a lower number waits ``wait`` seconds (a killed holder goes stale and fails meanwhile)
    and then is the duplicate if the holder still runs; one that sees only higher-numbered
    holders waits until they finish (it is then the duplicate) or fail (it trains). With
    ``heartbeats`` (a database storage) each wait ends by failing the study's stale trials.

    The point is the grid sampler's system attribute ``grid_id`` (as in Optuna 5.1's source).
    """
    states = optuna.trial.TrialState
    running, holding = states.RUNNING, (states.RUNNING, states.COMPLETE, states.PRUNED)
    mine, waited_on_lower = None, False
    while True:
        trials = trial.study.get_trials(deepcopy=False)
        if mine is None:
            mine = next(t.system_attrs.get("grid_id") for t in trials if t.number == trial.number)
            if mine is None:
                return
        holders = [t for t in trials if t.number != trial.number and t.state in holding
                   and t.system_attrs.get("grid_id") == mine]  # fmt: skip
        done = [t.number for t in holders if t.state != running]
        lower = [t.number for t in holders if t.number < trial.number]
        if done or (waited_on_lower and lower):
            trial.set_user_attr("duplicate_of", (done or lower)[0])
            raise DuplicateGridPoint(
                f"trial {trial.number}: grid point {mine} is trial {(done or lower)[0]}'s"
            )
        if not holders:
            return
        waited_on_lower = bool(lower)
        sleep(wait)
        if heartbeats:
            fail_stale_trials(optuna, trial.study)


def fail_stale_trials(optuna, study):
    """Mark failed the study's running trials whose heartbeat stopped (their process died)."""
    with warnings.catch_warnings():  # "experimental" in Optuna 4 and 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


class ModelKeeper:
    """Keeps trained nets: in an Optuna artifact store when there is one (``folder``), else
    the best of this process in memory.

    Parameters
    ----------
    folder : str or os.PathLike or None
        A :class:`optuna.artifacts.FileSystemArtifactStore`'s folder (created if needed).
    metadata : dict
        Written into each kept model file under ``"search"``, with the trial's number and params.
    """

    def __init__(self, optuna, folder, metadata):
        self._optuna = optuna
        self._store = None
        if folder is not None:
            Path(folder).mkdir(parents=True, exist_ok=True)
            self._store = optuna.artifacts.FileSystemArtifactStore(folder)
        self._metadata = metadata
        self._memory = {}

    def keep(self, trial, val_acc, net):
        """Keep ``net``, the model of ``trial`` (complete with ``val_acc``): in the store, each
        complete trial's (Optuna's best trial is one of them); in memory, the best one's."""
        if self._store is None:
            if not self._memory or val_acc > self._memory["val_acc"]:
                self._memory.update(number=trial.number, val_acc=val_acc, net=net)
            return
        meta = {**self._metadata, "trial": trial.number, "params": trial.params}
        with tempfile.TemporaryDirectory() as tmp:
            path = net.save(Path(tmp) / f"trial-{trial.number}.npz", metadata={"search": meta})
            artifact = self._optuna.artifacts.upload_artifact(
                artifact_store=self._store, file_path=str(path), study_or_trial=trial
            )
        trial.set_user_attr("model", artifact)

    def best(self, study):
        """The net of the study's best trial and that trial's number, or (None, None) when no
        trial finished or its model was not kept."""
        from .model_file import load_model

        try:
            best = study.best_trial
        except ValueError:  # no complete trial
            return None, None
        if self._memory.get("number") == best.number:
            return self._memory["net"], best.number
        artifact = best.user_attrs.get("model")
        if self._store is None or artifact is None:
            return None, None
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "best.npz"
            try:
                self._optuna.artifacts.download_artifact(
                    artifact_store=self._store, file_path=str(path), artifact_id=artifact
                )
            except self._optuna.artifacts.exceptions.ArtifactNotFound:
                warnings.warn(
                    f"the model of the best trial ({best.number}) is not in the models folder"
                    " here: workers on other machines need a folder they all share",
                    RuntimeWarning,
                    stacklevel=3,
                )
                return None, None
            return load_model(path).net, best.number
