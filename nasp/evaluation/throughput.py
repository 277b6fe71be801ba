"""Images per second of the evaluation network's training step (what `nasp bench` reports as eval_throughput)."""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
from torch import nn

from nasp.evaluation.data import derive_seed
from nasp.evaluation.network import EvalNetwork
from nasp.evaluation.task import autocast, compiled
from nasp.genotypes import get_genotype
from nasp.model.budget import count_params


def eval_throughput(device: torch.device, genotype: str = "DARTS_V2", channels: int = 36, layers: int = 20,
                    batch_size: int = 96, image_size: int = 32, in_channels: int = 3, num_classes: int = 10,
                    steps: int = 5, amp: bool = True, channels_last: bool = True, seed: int = 0,
                    mode: str = "eager", warmup: int = 1) -> dict[str, Any]:
    """Median seconds and images/s of one full training step (forward with auxiliary head and drop-path,
    backward, clip, SGD) on random CIFAR-shaped batches, after ``warmup`` steps (compiling and capturing take
    a few). ``mode``: eager, compile or graphs, as ``nasp eval`` runs the network (``compiled``)."""
    torch.manual_seed(seed)
    net = EvalNetwork(get_genotype(genotype), channels, layers, num_classes, in_channels).to(device)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, in_channels, image_size, image_size, generator=gen).to(device)
    y = torch.randint(num_classes, (batch_size,), generator=gen).to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    drop_gen = torch.Generator(device=device)
    net.train()
    train_net = compiled(net, mode)
    times = []
    for i in range(steps + warmup):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        drop_gen.manual_seed(derive_seed(seed, 0, i))
        net.set_drop_path(0.2, drop_gen)
        with autocast(device, amp):
            logits, aux = train_net(x)
        loss = nn.functional.cross_entropy(logits.float(), y)
        if aux is not None:
            loss = loss + 0.4 * nn.functional.cross_entropy(aux.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    step_s = statistics.median(times)
    return {"genotype": genotype, "channels": channels, "layers": layers, "batch_size": batch_size,
            "image_size": image_size, "params": count_params(net), "amp": amp and device.type == "cuda",
            "channels_last": channels_last, "mode": mode, "step_s": step_s, "images_per_s": batch_size / step_s}
