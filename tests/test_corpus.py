"""Text corpora: reading PTB-format files, their errors, the token cache, batchify and DARTS's windows."""

from __future__ import annotations

import gzip
import itertools
import os

import pytest
import torch

from nasp.data.corpus import (
    CORPORA,
    TextBatches,
    batchify,
    cache_path,
    fixed_windows,
    load_corpus,
    read_corpus,
    variable_windows,
)
from nasp.errors import DataError

PTB_LIKE = {"train": " the cat sat \n on the mat \n", "valid": " the dog \n", "test": " a cat \n\n"}


def write_ptb(folder, texts=PTB_LIKE, names="ptb.{}.txt"):
    folder.mkdir(parents=True, exist_ok=True)
    for split, text in texts.items():
        (folder / names.format(split)).write_text(text)
    return folder


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("NASP_DATA", str(tmp_path / "cache"))


def test_ptb_rule_ids_in_first_appearance_order(tmp_path):
    c = load_corpus("ptb", write_ptb(tmp_path / "ptb"))
    assert c.vocab == ["the", "cat", "sat", "<eos>", "on", "mat", "dog", "a"]
    assert c.train.tolist() == [0, 1, 2, 3, 4, 0, 5, 3]
    assert c.valid.tolist() == [0, 6, 3]
    assert c.test.tolist() == [7, 1, 3, 3]  # an empty line is one <eos>, as DARTS's data.py reads it
    assert c.train.dtype == torch.int64 and c.vocab_size == 8


def test_wikitext2_file_names_and_awd_names(tmp_path):
    wt = write_ptb(tmp_path / "wt2", names="wiki.{}.tokens")
    assert load_corpus("wikitext2", wt).valid.numel() == 3
    awd = write_ptb(tmp_path / "awd", names="{}.txt")  # AWD-LSTM / DARTS's own names
    assert load_corpus("ptb", awd).train.numel() == 8


@pytest.mark.parametrize("case, expect", [
    ("no-folder", "does not exist"),
    ("missing-file", "ptb.valid.txt' is missing"),
    ("empty", "is empty"),
    ("latin1", "not UTF-8"),
    ("binary", "binary file"),
])
def test_bad_corpus_files_are_one_line_data_errors(tmp_path, case, expect):
    folder = tmp_path / "ptb"
    if case != "no-folder":
        write_ptb(folder)
    if case == "missing-file":
        (folder / "ptb.valid.txt").unlink()
    if case == "empty":
        (folder / "ptb.test.txt").write_text(" \n\n")
    if case == "latin1":
        (folder / "ptb.train.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    if case == "binary":
        (folder / "ptb.train.txt").write_bytes(b"\x89PNG\r\n\x00\x00\x01")
    with pytest.raises(DataError) as err:
        load_corpus("ptb", folder)
    msg = str(err.value)
    assert expect in msg and "\n" not in msg and msg.startswith("ptb: ")


def test_cache_reused_then_rebuilt_when_a_file_changes_or_the_cache_is_damaged(tmp_path):
    folder = write_ptb(tmp_path / "ptb")
    files = {s: folder / f"ptb.{s}.txt" for s in ("train", "valid", "test")}
    first = read_corpus("ptb", files)
    cached = list((tmp_path / "cache" / "corpus").glob("ptb-*.pt"))
    assert len(cached) == 1
    # the cache is what is read: a cache holding other (still valid) ids under the same key wins
    state = torch.load(cached[0], weights_only=True)
    state["train"] = torch.zeros_like(state["train"])
    torch.save(state, cached[0])
    assert read_corpus("ptb", files).train.tolist() == [0] * 8
    # a damaged cache is rebuilt from the files
    cached[0].write_bytes(b"not a torch file")
    assert read_corpus("ptb", files).train.tolist() == first.train.tolist()
    # ids out of the vocabulary's range: rebuilt, not trusted
    state = torch.load(cached[0], weights_only=True)
    state["valid"] = torch.tensor([99])
    torch.save(state, cached[0])
    assert read_corpus("ptb", files).valid.tolist() == first.valid.tolist()
    # an edited file has another key: a new cache file, the new text
    files["train"].write_text(" dog dog \n")
    os.utime(files["train"], ns=(1, 1))
    changed = read_corpus("ptb", files)
    assert changed.vocab[0] == "dog" and cache_path("ptb", "x").parent == cached[0].parent
    assert len(list(cached[0].parent.glob("ptb-*.pt"))) == 2


def test_cache_with_foreign_objects_is_not_unpickled(tmp_path):
    folder = write_ptb(tmp_path / "ptb")
    files = {s: folder / f"ptb.{s}.txt" for s in ("train", "valid", "test")}
    read_corpus("ptb", files)
    cached = next((tmp_path / "cache" / "corpus").glob("ptb-*.pt"))
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"format": "nasp-corpus/1", "vocab": Evil()}, cached)
    assert read_corpus("ptb", files).train.numel() == 8 and not marker.exists()


