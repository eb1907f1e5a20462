#!/usr/bin/env python3
"""Writes the toy tasks the trainer and CLI tests learn on tests/data/models/tiny-llama:

  toy_animals_{train,dev,test}.jsonl      classification {"text", "label"}: does the
                                          sentence mention a dog or a fox?
  toy_animals_gen_{train,dev}.jsonl       generation {"input", "target"}: the same
                                          sentences, target " dog" / " fox"

Words come from the text tiny-llama's tokenizer was trained on, so they are
few tokens each. Deterministic (seed 0): rerunning rewrites identical files.
"""
import itertools
import json
import os
import random

ADJECTIVES = ["quick", "brown", "lazy", "other", "quick brown", "lazy brown"]
DETERMINERS = ["the", "a", "this"]
PREDICATES = ["jumps over the other", "sleeps in the sun", "runs into the woods",
              "is a test", "thinks these things", "runs over the sun", "sleeps in the woods"]


def main():
    rng = random.Random(0)
    here = os.path.dirname(os.path.abspath(__file__))
    sentences = {"dog": [], "fox": []}
    for animal in sentences:
        for det, adj, pred in itertools.product(DETERMINERS, ADJECTIVES, PREDICATES):
            sentences[animal].append(f"{det} {adj} {animal} {pred}")
        rng.shuffle(sentences[animal])
    splits = {"train": (0, 48), "dev": (48, 60), "test": (60, 72)}
    for split, (begin, end) in splits.items():
        rows = [(s, animal) for animal in sentences for s in sentences[animal][begin:end]]
        rng.shuffle(rows)
        with open(os.path.join(here, f"toy_animals_{split}.jsonl"), "w") as f:
            for text, label in rows:
                f.write(json.dumps({"text": text, "label": label}) + "\n")
        if split != "test":
            with open(os.path.join(here, f"toy_animals_gen_{split}.jsonl"), "w") as f:
                for text, label in rows:
                    f.write(json.dumps({"input": text + ". animal:", "target": " " + label}) + "\n")


if __name__ == "__main__":
    main()
