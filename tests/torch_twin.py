"""A PyTorch copy of an nnlab ``Sequential``, for the parity tests (imported by them; holds no tests)."""

import numpy as np

import nnlab


def as_tensor(a):
    """``a`` as a torch tensor sharing its memory (made contiguous first)."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(a))


def torch_twin(net):
    """A ``torch.nn.Sequential`` with the same layers and the same numbers as the nnlab ``Sequential``."""
    import torch

    layers = []
    for m in net:
        if isinstance(m, nnlab.Linear):
            t = torch.nn.Linear(m.in_dim, m.out_dim)
            with torch.no_grad():
                t.weight.copy_(as_tensor(m.W))
                t.bias.copy_(as_tensor(m.b))
        elif isinstance(m, nnlab.BatchNorm1d):
            t = torch.nn.BatchNorm1d(m.num_features, eps=m.eps, momentum=m.momentum)
            with torch.no_grad():
                t.weight.copy_(as_tensor(m.gamma))
                t.bias.copy_(as_tensor(m.beta))
                t.running_mean.copy_(as_tensor(m.running_mean))
                t.running_var.copy_(as_tensor(m.running_var))
        elif isinstance(m, nnlab.Dropout):
            t = torch.nn.Dropout(m.p)
        else:
            t = {nnlab.ReLU: torch.nn.ReLU, nnlab.Tanh: torch.nn.Tanh, nnlab.Sigmoid: torch.nn.Sigmoid}[type(m)]()
        layers.append(t)
    return torch.nn.Sequential(*layers)
