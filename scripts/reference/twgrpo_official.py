#!/usr/bin/env python3
"""TW-GRPO's token weights as the authors' code computes them, for Tokenwise's fixture test.

Re-implements `compute_token_importance_kl_logs_uniform` of longmalongma/TW-GRPO
(commit aa529ffca7ae408e4f3df7ba71cb0dc58544c6b7, src/open_r1/trainer/grpo_trainer.py) with numpy in
float64 for one group of G responses: positions past a response's end take the uniform
log-distribution; m = mean over the group of the log-distributions; K_t = mean over responses of
sum_v (e^d - d - 1), d = clamp(m - own, -11, 11); weights 1 + (alpha - 1)(K - min K)/(max K - min K + 1e-8)
over the group's positions (the longest response's), times each response's mask.
Writes Tests/CreditTests/Fixtures/twgrpo_official.json.

    python3 scripts/reference/twgrpo_official.py
"""
import json
import os
import numpy as np


def log_softmax(x):
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def weights(logps, lengths, alpha):
    g, t, v = logps.shape
    mask = (np.arange(t)[None, :] < np.asarray(lengths)[:, None])[..., None]
    masked = np.where(mask, logps, -np.log(v))
    mean = masked.mean(axis=0, keepdims=True)
    diff = np.clip(mean - masked, -11.0, 11.0)
    k = (np.exp(diff) - diff - 1).sum(-1).mean(axis=0)
    w = 1.0 + (alpha - 1.0) * (k - k.min()) / (k.max() - k.min() + 1e-8)
    return k, [w[:n].tolist() for n in lengths]


def main():
    rng = np.random.default_rng(529)
    cases = []
    for _ in range(20):
        g, v = int(rng.integers(2, 7)), int(rng.integers(3, 12))
        lengths = [int(x) for x in rng.integers(1, 9, g)]
        t = max(lengths)
        logps = log_softmax(rng.normal(0, 2, (g, t, v)))
        alpha = float(rng.choice([1.4, 1.7, 2.0]))
        k, w = weights(logps, lengths, alpha)
        cases.append({"alpha": alpha, "lengths": lengths,
                      "log_distributions": [logps[i, :lengths[i]].tolist() for i in range(g)],
                      "position_scores": k.tolist(), "weights": w})
    out = os.path.join(os.path.dirname(__file__), "../../Tests/CreditTests/Fixtures/twgrpo_official.json")
    with open(out, "w") as f:
        json.dump({"source": "longmalongma/TW-GRPO@aa529ffca7ae408e4f3df7ba71cb0dc58544c6b7 src/open_r1/trainer/grpo_trainer.py "
                             "compute_token_importance_kl_logs_uniform", "cases": cases}, f)
    print(f"{len(cases)} cases → {os.path.normpath(out)}")


if __name__ == "__main__":
    main()
