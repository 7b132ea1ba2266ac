#!/usr/bin/env python3
"""ARES's AEPO reward shaping (arXiv 2510.08457) as the authors' code computes it, for
Tokenwise's fixture test.

Re-implements with numpy in float64, step by step, from shawn0728/ARES at commit
146620e3d7166281ffb14634c580c6dcd3a5943d:
- verl/workers/rollout/vllm_rollout_spmd.py `get_window_average_entropy_percentile_threshold_list`:
  per response, the mean entropy of the `window` tokens after each position (a position too near
  the end gets the running mean of the earlier window means, or its own entropy when there is
  none), then the 95th percentile (numpy's linear interpolation) of those means;
- the same file, `compute_reasoning_token_window_entropy`: a trigger word (the token's text with
  a leading space marker stripped, trimmed and lower-cased, in the word list) counts when at least
  `window` tokens follow it and the mean entropy of the next `window` tokens is >= the threshold;
- verl/trainer/ray_trainer.py `fit`: the threshold is the EMA 0.99 * old + 0.01 * median over the
  batch of the responses' percentiles, seeded with the first batch's median, and the count at a
  step uses the threshold from before that step's update;
  `update_difficulty_and_skip_gid_set`: a group is easy when its pass rate is >= 2/3, medium when
  >= 1/3, else hard; each bucket's target is round(mean over its groups of the group's mean
  count) (numpy rounds half to even); each bucket's alpha moves by 0.05 * (mean - target) (easy,
  medium) or 0.05 * (target - mean) (hard), clipped to [0, 2], from 0.5;
- examples/reward_function/aepo.py `compute_score`: the shaping added to the 0/1 accuracy, by
  bucket, with the margin, Huber and sigmoid of that file.
Reading "released" is what the released config (online_filtering: true) trains on: the reward is
computed before the bucket values are injected, so every response gets the reward manager's
defaults (easy, target 0, alpha 0.5).
Two stand-ins are Tokenwise's, and the fixture follows them: the entropies are exact (the
official ones come from vLLM's top-10 logprobs plus a tail bucket), and the first step's count
uses that step's own median percentile (the official run takes it from a validation pass before
training). The trigger is the sampled token (officially the most likely token at that position).
Writes Tests/TrainingTests/Fixtures/aepo_official.json.

    python3 scripts/reference/aepo_official.py
"""
import json
import math
import os
import numpy as np

TRIGGERS = ["wait", "but", "hmm", "maybe", "thus", "so"]  # the fixture's own list ("so" is not an official word)
MARGIN_FRAC = {"easy": 0.15, "medium": 0.25, "hard": 0.35}
KAPPA = {"easy": 2.0, "medium": 3.0, "hard": 4.0}
TEMP = {"easy": 2.0, "medium": 2.5, "hard": 3.0}
CAP_SCALE = {"easy": 1.0, "medium": 1.0, "hard": 1.2}


def window_percentile(entropies, percentile, window):
    means = []
    for i in range(len(entropies)):
        if len(entropies) - i - 1 >= window:
            means.append(float(np.mean(entropies[i + 1:i + 1 + window])))
        elif means:
            means.append(float(np.mean(means)))
        else:
            means.append(entropies[i])
    return float(np.percentile(means, percentile)) if means else 0.0


def count_triggers(entropies, words, triggers, threshold, window):
    valid = 0
    for i, w in enumerate(words):
        if w in triggers and len(entropies) - i - 1 >= window:
            if float(np.mean(entropies[i + 1:i + 1 + window])) >= threshold:
                valid += 1
    return valid


def huber(x, kappa):
    x = max(float(x), 0.0)
    return 0.5 * x * x / kappa if x <= kappa else x - 0.5 * kappa


def sigmoid(x, temp):
    return 1.0 / (1.0 + math.exp(-x / max(float(temp), 1e-6)))


