"""EvalConfig: every setting of an evaluation a key (``nasp eval key=value``, YAML presets in nasp/presets/,
``--config eval-cpu``).

Defaults are the paper's CIFAR-10 recipe (DARTS's): 20 cells, C=36, auxiliary head 0.4, drop path 0.2,
cutout 16, batch 96, 600 epochs, SGD lr 0.025 cosine, weight decay 3e-4, gradient clip 5. A recurrent
genotype (an ``rnn`` space) takes DARTS's PTB recipe instead for every shared key not given
(``RNN_DEFAULTS``), and its own keys from the ``rnn`` section.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from nasp.config import (
    AUTO_NOTE,
    SEED_MAX,
    MLflowConfig,
    Section,
    Switch,
    Threads,
    WandbConfig,
    build_config,
    config_tree,
    keys_given,
    load_yaml,
    merge,
)
from nasp.genotype import Genotype


class EvalDataConfig(Section):
    name: str = Field("cifar10", description="dataset (`nasp datasets`): cifar10, cifar100, fashion-mnist, embedded, "
                      "imagefolder; a recurrent genotype: a corpus, ptb (its default), wikitext2, embedded-text")
    root: str | None = Field(None, description="dataset folder (imagefolder: the folder holding train/ and val/)")
    limit: int | None = Field(None, ge=2, description="train on at most this many images (a seeded subset; quick runs); "
                              "a corpus: its first this many training tokens")
    test_limit: int | None = Field(None, ge=1, description="test on at most this many images (the first ones); a corpus: "
                                   "the first this many validation and test tokens")
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
    channels: int = Field(36, ge=2, description="initial channels C (paper: 36 CIFAR, 48 ImageNet; NAS-Bench-201: 16)")
    layers: int = Field(20, ge=1, description="cells (paper: 20 CIFAR, 14 ImageNet); a dense (nb201) genotype: cells "
                        "per stage, three stages (NAS-Bench-201: 5; --config eval-nb201)")
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


class EvalRNNConfig(Section):
    """DARTS's recurrent evaluation (rnn/train.py): its defaults are the paper's PTB recipe."""

    emsize: int = Field(850, ge=1, description="word embedding size (tied with the decoder; DARTS: 850)")
    nhid: int = Field(850, ge=1, description="hidden state size of the recurrent cell (DARTS: 850)")
    dropout: float = Field(0.75, ge=0, lt=1, description="locked dropout on the cell's output")
    dropouth: float = Field(0.25, ge=0, lt=1, description="dropout on the hidden state inside the cell")
    dropoutx: float = Field(0.75, ge=0, lt=1, description="dropout on the input x_t inside the cell")
    dropouti: float = Field(0.2, ge=0, lt=1, description="locked dropout on the embedded input")
    dropoute: float = Field(0.1, ge=0, lt=1, description="dropout of whole words from the embedding")
    init_range: float = Field(0.04, gt=0, description="the embedding and the cell's matrices start uniform in "
                              "[-init_range, init_range] (DARTS: 0.04)")
    bptt: int = Field(35, ge=2, description="mean window (steps backpropagated through); windows vary around it")
    max_seq_len_delta: int = Field(20, ge=0, description="longest training window: bptt + this")
    variable_bptt: bool = Field(True, description="DARTS's variable windows (bptt w.p. 0.95 else bptt/2, then "
                                "N(., 5), lr scaled by length/bptt); false: fixed bptt")
    nonmono: int = Field(5, ge=1, description="switch SGD to averaged SGD (ASGD) when validation is worse than the best "
                         "of all but the last nonmono checks")
    asgd: bool = Field(True, description="allow the switch to ASGD at all")
    alpha: float = Field(0.0, ge=0, description="activation regularisation (L2 of the dropped output)")
    beta: float = Field(1e-3, ge=0, description="temporal activation regularisation (slowness of the raw output)")
    test_batch_size: int = Field(1, ge=1, description="streams when scoring the test split (DARTS: 1)")
    vocab_size: int | None = Field(None, ge=2, description="vocabulary for --dry-run without data (default: by corpus: "
                                   "ptb 10,000, wikitext2 33,278, embedded-text 10,000); a run takes the corpus's")


class EvalConfig(Section):
    genotype: str | None = Field(None, description="what to evaluate: a run folder, a genotype .json file, a "
                                 "name (`nasp genotypes`), a DARTS string or a genotype's JSON")
    data: EvalDataConfig = Field(default_factory=EvalDataConfig)
    model: EvalModelConfig = Field(default_factory=EvalModelConfig)
    optim: EvalOptimConfig = Field(default_factory=EvalOptimConfig)
    rnn: EvalRNNConfig = Field(default_factory=EvalRNNConfig)
    epochs: int = Field(600, ge=1, description="training epochs (paper: 600 CIFAR, 250 ImageNet)")
    batch_size: int = Field(96, ge=2, description="training images per step")
    eval_batch_size: int | None = Field(None, ge=1, description="test images per batch (default: 2 x batch_size)")
    eval_every: int = Field(1, ge=1, description="test every N epochs (and after the last)")
    seed: int = Field(0, ge=0, le=SEED_MAX, description="random seed: weights, data order, augmentation, drop-path")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N or mps")
    threads: Threads = Field(None, description="CPU threads of torch (default: torch's; 1 is much faster "
                                "on a CPU that other processes keep busy)")
    amp: bool = Field(True, description="bf16 autocast on CUDA")
    channels_last: bool | None = Field(None, description="channels-last memory format (default: on CUDA, where it "
                                       "speeds convs up; off on CPU, where it slows batch norm down)")
    compile: Switch = Field("auto", description="torch.compile the training network (CUDA only): on, off, or auto ("
                            + AUTO_NOTE + ")")
    cuda_graphs: Switch = Field("auto", description="replay the training network's steps from CUDA graphs (torch."
                                "compile mode reduce-overhead; CUDA only): on, off, or auto (" + AUTO_NOTE + ")")
    out: str = Field("runs", description="folder for run folders")
    loggers: list[str] = Field(default_factory=list, description="more loggers of the metrics, comma-separated "
                               "(`nasp loggers`): csv (metrics.csv), tensorboard, mlflow, wandb (each its extra)")
    mlflow: MLflowConfig = Field(default_factory=MLflowConfig)
    wandb: WandbConfig = Field(default_factory=WandbConfig)
    plugins: list[str] = Field(default_factory=list, description="modules or .py files to import first (ops, spaces, "
                               "genotypes, datasets)")
    resume: str | None = Field(None, description="evaluation run folder to continue, or auto: continue out/name when "
                               "it has a checkpoint, else start it (needs name=; for torchrun --max-restarts)")
    change_world_size: bool = Field(False, description="with resume: continue a run on another number of torchrun "
                                    "ranks than wrote its checkpoint (merges the ranks' own state; not exact)")
    name: str | None = Field(None, description="run folder name (default: <time>-eval-<genotype>)")

    @field_validator("genotype", mode="before")
    @classmethod
    def _as_text(cls, v: Any) -> Any:
        """A path or name as text; a Genotype object as its JSON (``read_genotype`` reads it back)."""
        if isinstance(v, Genotype):
            return v.to_json(indent=None)
        return None if v is None else str(v)

    def use_channels_last(self, device_type: str) -> bool:
        if self.channels_last is None:
            return device_type == "cuda"
        return self.channels_last and device_type != "mps"

    @property
    def test_batch_size(self) -> int:
        return self.eval_batch_size or 2 * self.batch_size


# DARTS's recurrent recipe (rnn/train.py) for the keys a CNN evaluation shares: applied to a recurrent genotype's
# config for each key not given (plain SGD: no momentum, a constant lr that ASGD takes over)
RNN_DEFAULTS: dict[str, Any] = {
    "data.name": "ptb", "epochs": 8000, "batch_size": 64, "eval_batch_size": 10, "optim.lr": 20.0,
    "optim.momentum": 0.0, "optim.weight_decay": 8e-7, "optim.grad_clip": 0.25,
}


# keys of image networks only: a recurrent evaluation given one explicitly says so instead of ignoring it
IMAGE_ONLY = ("model.*", "data.augment", "data.cutout", "data.image_size", "data.workers", "optim.lr_min",
              "optim.schedule", "optim.gamma", "optim.decay_every", "optim.warmup_epochs", "optim.nesterov",
              "optim.label_smoothing", "amp", "channels_last", "compile", "cuda_graphs")


def apply_rnn_defaults(cfg: EvalConfig) -> EvalConfig:
    """Set every key of ``RNN_DEFAULTS`` that ``cfg`` was not given (pydantic's ``model_fields_set``), in place."""
    for dotted, value in RNN_DEFAULTS.items():
        *path, leaf = dotted.split(".")
        section: Section = cfg
        for part in path:
            section = getattr(section, part)
        if leaf not in section.model_fields_set:
            setattr(section, leaf, value)
    return cfg


def image_only_keys_given(cfg: EvalConfig) -> list[str]:
    """The keys of ``IMAGE_ONLY`` that ``cfg`` was given explicitly."""
    return keys_given(cfg, IMAGE_ONLY)


def load_eval_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML preset as a tree, every key checked against EvalConfig (did-you-mean errors)."""
    return load_yaml(path, EvalConfig)


def search_of(genotype: Any) -> dict[str, Any] | None:
    """The config of the search a ``genotype=`` value comes from: a search's run folder, or a genotype file inside
    one (an edit saved next to it); None for names, strings and other files."""
    if not isinstance(genotype, str) or not genotype:
        return None
    from nasp.runfolder import RunFolder, RunFolderError
    from nasp.safe_io import exists

    path = Path(genotype)
    try:
        folder = RunFolder(path if path.is_dir() else path.parent) if exists(path) else None
        if folder is None or folder.kind() != "search":
            return None
        return folder.read_config()
    except (RunFolderError, OSError):
        return None


# the preset an evaluation of a search on the embedded data (images, text) starts from: it finishes in minutes on a CPU
EMBEDDED_PRESETS = {"embedded": "eval-cpu", "embedded-text": "eval-rnn-cpu"}


def eval_defaults(user: dict[str, Any], config_file: str | None) -> dict[str, Any]:
    """What ``nasp eval genotype=<search run>`` assumes under the keys given: the search's data (name and root),
    and, for the embedded data without a --config, the ``eval-cpu`` preset (``eval-rnn-cpu`` for the embedded text).
    Explicit keys always win."""
    search = search_of(user.get("genotype"))
    data = (search or {}).get("data")
    tree: dict[str, Any] = {}
    if isinstance(data, dict) and isinstance(data.get("name"), str):
        tree["data"] = {k: data[k] for k in ("name", "root") if data.get(k) is not None}
    chosen = user.get("data", {}).get("name") or tree.get("data", {}).get("name")
    if search is not None and config_file is None and chosen in EMBEDDED_PRESETS:
        tree = merge(load_eval_yaml(EMBEDDED_PRESETS[chosen]), tree)
    return tree


def eval_config(overrides: Sequence[str] | dict[str, Any] | None = None, config_file: str | Path | None = None,
                **keys: Any) -> EvalConfig:
    """A YAML file or preset (optional) with overrides on top, over the defaults a search's genotype brings
    (``eval_defaults``). ``overrides``: ``key=value`` words as on the command line, or a dict (nested or dotted
    keys); ``keys``: Python values by key (``epochs=1``, ``genotype=Genotype(...)``, ``data={"limit": 128}``)."""
    words: Sequence[str] = () if overrides is None or isinstance(overrides, dict) else overrides
    tree = load_eval_yaml(config_file) if config_file is not None else {}
    user = merge(tree, config_tree(overrides if isinstance(overrides, dict) else None, words, keys, EvalConfig))
    return build_config(merge(eval_defaults(user, None if config_file is None else str(config_file)), user), EvalConfig)
