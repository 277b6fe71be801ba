"""The training loss of every network: mean cross-entropy whose forward leaves its gradient ready.

F.cross_entropy's backward fills a zero tensor of the logits' size, scatters -1/N into it and runs
log-softmax's backward: two more passes over the logits and two more buffers of their size. At a language
model's 10,000 words those buffers are the largest tensors of a step, and on the CPU each fresh one also
costs its page faults. Here the forward's log-softmax is turned in place into softmax - onehot, which is
the gradient up to the factor grad_output / N that the backward applies: one buffer, one more pass."""

from __future__ import annotations

from typing import Any

import torch
from torch.autograd.function import once_differentiable

from nasp.model.probe import upcast


class _CrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n = logits.shape[0]
        logp = torch.log_softmax(logits, 1)
        loss = logp.gather(1, y[:, None]).sum().neg_().div_(n)
        ctx.n = n
        ctx.grad = None
        if ctx.needs_input_grad[0]:
            grad = logp.exp_()
            grad.scatter_add_(1, y[:, None], grad.new_full((n, 1), -1.0))
            ctx.grad = grad
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        grad = ctx.grad
        if grad is None:  # the buffer is scaled in place: a second backward through the same loss would be wrong
            raise RuntimeError("cross_entropy: backward through the same loss twice (retain_graph is not supported)")
        ctx.grad = None
        return grad.mul_(grad_output / ctx.n), None


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of (N, classes) logits against N class indices, as F.cross_entropy (float32 at least:
    autocast's half-precision logits are upcast first)."""
    return _CrossEntropy.apply(upcast(logits), y)
