"""A small neural-network framework in NumPy: layers, activations, losses, optimizers, schedules, Model."""

from .activations import LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .callbacks import Callback, EarlyStopping, History, LambdaCallback, TerminateOnNaN
from .layers import Dense, Dropout, Layer
from .model import Model, TrainingDiverged, mlp
from .normalization import BatchNorm
from .schedules import CosineAnnealingLR, ExponentialLR, LinearWarmup, ReduceLROnPlateau, StepLR
from .serialization import load_model

__all__ = [
    "BatchNorm", "Callback", "CosineAnnealingLR", "Dense", "Dropout", "EarlyStopping", "ExponentialLR", "History",
    "LambdaCallback", "Layer", "LeakyReLU", "LinearWarmup", "Model", "ReLU", "ReduceLROnPlateau", "Sigmoid", "Softmax",
    "StepLR", "Tanh", "TerminateOnNaN", "TrainingDiverged", "load_model", "mlp",
]
