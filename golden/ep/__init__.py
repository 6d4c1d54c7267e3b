"""Float Equilibrium Propagation: layered MLP / ConvNet, estimators, C-EP and a BPTT reference."""

from .activations import ACTIVATIONS, get_activation
from .config import NetSpec, cifar10_conv, mnist_conv, mnist_mlp
from .network import Clamped, EPNet

__all__ = ["ACTIVATIONS", "Clamped", "EPNet", "NetSpec", "cifar10_conv", "get_activation", "mnist_conv", "mnist_mlp"]
