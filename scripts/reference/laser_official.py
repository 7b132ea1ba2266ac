#!/usr/bin/env python3
"""LaSeR's class weights, self-reward loss and advantage mix as the authors' code computes them,
for Tokenwise's fixture test.

Re-implements with numpy in float64, step by step, from RUCBM/LaSeR at commit
48996f7 (verl fork):
- verl/verl/trainer/ppo/ray_trainer.py `fit`, "class-level reweighting factor": over the responses
  that were not truncated, total / (2 * correct) for a right one and total / (2 * incorrect) for a
  wrong one (0 for a class with none, all 0 when none finished);
- verl/verl/workers/actor/dp_actor.py `update_policy`, the self-reward loss: ratio =
  (log_prob_z * T - c) * kl_coef when c < 0, else (log_prob_z * T - ref_log_prob_z * T) * kl_coef;
  loss = mean over the micro-batch of (ratio - reward)^2 * finished * reweighting_factor;
- ray_trainer.py "self-rewarding-based advantages": ratio (no temperature factor) clamped to [0, 1],
  0.0 for a truncated response, grouped by uid; mean 0 and std 1 for a group of one, else the mean
  and torch.std (ddof 1); (score - mean) / std where std > threshold, and the original advantages
  where it is not; then dp_actor mixes (1 - coef) * A + coef * A_self.
One deliberate difference is kept out of the fixture: the official advantage path reads the old
log-probabilities at the first padded slot, computed without z there; here, as the paper defines
the score, every log-probability given is that of z after the response (Tokenwise computes it so).
For a truncated response the official numerator also reads a slot with no z (position 0, the first
response token); here its score is 0.0 there too, as in the group statistics. The temperature is 1,
as in every released script.
Writes Tests/TrainingTests/Fixtures/laser_official.json.

    python3 scripts/reference/laser_official.py
"""
import json
import os
import numpy as np


def reweighting_factor(rewards, finished):
    valid = finished == 1
    correct = int(((rewards == 1) & valid).sum())
    incorrect = int(((rewards == 0) & valid).sum())
    total = correct + incorrect
    if total == 0:
        return np.zeros(len(rewards))
    cr = total / (2 * correct) if correct > 0 else 0
    ir = total / (2 * incorrect) if incorrect > 0 else 0
    return np.where(rewards == 1, cr, ir).astype(float)


def ratio(lpz, ref, constant, kl_coef, temperature=1.0):
    if constant < 0.0:
        return (lpz * temperature - constant) * kl_coef
    return (lpz * temperature - ref * temperature) * kl_coef


def self_reward_loss(lpz, ref, constant, kl_coef, rewards, finished, balanced):
    r = ratio(lpz, ref, constant, kl_coef)
    w = reweighting_factor(rewards, finished) if balanced else np.ones(len(r))
    return float((((r - rewards) ** 2) * finished * w).mean())


def self_rewarding_advantages(lpz, ref, constant, kl_coef, finished, uids, advantages, threshold):
    clipped = np.clip(ratio(lpz, ref, constant, kl_coef), 0.0, 1.0)
    by_uid = {}
    for i, u in enumerate(uids):
        by_uid.setdefault(u, []).append(clipped[i] if finished[i] == 1 else 0.0)
    mean, std = {}, {}
    for u, v in by_uid.items():
        if len(v) == 1:
            mean[u], std[u] = 0.0, 1.0
        else:
            mean[u], std[u] = float(np.mean(v)), float(np.std(v, ddof=1))
    out = []
    for i, u in enumerate(uids):
        if std[u] > threshold:
            s = (clipped[i] - mean[u]) / std[u] if finished[i] == 1 else (0.0 - mean[u]) / std[u]
            out.append([s] * len(advantages[i]))
        else:
            out.append(list(advantages[i]))
    return out


def main():
    rng = np.random.default_rng(20261204)
    cases = []
    for k in range(12):
        sizes = [int(rng.integers(1, 6)) for _ in range(int(rng.integers(1, 4)))]
        uids = [g for g, n in enumerate(sizes) for _ in range(n)]
        n = len(uids)
        constant = [-23.0, 1.0, -5.0][k % 3]
        kl_coef = [0.1, 0.05, 0.2][(k // 3) % 3]
        balanced = k % 4 != 3
        coef = [0.1, 0.5, 1.0, 0.0][k % 4]
        threshold = [0.1, 0.0, 0.3][k % 3]
        rewards = rng.integers(0, 2, n).astype(float)
        finished = (rng.random(n) < 0.8).astype(float)
        if k == 5:
            finished[:] = 0.0
        lpz = constant + rng.normal(0, 6, n) if constant < 0 else rng.normal(-20, 5, n)
        lpz = np.minimum(lpz, -0.01)   # log-probabilities
        ref = rng.normal(-22, 3, n)
        if k == 8:
            finished[:] = 1.0
            lpz = (np.full(n, constant) if constant < 0 else ref) + 3.0   # every score the same: no group is mixed
        lengths = rng.integers(1, 5, n)
        advantages = [list(rng.normal(0, 1, int(m))) for m in lengths]
        loss = self_reward_loss(lpz, ref, constant, kl_coef, rewards, finished, balanced)
        a_self = self_rewarding_advantages(lpz, ref, constant, kl_coef, finished, uids, advantages, threshold)
        mixed = [[(1 - coef) * a + coef * s for a, s in zip(advantages[i], a_self[i])] for i in range(n)]
        weights = reweighting_factor(rewards, finished) if balanced else np.ones(n)
        cases.append({
            "kl_coef": kl_coef, "constant": constant, "balanced": balanced, "coef": coef, "threshold": threshold,
            "group_sizes": sizes, "rewards": rewards.tolist(), "finished": finished.tolist(),
            "lpz": lpz.tolist(), "ref_lpz": ref.tolist(), "advantages": advantages,
            "expected": {"weights": (weights * finished).tolist(), "loss": loss, "mixed": mixed},
        })
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "..", "..", "Tests", "TrainingTests", "Fixtures", "laser_official.json")
    with open(out, "w") as f:
        json.dump({"source": "RUCBM/LaSeR@48996f7", "cases": cases}, f, indent=1)
    print(f"wrote {len(cases)} cases to {os.path.normpath(out)}")


if __name__ == "__main__":
    main()
