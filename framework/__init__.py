"""A small neural-network framework in NumPy: layers, activations, losses, optimizers, Model."""

from .activations import LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .callbacks import Callback, EarlyStopping, History, LambdaCallback, TerminateOnNaN
from .layers import Dense, Dropout, Layer
from .model import Model, TrainingDiverged, mlp
from .normalization import BatchNorm
from .serialization import load_model

__all__ = [
    "BatchNorm", "Callback", "Dense", "Dropout", "EarlyStopping", "History", "LambdaCallback", "Layer", "LeakyReLU",
    "Model", "ReLU", "Sigmoid", "Softmax", "Tanh", "TerminateOnNaN", "TrainingDiverged", "load_model", "mlp",
]
