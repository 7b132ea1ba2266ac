#!/usr/bin/env python3
"""iStar's advantages as the authors' code computes them, for Tokenwise's fixture test.

Re-implements with numpy in float64, line by line, `episode_rloo_reward` and `step_rloo_reward`
of CharacterRL-iStar/istar/core_istar.py in Tongyi-ConvAI/Tongyi-Character at commit
dfee104ed75b3c0d568514153ee6d82bbd67c303 (`compute_istar_rloo_advantage`). verl-agent keeps one
batch row per turn, tagged with its group (`uid`) and episode (`traj_uid`); each row's episode
score is the episode's reward, its step score the turn's implicit step reward. Both functions take,
per group, the first row of each (uid, traj_uid) pair into the mean ("seen_pairs"), and give a row
n/(n-1)·(score - mean) when the group has n > 1 such entries, else its score. The advantage of a
row is episode + step_advantage_w * step. Reading "all" is the same without the de-duplication in
the step part (every turn counted, n the group's turns). Rows are visited in episode order, turn
by turn, so "first" is each episode's first turn.
Writes Tests/CreditTests/Fixtures/istar_official.json.

    python3 scripts/reference/istar_official.py
"""
import json
import os
import numpy as np


def rloo(scores, uids, trajs, dedup):
    scores = np.array(scores, dtype=float)
    id2score, seen = {}, set()
    for i in range(len(scores)):
        if dedup and (uids[i], trajs[i]) in seen:
            continue
        id2score.setdefault(uids[i], []).append(scores[i])
        seen.add((uids[i], trajs[i]))
    out = scores.copy()
    for i in range(len(scores)):
        n = len(id2score[uids[i]])
        mean = 0.0 if n == 1 else float(np.mean(id2score[uids[i]]))
        if n > 1:
            out[i] = scores[i] * n / (n - 1) - mean * n / (n - 1)
    return out


def main():
    rng = np.random.default_rng(20261204)
    cases = []
    for k in range(10):
        groups = []
        for g in range(int(rng.integers(1, 4))):
            episodes = []
            for e in range(int(rng.integers(1, 5))):
                turns = int(rng.integers(1, 5))
                episodes.append({"reward": float(rng.choice([0.0, 1.0, 0.5, -0.1])),
                                 "turn_rewards": [float(x) for x in rng.normal(0, 0.3, turns)]})
            groups.append(episodes)
        weight, mean = [1.0, 0.5, 0.0][k % 3], ["first", "all"][k % 2]
        uids, trajs, ep, st = [], [], [], []
        for g, episodes in enumerate(groups):
            for e, x in enumerate(episodes):
                for r in x["turn_rewards"]:
                    uids.append(g); trajs.append(e); ep.append(x["reward"]); st.append(r)
        a = rloo(ep, uids, trajs, True) + weight * rloo(st, uids, trajs, mean == "first")
        cases.append({"step_weight": weight, "step_mean": mean, "groups": groups, "expected": a.tolist()})
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "..", "..", "Tests", "CreditTests", "Fixtures", "istar_official.json")
    with open(out, "w") as f:
        json.dump({"source": "Tongyi-ConvAI/Tongyi-Character@dfee104", "cases": cases}, f, indent=1)
    print(f"wrote {len(cases)} cases to {os.path.normpath(out)}")


if __name__ == "__main__":
    main()
