#!/usr/bin/env python3
"""GiGPO advantages as the authors' code computes them, for Tokenwise's fixture test.

Re-implements with numpy in float64 `compute_gigpo_outcome_advantage` of langfengQ/verl-agent
(gigpo/core_gigpo.py at upstream commit d0b97244c50f17fb43a6ef0a15bca0e95a044ff7, read from the fork
vanzll/verl-agent whose head is that commit; the file last changed in 29e3e8b3e3412aff53b1e4a461dac77a8eec19bd),
line by line, with its inputs built as verl/trainer/ppo/ray_trainer.py and
agent_system/reward_manager/episode.py build them. A batch row is one step (turn) of an episode:
- token_level_rewards: the episode's total env reward at the row's last token (EpisodeRewardManager),
  so a row's score is the episode return R;
- step_rewards: `compute_step_discounted_returns`, R_k = r_k + γ R_{k+1} over the episode's rows;
- `episode_norm_reward` (compute_mean_std_cross_steps=True, the only value the trainer uses: every
  row counts, so an episode counts once per step): a group with one entry has mean 0 and std 1,
  otherwise mean and torch.std (unbiased); (R − mean)/(std + eps) in mode mean_std_norm, R − mean
  in mean_norm;
- `build_step_group`: rows of one group (uid) with equal anchor observations (no similarity);
- `step_norm_reward`: the same per step group, except that a one-row group's mean is its own
  value (so its A^S is 0);
- A = A^E + step_advantage_w · A^S on every response token of the row.
Defaults here (Tokenwise's): mode mean_std_norm, γ 0.95, ω 1, eps 1e-6 (the ALFWorld script
examples/gigpo_trainer/run_alfworld.sh; ppo_trainer.yaml defaults to mode mean_norm and γ 1.0).
No invalid-action penalty (its coefficient 0, or every action valid). Cases with
`cross_steps: false` call episode_norm_reward with compute_mean_std_cross_steps=False, which the
official entry point never does. A one-episode group follows the official statistics: a lone sample
has mean 0 and std 1 (A^E = R/(1 + eps) in mean_std_norm), a lone episode of several turns A^E = 0.
`tokenwise_differs` names a known difference for the cases
Tokenwise cannot match. Each fixture case is a complete `tokenwise credit` request plus the
expected per-token advantages. Writes Tests/CreditTests/Fixtures/gigpo_official.json.

    python3 scripts/reference/gigpo_official.py
"""
import json
import os
from collections import defaultdict
import numpy as np


def compute_step_discounted_returns(rewards, traj_uids, gamma):
    returns_by_traj = {}
    for uid in np.unique(traj_uids):
        traj_indices = np.where(traj_uids == uid)[0]
        traj_rewards = rewards[traj_indices]
        traj_returns = np.zeros_like(traj_rewards)
        running_return = 0
        for t in reversed(range(len(traj_rewards))):
            running_return = traj_rewards[t] + gamma * running_return
            traj_returns[t] = running_return
        returns_by_traj[uid] = traj_returns
    all_returns = np.zeros_like(rewards)
    for i, uid in enumerate(traj_uids):
        traj_indices = np.where(traj_uids == uid)[0]
        idx_in_traj = np.where(traj_indices == i)[0][0]
        all_returns[i] = returns_by_traj[uid][idx_in_traj]
    return all_returns


def episode_norm_reward(token_level_rewards, response_mask, index, traj_index, epsilon=1e-6, remove_std=True,
                        compute_mean_std_cross_steps=True):
    response_length = token_level_rewards.shape[-1]
    scores = token_level_rewards.sum(axis=-1)
    id2score, id2mean, id2std = defaultdict(list), {}, {}
    seen_pairs = set()
    bsz = scores.shape[0]
    for i in range(bsz):
        if (index[i], traj_index[i]) in seen_pairs:
            continue
        id2score[index[i]].append(scores[i])
        if not compute_mean_std_cross_steps:
            seen_pairs.add((index[i], traj_index[i]))
    for idx in id2score:
        if len(id2score[idx]) == 1:
            id2mean[idx], id2std[idx] = 0.0, 1.0
        else:
            id2mean[idx] = np.mean(id2score[idx])
            id2std[idx] = np.std(id2score[idx], ddof=1)
    scores = scores.copy()
    for i in range(bsz):
        if remove_std:
            scores[i] = scores[i] - id2mean[index[i]]
        else:
            scores[i] = (scores[i] - id2mean[index[i]]) / (id2std[index[i]] + epsilon)
    return np.tile(scores[:, None], [1, response_length]) * response_mask


