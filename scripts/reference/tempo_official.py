#!/usr/bin/env python3
"""TEMPO advantages as the authors' code computes them, for Tokenwise's fixture test.

Re-implements `compute_tempo_outcome_advantage` of fatebreaker/tempo
(verl/trainer/ppo/core_algos.py, commit 0a1c273d184a6ea31a384c8a665ad979db087810) line by line
with numpy in float64: a GRPO block (singleton group: mean 0, std 1; else unbiased std), then per
response and position j the members that still share y_<=j, and
    A[i, j] = (R_i - mean_G + V(y_<=j) - V(y_<j)) / (std_G + eps)      (norm_adv_by_std_in_grpo)
    A[i, j] =  R_i - mean_G + V(y_<=j) - V(y_<j)                       (otherwise)
with V the mean raw reward of the members sharing the prefix, mean_G and std_G (unbiased) over
the group. Padding is -1, which never equals a token (the official code compares padded ids).
Singleton groups are left out: the official code divides by torch.std of one value (NaN there);
Tokenwise keeps GRPO's rule for them. Writes Tests/CreditTests/Fixtures/tempo_official.json.

    python3 scripts/reference/tempo_official.py
"""
import json
import os
import numpy as np


def tempo(responses, lengths, rewards, index, eps=1e-6, norm=True):
    bsz, width = responses.shape
    mask = (np.arange(width)[None, :] < lengths[:, None]).astype(np.float64)
    scores = rewards.astype(np.float64).copy()
    groups = {}
    for i in range(bsz):
        groups.setdefault(index[i], []).append(i)
    for idx, members in groups.items():
        s = scores[members]
        mean, std = (0.0, 1.0) if len(members) == 1 else (s.mean(), s.std(ddof=1))
        for i in members:
            scores[i] = (rewards[i] - mean) / (std + eps) if norm else rewards[i] - mean
    out = scores[:, None] * mask
    for i in range(bsz):
        previous = groups[index[i]]
        group = rewards[previous]
        mean, std = group.mean(), group.std(ddof=1)
        for j in range(width):
            if mask[i, j] == 0:
                break
            branch = [k for k in previous if responses[i, j] == responses[k, j]]
            ancestor, here = rewards[previous].mean(), rewards[branch].mean()
            top = rewards[i] - mean + here - ancestor
            out[i, j] = top / (std + eps) if norm else top
            if len(previous) == 1:
                out[i, j:] = out[i, j]
                break
            previous = branch
    return out * mask


def random_group(rng, size, vocab, longest):
    """Responses that share prefixes: each copies a random prefix of an earlier one, then goes on."""
    rows = []
    for _ in range(size):
        if rows and rng.random() < 0.8:
            base = rows[rng.integers(len(rows))]
            keep = int(rng.integers(0, len(base) + 1))
            row = base[:keep] + [int(t) for t in rng.integers(0, vocab, int(rng.integers(0, longest - keep + 1)))]
        else:
            row = [int(t) for t in rng.integers(0, vocab, int(rng.integers(0, longest + 1)))]
        rows.append(row)
    return rows


def main():
    rng = np.random.default_rng(20251117)
    cases = []
    specs = [(4, 3, 6, "binary"), (8, 2, 10, "binary"), (6, 4, 8, "real"), (5, 2, 5, "equal"), (7, 3, 12, "real")]
    for case, (size, vocab, longest, kind) in enumerate(specs * 4):
        rows = random_group(rng, size, vocab, longest)
        if case == 0:
            rows[0] = []          # an empty response
        if kind == "binary":
            rewards = rng.integers(0, 2, size).astype(np.float64)
        elif kind == "equal":
            rewards = np.full(size, 0.5)
        else:
            rewards = np.round(rng.normal(size=size), 3)
        lengths = np.array([len(r) for r in rows])
        width = max(1, lengths.max())
        padded = np.full((size, width), -1)
        for i, r in enumerate(rows):
            padded[i, :len(r)] = r
        for norm in (True, False):
            adv = tempo(padded, lengths, rewards, ["q"] * size, norm=norm)
            cases.append({"std_normalize": norm, "tokens": rows, "rewards": rewards.tolist(),
                          "advantages": [adv[i, :lengths[i]].tolist() for i in range(size)]})
    out = os.path.join(os.path.dirname(__file__), "../../Tests/CreditTests/Fixtures/tempo_official.json")
    with open(out, "w") as f:
        json.dump({"source": "fatebreaker/tempo@0a1c273d184a6ea31a384c8a665ad979db087810 verl/trainer/ppo/core_algos.py "
                             "compute_tempo_outcome_advantage", "cases": cases}, f)
    print(f"{len(cases)} cases → {os.path.normpath(out)}")


if __name__ == "__main__":
    main()
