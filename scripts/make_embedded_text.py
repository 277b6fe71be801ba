"""Rebuild nasp/data/embedded/kjv.{train,valid,test}.txt.gz, the embedded text corpus (`data=embedded-text`).

Source: the King James Version of the Bible (1611; public domain), as Debian's bible-kjv-text package holds
it, printed one verse per line by that package's `bible` program:

    apt-get install bible-kjv          # brings bible-kjv-text
    python scripts/make_embedded_text.py

Processing, PTB style (Mikolov's PTB is lower case, without punctuation, numbers as N, 10,000 words):
lower case; the tokens are runs of letters, a possessive/contraction tail ('s) split off as its own token,
digits as N; punctuation dropped; one verse a line. Split by chapter (1,189 in all, numbered in book
order): chapter k % 20 == 18 goes to valid, == 19 to test, the rest to train. Vocabulary: the 9,998 most
frequent training words (ties alphabetical) plus <unk> and <eos> (10,000 in all, like PTB); every other
word is written as <unk>. The output is deterministic (gzip without a time stamp).
"""

from __future__ import annotations

import argparse
import gzip
import re
import subprocess
from collections import Counter
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "nasp" / "data" / "embedded"
VOCAB = 10_000
TOKEN = re.compile(r"[a-z]+|'[a-z]+|\d+")
REF = re.compile(r"^(\w+?)(\d+):(\d+)\s+(.*)$")


def verses(bible: str, path: str | None) -> list[tuple[str, str]]:
    """(book+chapter, text) of every verse, in order."""
    where = ["-p", path] if path else []
    out = subprocess.run([bible, *where, "-f", "gen1:1-rev22:21"], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        m = REF.match(line.strip())
        if m:
            rows.append((f"{m.group(1)}{m.group(2)}", m.group(4)))
    return rows


def tokens(text: str) -> list[str]:
    return ["N" if t.isdigit() else t for t in TOKEN.findall(text.lower())]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bible", default="bible", help="the bible program of Debian's bible-kjv")
    p.add_argument("--data-path", help="folder holding bible.data (default: the program's own, /usr/lib)")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    rows = verses(args.bible, args.data_path)
    splits: dict[str, list[list[str]]] = {"train": [], "valid": [], "test": []}
    chapter, last = -1, None
    for ref, text in rows:
        if ref != last:
            chapter, last = chapter + 1, ref
        part = {18: "valid", 19: "test"}.get(chapter % 20, "train")
        splits[part].append(tokens(text))
    counts = Counter(w for line in splits["train"] for w in line)
    kept = sorted(counts, key=lambda w: (-counts[w], w))[: VOCAB - 2]
    vocab = set(kept)
    args.out.mkdir(parents=True, exist_ok=True)
    for part, lines in splits.items():
        text = "".join(" " + " ".join(w if w in vocab else "<unk>" for w in line) + " \n" for line in lines)
        with open(args.out / f"kjv.{part}.txt.gz", "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                                                filename="") as f:
            f.write(text.encode("utf-8"))
        n = sum(len(line) + 1 for line in lines)
        print(f"{part}: {len(lines)} verses, {n} tokens (with <eos>)")
    print(f"chapters {chapter + 1}, vocabulary {len(vocab) + 2} (of {len(counts)} training words)")


if __name__ == "__main__":
    main()
