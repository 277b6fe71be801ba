"""Writes docs/config.md from the config schema (run after changing nasp/config.py)."""

from __future__ import annotations

from pathlib import Path

from nasp.algorithms import options_markdown
from nasp.config import iter_keys

HEADER = """# Config keys

Every key of `nasp run`, with its default and meaning. A few defaults depend on the space's kind: a cnn search's
quick defaults (`algorithm.init_jitter`, `warmup`, `lr_schedule`) and the recurrent search's own (`space=rnn`:
DARTS's recurrent settings at quick sizes, docs/recurrent.md) replace the schema's defaults below for every key not
given; `nasp config [space=...]` prints the values a run takes, those included. Set them as
dotted `key=value` overrides, in a YAML file given with `--config` (nested mappings; `nasp config --format yaml`
writes one with every key), or both (overrides win). `algorithm=nasp`, `space=cnn12` and `data=cifar10` are short
for `algorithm.name=...` etc. Values are read as YAML (`true`, `0.1`, `[a, b]`); list keys also take `a,b,c`.

Data folders: `embedded` ships inside the package; `fashion-mnist` reads `data.root` or
`/usr/share/datasets/fashion-mnist` (Debian's `dataset-fashion-mnist`); `cifar10`/`cifar100` read or download
into `data.root` or `~/.cache/nasp/data/<name>` (`$NASP_DATA` moves the cache).

| key | default | meaning |
|---|---|---|
"""


def render() -> str:
    rows = [f"| `{key}` | `{default!r}` | {desc} |" for key, default, desc in iter_keys()]
    return HEADER + "\n".join(rows) + "\n" + options_markdown()


if __name__ == "__main__":
    out = Path(__file__).resolve().parent.parent / "docs" / "config.md"
    out.write_text(render())
    print(f"wrote {out}")
