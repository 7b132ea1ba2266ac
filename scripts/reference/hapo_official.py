#!/usr/bin/env python3
"""HAPO's pieces as the authors' code computes them, for Tokenwise's fixture tests.

Re-implements with numpy in float64, from starriver030515/HAPO
(commit 7671dde3e268779a949954ec75ed3edda45f7e0a, verl/trainer/ppo/core_algos.py):
- `compute_hapo_outcome_advantage` (TLGA): per group, mean and biased std over the group's valid
  tokens (each response's reward repeated over its length), A = (R - mean)/(std + 1e-6); if any
  |A| >= 5 over the group's padded rows, the group takes verl's GRPO advantage (unbiased std;
  a one-response group: mean 0, std 1). Rewards here are 0/1: padding then never adds a value the
  responses do not have, so the padded check equals one over the responses.
- `compute_entropy_h`: e = log(max(H, 1e-8)); m = the `entropy_pivot` quantile of the valid e
  (nearest, Python's round: half to even); h = (e - m)/sqrt(max(mean(h^2), 1e-8)); positive h over
  max(max h, 1e-8), h <= 0 times 1/min(min h, -1e-8) (the signed minimum: Tokenwise's sign_fix false).
- `ada_clip` and `ada_advantage`, then the token-mean clipped surrogate of `compute_policy_loss`
  (no dual clip) for one response.
Writes Tests/CreditTests/Fixtures/hapo_official.json.

    python3 scripts/reference/hapo_official.py
"""
import json
import os
import numpy as np


def grpo(rewards, eps=1e-6):
    if len(rewards) == 1:
        return rewards - 0.0
    return (rewards - rewards.mean()) / (rewards.std(ddof=1) + eps)


def tlga(rewards, lengths, eps=1e-6):
    width = max(lengths)
    mask = np.arange(width)[None, :] < np.asarray(lengths)[:, None]
    scores = rewards[:, None] * mask
    valid = scores[mask]
    mean, std = valid.mean(), valid.std()
    normed = (scores - mean) / (std + eps)
    if np.any(np.abs(normed) >= 5):
        return grpo(rewards, eps)
    return (rewards - mean) / (std + eps)


def entropy_h(entropy, pivot=0.8, eps=1e-8):
    e = np.log(np.maximum(entropy, eps))
    s = np.sort(e)
    idx = round(pivot * (len(s) - 1))
    m = s[idx]
    h = e - m
    std = np.sqrt(max((h ** 2).sum() / max(len(h), 1), eps))
    h = h / std
    pos_max = max(h[h > 0].max() if (h > 0).any() else 0.0, eps)
    neg_min = min(h[h < 0].min() if (h < 0).any() else 0.0, -eps)
    return np.where(h > 0, h / pos_max, h * (1.0 / neg_min))


def loss(logp, old, adv, entropy, low=0.2, high=0.2, alpha=1.0, beta=1.0, pivot=0.8):
    h_hat = entropy_h(entropy, pivot)
    lo = np.where(h_hat <= 0, low * (1 - h_hat * alpha), low)
    hi = np.where(h_hat > 0, high * (1 + h_hat * alpha), high)
    ratio = np.exp(logp - old)
    ent = adv * (1 + beta * h_hat)
    neutral = (ratio > 1 - lo / 2) & (ratio < 1 + hi / 2)
    a = np.where(h_hat > 0, np.where(neutral, adv, ent), np.where(neutral, ent, adv))
    per = np.maximum(-a * ratio, -a * np.clip(ratio, 1 - lo, 1 + hi))
    return per.mean(), h_hat


def main():
    rng = np.random.default_rng(7671)
    tlga_cases = []
    for _ in range(30):
        n = int(rng.integers(1, 9))
        lengths = [int(x) for x in rng.integers(1, 40, n)]
        rewards = rng.integers(0, 2, n).astype(np.float64)
        if rng.random() < 0.2:
            lengths[0] = 200          # a long outlier: the fallback to GRPO
        tlga_cases.append({"lengths": lengths, "rewards": rewards.tolist(), "advantages": tlga(rewards, lengths).tolist()})
    loss_cases = []
    for _ in range(30):
        t = int(rng.integers(2, 30))
        entropy = np.round(np.exp(rng.normal(-1, 1.5, t)), 4)
        entropy[rng.random(t) < 0.1] = 0.0
        logp = np.round(rng.normal(-1, 0.5, t), 4)
        old = np.round(logp + rng.normal(0, 0.15, t), 4)
        adv = np.round(rng.normal(0, 1, t), 4)
        value, h_hat = loss(logp, old, adv, entropy)
        loss_cases.append({"entropies": entropy.tolist(), "logprobs": logp.tolist(), "old_logprobs": old.tolist(),
                           "advantages": adv.tolist(), "h_hat": h_hat.tolist(), "loss": float(value)})
    out = os.path.join(os.path.dirname(__file__), "../../Tests/CreditTests/Fixtures/hapo_official.json")
    with open(out, "w") as f:
        json.dump({"source": "starriver030515/HAPO@7671dde3e268779a949954ec75ed3edda45f7e0a verl/trainer/ppo/core_algos.py",
                   "tlga": tlga_cases, "loss": loss_cases}, f)
    print(f"{len(tlga_cases)} TLGA and {len(loss_cases)} loss cases → {os.path.normpath(out)}")


if __name__ == "__main__":
    main()
