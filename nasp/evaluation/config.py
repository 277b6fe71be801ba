"""EvalConfig: every setting of an evaluation a key (``nasp eval key=value``, YAML presets in configs/).

Defaults are the paper's CIFAR-10 recipe (DARTS's): 20 cells, C=36, auxiliary head 0.4, drop path 0.2,
cutout 16, batch 96, 600 epochs, SGD lr 0.025 cosine, weight decay 3e-4, gradient clip 5.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from nasp.config import SEED_MAX, Section, build_config, load_yaml, merge, parse_overrides


class EvalDataConfig(Section):
    name: str = Field("cifar10", description="dataset (`nasp datasets`): cifar10, cifar100, fashion-mnist, embedded, "
                      "imagefolder")
    root: str | None = Field(None, description="dataset folder (imagefolder: the folder holding train/ and val/)")
    limit: int | None = Field(None, ge=2, description="train on at most this many images (a seeded subset; quick runs)")
    test_limit: int | None = Field(None, ge=1, description="test on at most this many images (the first ones)")
    augment: Literal["auto", "none", "crop_flip", "imagenet"] = Field(
        "auto", description="training augmentation: crop_flip (pad + random crop + flip, CIFAR), imagenet (random "
        "resized crop + flip + colour jitter), none; auto: imagenet for image folders larger than 64 px, else crop_flip")
    cutout: int = Field(16, ge=0, description="side of the cutout square in pixels (0: no cutout)")
    image_size: int | None = Field(None, ge=8, description="image folders: side of the network's input (default: "
                                   "the images' own size up to 64 px, else 224)")
    workers: int | None = Field(None, ge=0, description="image folders: loader processes (default: min(8, CPUs))")


class EvalModelConfig(Section):
    network: Literal["cifar", "imagenet"] = Field("cifar", description="cifar: DARTS's NetworkCIFAR (3x3 stem); "
                                                  "imagenet: NetworkImageNet (three stride-2 convs)")
    channels: int = Field(36, ge=2, description="initial channels C (paper: 36 CIFAR, 48 ImageNet)")
    layers: int = Field(20, ge=1, description="cells (paper: 20 CIFAR, 14 ImageNet)")
    stem_multiplier: int = Field(3, ge=1, description="cifar network: stem width as a multiple of C")
    auxiliary: bool = Field(True, description="auxiliary head at 2/3 depth (training only)")
    auxiliary_weight: float = Field(0.4, ge=0, description="weight of the auxiliary head's loss")
    drop_path: float = Field(0.2, ge=0, lt=1, description="final drop-path probability, rising linearly from 0")
    sync_bn: bool = Field(False, description="under torchrun: BatchNorm statistics over the global batch, not each "
                          "rank's share (docs/distributed.md)")


class EvalOptimConfig(Section):
    lr: float = Field(0.025, gt=0, description="SGD learning rate")
    lr_min: float = Field(0.0, ge=0, description="final learning rate of the cosine schedule")
    schedule: Literal["cosine", "step"] = Field("cosine", description="cosine (CIFAR) or step: lr*gamma^(epoch//decay_every) "
                                                "(DARTS ImageNet)")
    gamma: float = Field(0.97, gt=0, le=1, description="step schedule: decay factor")
    decay_every: int = Field(1, ge=1, description="step schedule: epochs between decays")
    warmup_epochs: int = Field(0, ge=0, description="epochs of linear warm-up before the schedule")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum")
    nesterov: bool = Field(False, description="Nesterov momentum")
    weight_decay: float = Field(3e-4, ge=0, description="SGD weight decay")
    grad_clip: float = Field(5.0, gt=0, description="clip the gradient norm to this")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="label smoothing of the loss (DARTS ImageNet: 0.1)")


class EvalConfig(Section):
    genotype: str | None = Field(None, description="what to evaluate: a run folder, a genotype .json file or a "
                                 "name (`nasp genotypes`)")
    data: EvalDataConfig = Field(default_factory=EvalDataConfig)
    model: EvalModelConfig = Field(default_factory=EvalModelConfig)
    optim: EvalOptimConfig = Field(default_factory=EvalOptimConfig)
    epochs: int = Field(600, ge=1, description="training epochs (paper: 600 CIFAR, 250 ImageNet)")
    batch_size: int = Field(96, ge=2, description="training images per step")
    eval_batch_size: int | None = Field(None, ge=1, description="test images per batch (default: 2 x batch_size)")
    eval_every: int = Field(1, ge=1, description="test every N epochs (and after the last)")
    seed: int = Field(0, ge=0, le=SEED_MAX, description="random seed: weights, data order, augmentation, drop-path")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N or mps")
    threads: int | None = Field(None, ge=1, description="CPU threads of torch (default: torch's; 1 is much faster "
                                "on a CPU that other processes keep busy)")
    amp: bool = Field(True, description="bf16 autocast on CUDA")
    channels_last: bool | None = Field(None, description="channels-last memory format (default: on CUDA, where it "
                                       "speeds convs up; off on CPU, where it slows batch norm down)")
    out: str = Field("runs", description="folder for run folders")
    plugins: list[str] = Field(default_factory=list, description="modules or .py files to import first (ops, spaces, "
                               "genotypes, datasets)")
    resume: str | None = Field(None, description="evaluation run folder to continue")
    name: str | None = Field(None, description="run folder name (default: <time>-eval-<genotype>)")

    @field_validator("genotype", mode="before")
    @classmethod
    def _as_text(cls, v: Any) -> Any:
        return None if v is None else str(v)

    def use_channels_last(self, device_type: str) -> bool:
        if self.channels_last is None:
            return device_type == "cuda"
        return self.channels_last and device_type != "mps"

    @property
    def test_batch_size(self) -> int:
        return self.eval_batch_size or 2 * self.batch_size


def load_eval_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML preset as a tree, every key checked against EvalConfig (did-you-mean errors)."""
    return load_yaml(path, EvalConfig)


def eval_config(overrides: list[str], config_file: str | None = None) -> EvalConfig:
    """YAML preset (optional) with ``key=value`` overrides on top."""
    tree = load_eval_yaml(config_file) if config_file else {}
    return build_config(merge(tree, parse_overrides(overrides, EvalConfig)), EvalConfig)
