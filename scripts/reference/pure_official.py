#!/usr/bin/env python3
"""PURE advantages as the authors' code computes them, for Tokenwise's fixture test.

Re-implements, with numpy in float64, the advantage path of CJReinforce/PURE
(commit 41f9363b8cc4af044b7fc5f7f9bbbf62139e9553) for one group of n responses, no KL:
- openrlhf/utils/utils.py `turn_process_reward_logits_to_reward`: w = softmax(-PR / 0.1) over a
  response's steps (uniform 1/K with --disable_weighted_reward), r = w * PR;
- openrlhf/trainer/ppo_utils/experience_maker.py: outcome O_i = sum_k r_ik; the `step` baseline
  (sum_j O_j/K_j - O_i/K_i)/(n-1) at every step end, or the `token` baseline
  (sum_j O_j - O_i)/(sum_j L_j - L_i) times each step's token count (score_ids are end + 1, so a
  step counts the tokens before its end token); VR = solved - 1, leave-one-out centred, times
  verifiable_reward_coef, added at the last token; returns = right-to-left cumulative sum; then 0 at
  every step end (the last token is always one) unless --nomask_separator_adv.
In the released code the last token always ends a step (the PRM scores it), so every case here
has a step there. Writes Tests/CreditTests/Fixtures/pure_official.json.

    python3 scripts/reference/pure_official.py
"""
import json
import os
import numpy as np


def pure(lengths, steps, prs, solved, baseline, weighted=True, coef=1.0, mask=True, temperature=0.1):
    n = len(lengths)
    r = []
    for pr in prs:
        pr = np.asarray(pr, dtype=np.float64)
        if weighted:
            logits = -pr / temperature
            w = np.exp(logits - logits.max())
            w /= w.sum()
        else:
            w = np.full(len(pr), 1.0 / len(pr))
        r.append(w * pr)
    outcome = np.array([x.sum() for x in r])
    num_steps = np.array([len(s) for s in steps], dtype=np.float64)
    length = np.asarray(lengths, dtype=np.float64)
    for i in range(n):
        if baseline == "step":
            avg = outcome / num_steps
            r[i] = r[i] - (avg.sum() - avg[i]) / (n - 1)
        else:
            rate = (outcome.sum() - outcome[i]) / (length.sum() - length[i])
            score_ids = [s + 1 for s in steps[i]]
            counts = [score_ids[0] - 1] + [score_ids[k] - score_ids[k - 1] - 1 for k in range(1, len(score_ids))]
            r[i] = r[i] - rate * np.asarray(counts, dtype=np.float64)
    vr = np.asarray(solved, dtype=np.float64) - 1
    vr = vr - (vr.sum() - vr) / (n - 1)
    out = []
    for i in range(n):
        rewards = np.zeros(lengths[i])
        rewards[steps[i]] += r[i]
        rewards[lengths[i] - 1] += vr[i] * coef
        returns = np.flip(np.cumsum(np.flip(rewards)))
        if mask:
            returns[steps[i]] = 0
        out.append(returns.tolist())
    return out


def main():
    rng = np.random.default_rng(41)
    cases = []
    for case in range(24):
        n = int(rng.integers(2, 6))
        lengths = [int(x) for x in rng.integers(1, 14, n)]
        steps = []
        for L in lengths:
            inner = sorted(set(int(x) for x in rng.integers(0, L, int(rng.integers(0, 4))))) if L > 1 else []
            steps.append([s for s in inner if s != L - 1] + [L - 1])
        prs = [[round(float(x), 3) for x in rng.uniform(-1, 1, len(s))] for s in steps]
        solved = [int(x) for x in rng.integers(0, 2, n)]
        for baseline, weighted, mask in [("step", True, True), ("token", True, True), ("token", False, False), ("step", True, False)]:
            cases.append({"baseline": baseline, "weighted": weighted, "mask_separators": mask, "lengths": lengths,
                          "steps": steps, "step_rewards": prs, "rewards": solved,
                          "advantages": pure(lengths, steps, prs, solved, baseline, weighted, mask=mask)})
    out = os.path.join(os.path.dirname(__file__), "../../Tests/CreditTests/Fixtures/pure_official.json")
    with open(out, "w") as f:
        json.dump({"source": "CJReinforce/PURE@41f9363b8cc4af044b7fc5f7f9bbbf62139e9553 experience_maker.py, utils.py", "cases": cases}, f)
    print(f"{len(cases)} cases → {os.path.normpath(out)}")


if __name__ == "__main__":
    main()