def build_step_group(anchor_obs, index):
    step_group_uids = np.empty(len(anchor_obs), dtype=object)
    for idx in np.unique(index):
        indices = np.where(index == idx)[0]
        obs_group = anchor_obs[indices]
        clusters = defaultdict(list)
        for i, obs in enumerate(obs_group):
            clusters[obs].append(indices[i])
        for k, (obs, original_indices) in enumerate(clusters.items()):
            uid = f"{idx}/{k}"                                  # uuid4 in the official code
            for original_idx in original_indices:
                step_group_uids[original_idx] = uid
    return step_group_uids


def step_norm_reward(step_rewards, response_mask, index, epsilon=1e-6, remove_std=True):
    response_length = response_mask.shape[-1]
    scores = step_rewards.copy()
    id2score, id2mean, id2std = defaultdict(list), {}, {}
    bsz = scores.shape[0]
    for i in range(bsz):
        id2score[index[i]].append(scores[i])
    for idx in id2score:
        if len(id2score[idx]) == 1:
            id2mean[idx], id2std[idx] = np.mean(id2score[idx]), 1.0
        else:
            id2mean[idx] = np.mean(id2score[idx])
            id2std[idx] = np.std(id2score[idx], ddof=1)
    for i in range(bsz):
        if remove_std:
            scores[i] = scores[i] - id2mean[index[i]]
        else:
            scores[i] = (scores[i] - id2mean[index[i]]) / (id2std[index[i]] + epsilon)
    return np.tile(scores[:, None], [1, response_length]) * response_mask


def compute_gigpo_outcome_advantage(token_level_rewards, step_rewards, response_mask, anchor_obs, index, traj_index,
                                    epsilon=1e-6, step_advantage_w=1.0, mode="mean_norm", cross_steps=True):
    remove_std = {"mean_std_norm": False, "mean_norm": True}[mode]
    episode_advantages = episode_norm_reward(token_level_rewards, response_mask, index, traj_index, epsilon, remove_std,
                                             compute_mean_std_cross_steps=cross_steps)
    step_group_uids = build_step_group(anchor_obs, index)
    step_advantages = step_norm_reward(step_rewards, response_mask, step_group_uids, epsilon, remove_std)
    return episode_advantages + step_advantage_w * step_advantages


def official(groups, gamma, w, mode, cross_steps):
    """Lays the episodes out as verl-agent's step rows and runs the official computation."""
    rows = []  # (group, episode, turn)
    for g, episodes in enumerate(groups):
        for e, ep in enumerate(episodes):
            for k in range(len(ep["turns"])):
                rows.append((g, e, k))
    width = max(groups[g][e]["turns"][k]["length"] for g, e, k in rows)
    token_level_rewards = np.zeros((len(rows), width))
    response_mask = np.zeros((len(rows), width))
    env_rewards = np.zeros(len(rows))
    anchor_obs = np.empty(len(rows), dtype=object)
    index = np.empty(len(rows), dtype=object)
    traj_index = np.empty(len(rows), dtype=object)
    for row, (g, e, k) in enumerate(rows):
        ep = groups[g][e]
        turn = ep["turns"][k]
        response_mask[row, :turn["length"]] = 1
        token_level_rewards[row, turn["length"] - 1] = ep["reward"]
        env_rewards[row] = turn["reward"]
        anchor_obs[row] = turn["key"]
        index[row] = f"uid{g}"
        traj_index[row] = f"traj{g}.{e}"
    step_rewards = compute_step_discounted_returns(env_rewards, traj_index, gamma)
    adv = compute_gigpo_outcome_advantage(token_level_rewards, step_rewards, response_mask, anchor_obs, index, traj_index,
                                          step_advantage_w=w, mode=mode, cross_steps=cross_steps)
    out = [[[] for _ in episodes] for episodes in groups]
    for row, (g, e, k) in enumerate(rows):
        out[g][e] += adv[row, :groups[g][e]["turns"][k]["length"]].tolist()
    return out