def test_embedded_text_ships_ptb_style():
    c = load_corpus("embedded-text")
    assert c.vocab_size == 10_000 and "<unk>" in c.vocab and "<eos>" in c.vocab
    assert c.train.numel() == 741_908 and c.valid.numel() == 40_600 and c.test.numel() == 40_044
    assert {"ptb", "wikitext2", "embedded-text"} <= set(CORPORA.names())


def test_gzipped_files_read_too(tmp_path):
    folder = tmp_path / "kjv"
    folder.mkdir()
    for split, text in PTB_LIKE.items():
        (folder / f"kjv.{split}.txt.gz").write_bytes(gzip.compress(text.encode()))
    assert load_corpus("embedded-text", folder).train.numel() == 8


def test_batchify_is_darts_streams():
    data = batchify(torch.arange(23), 4)
    assert data.shape == (5, 4)
    assert data[:, 0].tolist() == [0, 1, 2, 3, 4] and data[:, 1].tolist() == [5, 6, 7, 8, 9]
    with pytest.raises(DataError, match="4 streams"):
        batchify(torch.arange(7), 4)


def test_fixed_windows_cover_every_target_once():
    ws = fixed_windows(101, 35)
    assert [(w.start, w.length) for w in ws] == [(0, 35), (35, 35), (70, 30)]
    tb = TextBatches(torch.arange(400), 4, 35)
    targets = torch.cat([y.view(-1, 4) for _, y, _ in tb.epoch()])
    assert torch.equal(targets, tb.data[1:]) and len(tb) == 3 and tb.tokens == 99 * 4


def test_variable_windows_follow_darts_and_resume_exactly():
    ws = variable_windows(100_000, 35, 20, seed=5, epoch=3)
    lengths = torch.tensor([w.length for w in ws[:-1]], dtype=torch.float)
    assert lengths.min() >= 5 and lengths.max() <= 55
    assert 33 < lengths.mean() < 35.5  # 35 w.p. 0.95, 17.5 w.p. 0.05, then N(., 5) truncated to an int
    assert all(abs(w.lr_scale - w.length / 35) < 1e-12 for w in ws[:-1])
    assert all(a.start + a.length == b.start for a, b in itertools.pairwise(ws))  # contiguous from row 0
    assert ws[0].start == 0 and ws[-1].start + ws[-1].length in (99_998, 99_999)  # DARTS stops at i >= steps - 2
    assert ws == variable_windows(100_000, 35, 20, seed=5, epoch=3)
    assert ws != variable_windows(100_000, 35, 20, seed=5, epoch=4)
    tb = TextBatches(torch.arange(4000), 2, 35, variable=True, seed=5)
    whole = list(tb.epoch(2))
    resumed = list(TextBatches(torch.arange(4000), 2, 35, variable=True, seed=5).epoch(2, start_step=7))
    assert len(resumed) == len(whole) - 7
    assert all(torch.equal(a[0], b[0]) and a[2] == b[2] for a, b in zip(whole[7:], resumed, strict=True))