def entropy_score(accuracy, difficulty, n, target, alpha):
    delta = n - target
    margin = max(1.0, MARGIN_FRAC[difficulty] * max(float(target), 1.0))
    kappa, temp, cap = KAPPA[difficulty], TEMP[difficulty], alpha * CAP_SCALE[difficulty]
    if difficulty in ("easy", "medium"):
        if accuracy == 1.0:
            dev = max(delta - margin, 0.0) if difficulty == "easy" else max(abs(delta) - margin, 0.0)
            return -min(cap, huber(dev, kappa) / (margin + kappa) * cap)
        return sigmoid(max(delta - margin, 0.0), temp) * cap * (0.6 if difficulty == "easy" else 0.8)
    if accuracy == 1.0:
        if delta >= -margin:
            return sigmoid(delta + margin, temp) * cap
        return -min(cap, 0.5 * huber(-delta - margin, kappa) / (margin + kappa) * cap)
    return sigmoid(max(delta - margin, 0.0), temp) * cap


def step(case):
    window, percentile = case["window"], case["percentile"]
    ents, words = case["entropies"], case["words"]
    p = [window_percentile(np.array(e), percentile, window) for e in ents]
    batch = float(np.median(p))
    prior = case["threshold"]
    used = batch if prior is None else prior
    counts = [count_triggers(np.array(e), w, set(TRIGGERS), used, window) for e, w in zip(ents, words)]
    threshold = batch if prior is None else 0.99 * prior + 0.01 * batch
    alpha = dict(case["alpha"])
    difficulty, bucket_values, row = [], {}, 0
    for size in case["group_sizes"]:
        acc = float(np.mean(case["accuracy"][row:row + size]))
        d = "easy" if acc >= 2 / 3 else ("medium" if acc >= 1 / 3 else "hard")
        difficulty.append(d)
        bucket_values.setdefault(d, []).append(float(np.mean(counts[row:row + size])))
        row += size
    targets = {d: float(round(1.0 * np.mean(v))) for d, v in bucket_values.items()}
    for d, v in bucket_values.items():
        mean = float(np.mean(v))
        delta = mean - targets[d] if d in ("easy", "medium") else targets[d] - mean
        alpha[d] = float(np.clip(alpha[d] + 0.05 * delta, 0.0, 2.0))
    scores, row = [], 0
    for g, size in enumerate(case["group_sizes"]):
        for i in range(row, row + size):
            if case["reading"] == "released":
                scores.append(entropy_score(case["accuracy"][i], "easy", counts[i], 0.0, 0.5))
            else:
                d = difficulty[g]
                scores.append(entropy_score(case["accuracy"][i], d, counts[i], targets[d], alpha[d]))
        row += size
    return {"percentiles": p, "counts": counts, "threshold": threshold, "difficulty": difficulty,
            "targets": targets, "alpha": alpha, "scores": scores}


def main():
    rng = np.random.default_rng(20261204)
    pool = TRIGGERS + ["the", "answer", "is", "x", "+", "="]
    cases = []
    for k in range(16):
        sizes = [int(rng.integers(2, 7)) for _ in range(int(rng.integers(1, 5)))]
        n = sum(sizes)
        window = [4, 4, 2, 3][k % 4]
        lengths = [int(rng.integers(0, 40)) if k != 3 else int(rng.integers(0, 4)) for _ in range(n)]
        ents = [list(np.abs(rng.normal(0.8, 0.9, m))) for m in lengths]
        words = [[pool[int(j)] for j in rng.integers(0, len(pool), m)] for m in lengths]
        pass_rate = rng.random(len(sizes))
        accuracy = [float(rng.random() < pass_rate[g]) for g, s in enumerate(sizes) for _ in range(s)]
        case = {
            "window": window, "percentile": 95.0 if k % 5 else 80.0,
            "reading": "released" if k % 6 == 5 else "buckets",
            "threshold": None if k % 4 == 0 else float(rng.uniform(0.3, 2.0)),
            "alpha": {"easy": float(rng.uniform(0, 2)), "medium": 0.5, "hard": float(rng.uniform(0, 2))},
            "group_sizes": sizes, "accuracy": accuracy, "entropies": ents, "words": words,
        }
        case["expected"] = step(case)
        cases.append(case)
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "..", "..", "Tests", "TrainingTests", "Fixtures", "aepo_official.json")
    with open(out, "w") as f:
        json.dump({"source": "shawn0728/ARES@146620e", "triggers": TRIGGERS, "cases": cases}, f, indent=1)
    print(f"wrote {len(cases)} cases to {os.path.normpath(out)}")


if __name__ == "__main__":
    main()