def random_group(rng, size, states, real):
    episodes = []
    for _ in range(size):
        turns = []
        for k in range(int(rng.integers(1, 6))):
            key = "s0" if k == 0 else f"s{int(rng.integers(0, states))}"   # every episode starts at the group's state
            turns.append({"key": key, "length": int(rng.integers(1, 5)), "reward": 0.0})
        if real:
            for t in turns:
                t["reward"] = round(float(rng.normal()), 3) if rng.random() < 0.5 else 0.0
        elif rng.random() < 0.5:
            turns[-1]["reward"] = 10.0                          # ALFWorld-style success reward
        episodes.append({"turns": turns, "reward": float(sum(t["reward"] for t in turns))})
    return episodes


def request(groups, params, rng):
    out = []
    for g, episodes in enumerate(groups):
        trajs = []
        for ep in episodes:
            states, steps, n = [], [], 0
            for t in ep["turns"]:
                states.append({"index": n, "key": t["key"]})
                n += t["length"]
                steps.append({"index": n - 1, "reward": t["reward"]})
            trajs.append({"tokens": [int(x) for x in rng.integers(0, 50, n)], "reward": ep["reward"],
                          "states": states, "step_rewards": steps})
        out.append({"id": f"env{g}", "trajectories": trajs})
    return {"method": "gigpo", "params": params, "groups": out}


def main():
    rng = np.random.default_rng(20250514)
    variants = [({}, (0.95, 1.0, "mean_std_norm", True)),
                ({"norm": "mean"}, (0.95, 1.0, "mean_norm", True)),
                ({"gamma": 1.0, "norm": "mean"}, (1.0, 1.0, "mean_norm", True)),
                ({"step_weight": 0.5}, (0.95, 0.5, "mean_std_norm", True)),
                ({"cross_steps": False}, (0.95, 1.0, "mean_std_norm", False))]
    cases = []
    for case in range(40):
        params, (gamma, w, mode, cross) = variants[case % len(variants)]
        kind = ["random", "random", "real", "few_states", "edges", "equal", "unique_states", "singleton"][case // 5]
        groups = []
        for g in range(int(rng.integers(1, 4))):
            size = int(rng.integers(2, 7))
            if kind == "few_states":
                groups.append(random_group(rng, size, 2, False))
            elif kind == "real":
                groups.append(random_group(rng, size, 4, True))
            else:
                groups.append(random_group(rng, size, 4, rng.random() < 0.3))
        if kind == "edges":
            groups[0][0]["turns"] = [{"key": "s0", "length": 1, "reward": 1.0}]          # a one-turn, one-token episode
            groups[0][0]["reward"] = 1.0
            groups[0][1]["turns"] = [{"key": "s0", "length": 2, "reward": 0.0}, {"key": "s0", "length": 1, "reward": 0.0},
                                     {"key": "s1", "length": 3, "reward": 2.0}]           # a state visited twice
            groups[0][1]["reward"] = 2.0
        if kind == "equal":
            for ep in groups[0]:
                for t in ep["turns"]:
                    t["reward"] = 0.0
                ep["turns"][-1]["reward"] = 1.0
                ep["reward"] = 1.0                              # equal returns: A^E = 0
        if kind == "unique_states":
            for g, episodes in enumerate(groups):
                for e, ep in enumerate(episodes):
                    for k, t in enumerate(ep["turns"]):
                        t["key"] = f"u{g}.{e}.{k}"              # every step group a singleton: A^S = 0
        differs = None
        if kind == "singleton" and cross:
            ep = random_group(rng, 1, 3, False)[0]
            if len(ep["turns"]) == 1:
                ep["turns"].append({"key": "s1", "length": 2, "reward": 0.0})
            ep["turns"][-1]["reward"] = 10.0
            ep["reward"] = float(sum(t["reward"] for t in ep["turns"]))
            groups.append([ep])                                 # a one-episode group with several turns
        adv = official(groups, gamma, w, mode, cross)
        cases.append({"kind": kind, "tokenwise_differs": differs, "request": request(groups, params, rng),
                      "advantages": [[[round(x, 12) for x in t] for t in g] for g in adv]})
    out = os.path.join(os.path.dirname(__file__), "../../Tests/CreditTests/Fixtures/gigpo_official.json")
    with open(out, "w") as f:
        json.dump({"source": "langfengQ/verl-agent@d0b97244c50f17fb43a6ef0a15bca0e95a044ff7 gigpo/core_gigpo.py "
                             "compute_gigpo_outcome_advantage", "cases": cases}, f)
    print(f"{len(cases)} cases → {os.path.normpath(out)}")


if __name__ == "__main__":
    main()
