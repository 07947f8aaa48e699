"""The course's preprocessing for every data set: splits, floats, mean image, flattening."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import _validation as v


@dataclass
class Preprocessing:
    """Raw images -> rows the net takes: flatten, convert, multiply by ``scale``, subtract ``mean``.

    Kept with a trained model (see :meth:`to_arrays`), so that raw inputs given later to
    ``mlp-numba predict`` go through exactly what the training data went through.
    """

    scale: float
    mean: np.ndarray
    image_shape: tuple

    def __call__(self, images):
        images = np.asarray(images)
        if images.dtype.kind not in "biuf":
            raise TypeError(f"images must hold real numbers, got dtype {images.dtype}")
        if images.ndim < 2 or math.prod(images.shape[1:]) != self.mean.size:
            raise ValueError(
                f"images must be a batch of {self.mean.size}-value inputs (images of shape "
                f"{self.image_shape}), got an array of shape {images.shape}"
            )
        X = images.reshape(len(images), -1).astype(self.mean.dtype)
        if self.scale != 1:
            X *= self.mean.dtype.type(self.scale)
        X -= self.mean
        return X

    def to_arrays(self):
        return {
            "preprocessing_mean": self.mean,
            "preprocessing_scale": np.array(self.scale),
            "preprocessing_image_shape": np.array(self.image_shape, dtype=np.int64),
        }

    @classmethod
    def from_arrays(cls, arrays):
        try:
            return cls(
                float(arrays["preprocessing_scale"]),
                np.asarray(arrays["preprocessing_mean"]),
                tuple(int(n) for n in arrays["preprocessing_image_shape"]),
            )
        except KeyError as exc:
            raise ValueError(f"the model file has no preprocessing ({exc.args[0]})") from exc


@dataclass
class Split:
    """A data set ready to train on: train / validation / test rows and how they were made."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    preprocessing: Preprocessing
    num_classes: int

    @property
    def num_features(self):
        return self.X_train.shape[1]


def split_and_preprocess(name, raw, *, num_validation, num_test, seed, dtype, scale, course_split):
    """Split the raw ``(X_train, y_train, X_test, y_test)`` and preprocess as the course does.

    ``course_split`` (CIFAR-10): the validation rows follow the training rows in file order, as
    in the course's notebook; otherwise the validation rows are a random draw from ``seed``.
    The mean image is that of the training rows after scaling.
    """
    X_all, y_all, X_test, y_test = raw
    dtype = v.check_dtype(dtype)
    num_validation = v.check_int("num_validation", num_validation, minimum=1)
    if num_validation >= len(X_all):
        raise ValueError(
            f"num_validation must leave training rows: it is {num_validation} but {name} has "
            f"{len(X_all)} training rows"
        )
    if num_test is not None:
        num_test = v.check_int("num_test", num_test, minimum=1)
        X_test, y_test = X_test[:num_test], y_test[:num_test]
    num_train = len(X_all) - num_validation
    if course_split:
        train_rows, val_rows = np.arange(num_train), np.arange(num_train, len(X_all))
    else:
        order = np.random.default_rng(v.check_int("seed", seed, minimum=0)).permutation(len(X_all))
        train_rows, val_rows = np.sort(order[num_validation:]), np.sort(order[:num_validation])
    image_shape = tuple(X_all.shape[1:])
    X_train = _flat(X_all[train_rows], dtype, scale)
    mean = X_train.mean(axis=0, dtype=np.float64).astype(dtype)
    prep = Preprocessing(scale, mean, image_shape)
    X_train -= mean
    return Split(
        name,
        X_train,
        np.ascontiguousarray(y_all[train_rows]),
        prep(X_all[val_rows]),
        np.ascontiguousarray(y_all[val_rows]),
        prep(X_test),
        np.ascontiguousarray(y_test),
        prep,
        int(max(y_all.max(), y_test.max()) + 1),
    )


def _flat(images, dtype, scale):
    X = images.reshape(len(images), -1).astype(dtype)
    if scale != 1:
        X *= dtype.type(scale)
    return X
