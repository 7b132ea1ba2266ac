#!/usr/bin/env python3
"""SPO-chain and SPO-tree advantages as the authors' code computes them, for Tokenwise's fixture test.

Re-implements with numpy in float64 the advantage path of AIFrameResearch/SPO
(commit b9fc6a263dec54e28137fd488a9b9c0e0d026025), line by line:

SPO-chain (src/treetune/episode_generators/math_episode_generator_with_mc_advantages.py)
- `_create_value_estimation_requests`: p = exp(old logprobs); cut points np.where(p < 0.9)[0] - 1,
  then [::cutpoint_interval] (constructor default 5); a cut point c is valued at the prefix
  response[:c + 1] (c = -1: the bare prompt) by the mean reward of Monte-Carlo rollouts;
- `_compute_token_advantages`: token_values[-1] = score, token_values[c] = V(c); no cut point: all 0;
  a leading -1 cut point is the base; walking left to right every valued position gets
  V - base (0 while there is no base yet) and becomes the base; unvalued positions copy the
  advantage on their right; then advantages[i] = 0 where p_i > 0.9 (hard-coded, whatever
  use_prob_mask says).
SPO-tree
- src/treetune/inference_strategies/hybrid_inference_strategy.py `_construct_tree`: a finished
  child (or a node at max_depth) is a leaf with its reward; an inner node's reward is np.mean of its
  children's rewards and reward_std their np.std (biased);
- src/treetune/episode_generators/tree_episode_generator.py `extract_edges_from_tree`: one training
  sample per non-root node, response = the node's text, advantage (rloo) child - parent or (grpo)
  (child - parent) / (parent_std + 1e-8); with only_adv_greater_than_zero (default True) an edge is
  kept iff advantage + (BoK(child) - BoK(parent)) != 0, BoK(v) = 1 - (1 - v)^4;
- hybrid_episode_generator.py `_compute_token_advantages`: the edge advantage on every token of the
  sample (no probability zeroing here: that line is commented out).
Both (src/treetune/trainers/ppo_trainer.py `_training_step` with precomputed advantages,
use_prob_mask: true, whiten_advantages: true; src/treetune/trainers/utils.py `masked_whiten`,
`get_global_statistics_no_move`):
    mask = response & (exp(old_logprobs) < 0.9)  (the whole response mask if that is empty)
    mean = Σ A·mask / n,  var = Σ (A − mean)²·mask / n · n/(n − 1),  A ← (A − mean)·rsqrt(var + 1e-8)
and the loss (`_compute_actor_loss`) keeps only tokens with exp(old_logprobs) < 0.9.

The official trainer whitens per training micro-batch (per_device_train_batch_size episodes on every
rank, all-reduced); here each fixture case is one such micro-batch holding all of its episodes.
Cases whose kept tokens number one are left out (the official Bessel factor n/(n-1) divides by 0
there: NaN). Empty responses are left out (token_values[-1] fails on them; the tree generator drops
empty edges).

Each fixture case is a complete `tokenwise credit` request plus the expected per-token advantages
and weights; weight 1 = the token is in an official training sample and in its loss mask.
SPO-tree samples are nodes, not paths: a node's sample is laid onto the first trajectory (in the
group's order) through it, its copies on later trajectories get weight 0, as Tokenwise does.
Advantages are compared where the expected weight is 1 (elsewhere the official value is carried
by no loss). `tokenwise_differs` names a known difference for the cases Tokenwise cannot match.
Writes Tests/CreditTests/Fixtures/spo_official.json.

    python3 scripts/reference/spo_official.py
"""
import json
import math
import os
import numpy as np

PROB = 0.9  # hard-coded in the official code


# ----------------------------------------------------------------------------- SPO-chain
def cutpoints_of(logprobs, cutpoint_interval=5):
    """`_create_value_estimation_requests`."""
    response_probs = np.exp(np.asarray(logprobs, dtype=np.float64))
    cutpoints = np.where(response_probs < 0.9)[0]
    cutpoints = cutpoints - 1
    cutpoints = cutpoints[::cutpoint_interval]
    return [int(c) for c in cutpoints]


def chain_token_advantages(score, cutpoints, cutpoints_values, response_prob):
    """`MathEpisodeGeneratorWithMCAdvantages._compute_token_advantages` (values and std dropped)."""
    n = len(response_prob)
    token_values = [None] * n
    advantages = [None] * n
    token_values[-1] = score
    base = None
    if len(cutpoints) == 0:
        token_values = [score] * n
        advantages = [0] * n
        return token_values, advantages
    if cutpoints[0] == -1:
        base = cutpoints_values[0]
        cutpoints = cutpoints[1:]
        cutpoints_values = cutpoints_values[1:]
    for idx, value in zip(cutpoints, cutpoints_values):
        token_values[idx] = value
    for i in range(len(token_values)):
        if token_values[i] is not None:
            if base is None:
                advantages[i] = 0
            else:
                advantages[i] = token_values[i] - base
            base = token_values[i]
    for i in range(len(token_values) - 1, -1, -1):
        if advantages[i] is None:
            advantages[i] = advantages[i + 1]
    for i in range(len(token_values)):
        if response_prob[i] > 0.9:
            advantages[i] = 0
    return token_values, advantages


# ----------------------------------------------------------------------------- SPO-tree
def bok(value, k=4):
    return 1 - (1 - value) ** k


def extract_edges_from_tree(tree, adv_method="rloo", only_adv_greater_than_zero=True):
    """`TreeEpisodeUtils.extract_edges_from_tree` (texts replaced by node ids)."""
    edges = []

    def dfs(node, parent=None):
        if parent is not None:
            parent_reward = parent["reward"]
            parent_reward_std = parent["reward_std"]
            child_reward = node["reward"]
            if adv_method == "rloo":
                advantage = child_reward - parent_reward
            elif adv_method == "grpo":
                advantage = (child_reward - parent_reward) / (parent_reward_std + 1e-8)
            else:
                raise ValueError(adv_method)
            prover_advantage = bok(child_reward) - bok(parent_reward)
            pav_advantage = advantage + prover_advantage
            if not only_adv_greater_than_zero or pav_advantage != 0:
                edges.append({"id": node["id"], "advantage": advantage, "logprobs": node["logprobs"]})
        for child in node.get("children", []):
            dfs(child, node)

    dfs(tree)
    return edges


def random_tree(rng, g, vocab=50):
    """A tree as `_construct_tree` builds it: a finished child is a leaf, a node at max_depth too."""
    max_depth = int(rng.integers(1, 4))
    branch = [int(rng.integers(1, 5)) for _ in range(max_depth)]
    finish = float(rng.uniform(0.2, 0.7))
    real = rng.random() < 0.25
    counter = [0]

    def reward():
        return round(float(rng.uniform(0, 1)), 3) if real else float(rng.integers(0, 2))

    def node_at(depth):
        counter[0] += 1
        span = int(rng.integers(1, 6))
        return {"id": f"g{g}n{counter[0]}", "tokens": [int(t) for t in rng.integers(0, vocab, span)],
                "logprobs": random_logprobs(rng, span), "depth": depth}

    def expand(node, depth):
        if depth == max_depth:
            node["reward"] = reward()
            return
        children = [node_at(depth + 1) for _ in range(branch[depth])]
        node["children"] = children
        for child in children:
            if rng.random() < finish:
                child["reward"] = reward()
            else:
                expand(child, depth + 1)
        child_rewards = [child["reward"] for child in children]
        node["reward"] = float(np.mean(child_rewards))
        node["reward_std"] = float(np.std(child_rewards))

    root = {"id": "", "depth": 0}
    expand(root, 0)
    return root


def tree_paths(root):
    paths = []

    def dfs(node, chain):
        chain = chain + [node] if node["id"] else chain
        if "children" not in node:
            paths.append(chain)
        for child in node.get("children", []):
            dfs(child, chain)

    dfs(root, [])
    return paths


# ----------------------------------------------------------------------------- both
def masked_whiten(values, mask, logprobs):
    """`masked_whiten(..., logprobs, distributed=True, unbiased_variance=True)` over one micro-batch."""
    mask_bak = mask
    prob_mask = np.exp(logprobs) < 0.9
    mask = mask & prob_mask
    if mask.sum() == 0:
        mask = mask_bak
    m = mask.astype(np.float64)
    count = m.sum()
    mean = (values * m).sum() / count
    var = (((values - mean) ** 2) * m).sum() / count
    var = var * (count / (count - 1))
    return (values - mean) / np.sqrt(var + 1e-8), var, int(count)


def random_logprobs(rng, n):
    """Mostly confident tokens, some below 0.9; never within 1e-6 of the threshold (6 decimals)."""
    lps = []
    while len(lps) < n:
        p = float(rng.uniform(0.9, 1.0)) if rng.random() < 0.65 else float(rng.uniform(0.05, 0.9))
        lp = round(math.log(p), 6)
        if abs(math.exp(lp) - PROB) > 1e-6:
            lps.append(lp)
    return lps


def rounded(rows):
    return [[[round(x, 12) for x in r] for r in g] for g in rows]


def pad(rows, fill):
    width = max(len(r) for r in rows)
    return np.array([list(r) + [fill] * (width - len(r)) for r in rows], dtype=np.float64), \
        np.array([[k < len(r) for k in range(width)] for r in rows])


# ----------------------------------------------------------------------------- cases
def chain_case(rng, kind, whiten=True):
    interval = int(rng.choice([1, 2, 5]))
    groups, flat = [], []
    for g in range(int(rng.integers(1, 4))):
        trajs = []
        for i in range(int(rng.integers(2, 6))):
            n = int(rng.integers(1, 17))
            lp = random_logprobs(rng, n)
            if kind == "edges" and i == 0:
                lp = [round(math.log(0.95), 6)] * n                       # no cut point: all 0
            if kind == "edges" and i == 1:
                lp[0] = round(math.log(0.3), 6)                           # a -1 cut point (the prompt) is the base
            if kind == "edges" and i == 2:
                n, lp = 1, [round(math.log(0.5), 6)]                      # one token, cut at -1
            cuts = cutpoints_of(lp, interval)
            reward = float(rng.integers(0, 2))
            if kind == "equal":
                values = [reward] * len(cuts)                   # every segment value equals R: all 0
            elif rng.random() < 0.3:
                values = [round(float(v), 3) for v in rng.uniform(0, 1, len(cuts))]
            else:
                values = [float(rng.integers(0, 5)) / 4 for _ in cuts]   # 4 MC rollouts
            t = {"tokens": [int(x) for x in rng.integers(0, 50, n)], "reward": reward, "logprobs": lp,
                 "segments": cuts, "segment_values": values}
            _, adv = chain_token_advantages(reward, cuts, values, np.exp(lp))
            trajs.append(t)
            flat.append((g, i, [float(a) for a in adv], lp))
        groups.append({"id": f"q{g}", "trajectories": trajs})
    if kind == "tiny_variance":
        for grp in groups:
            for t in grp["trajectories"]:
                t["reward"] = 0.5
                t["segment_values"] = [0.5 + 1e-4 * (k % 2) for k in range(len(t["segments"]))]
        flat = []
        for g, grp in enumerate(groups):
            for i, t in enumerate(grp["trajectories"]):
                _, adv = chain_token_advantages(t["reward"], t["segments"], t["segment_values"], np.exp(t["logprobs"]))
                flat.append((g, i, [float(a) for a in adv], t["logprobs"]))
    adv, mask = pad([f[2] for f in flat], 0.0)
    lps, _ = pad([f[3] for f in flat], 0.0)
    if whiten:
        with np.errstate(divide="ignore", invalid="ignore"):
            adv, var, count = masked_whiten(adv, mask, lps)
        if count < 2 or (kind != "tiny_variance" and 0 < var < 1e-3):
            return None
    else:
        var = None
    keep = mask & (np.exp(lps) < 0.9)
    advantages = [[[] for _ in grp["trajectories"]] for grp in groups]
    weights = [[[] for _ in grp["trajectories"]] for grp in groups]
    for row, (g, i, a, lp) in enumerate(flat):
        advantages[g][i] = adv[row, :len(a)].tolist()
        weights[g][i] = keep[row, :len(a)].astype(np.float64).tolist()
    params = {} if whiten else {"whiten": False}
    differs = None
    return {"kind": kind, "cutpoint_interval": interval, "variance": var, "tokenwise_differs": differs,
            "request": {"method": "spo_chain", "params": params, "groups": groups},
            "advantages": rounded(advantages), "weights": weights}


def tree_case(rng, kind, adv_method="rloo", whiten=True):
    groups, samples, layout = [], [], []
    for g in range(int(rng.integers(1, 4))):
        root = random_tree(rng, g)
        if kind == "equal" and g == 0:
            def flatten(node):
                node["reward"], node["reward_std"] = 1.0, 0.0
                for c in node.get("children", []):
                    flatten(c)
            flatten(root)                                       # every edge has advantage 0: none trains
        paths = tree_paths(root)
        order = rng.permutation(len(paths))
        paths = [paths[k] for k in order]
        trajs = []
        for path in paths:
            tokens, lps, starts = [], [], []
            for node in path:
                starts.append(len(tokens))
                tokens += node["tokens"]
                lps += node["logprobs"]
            trajs.append({"tokens": tokens, "reward": path[-1]["reward"], "logprobs": lps,
                          "tree_path": [node["id"] for node in path], "segments": starts})
        groups.append({"id": f"q{g}", "trajectories": trajs})
        layout.append(paths)
        samples += extract_edges_from_tree(root, adv_method=adv_method)
    if not samples:
        return None
    adv, mask = pad([[e["advantage"]] * len(e["logprobs"]) for e in samples], 0.0)
    lps, _ = pad([e["logprobs"] for e in samples], 0.0)
    if whiten:
        with np.errstate(divide="ignore", invalid="ignore"):
            adv, var, count = masked_whiten(adv, mask, lps)
        if count < 2 or var < 1e-3:
            return None
    keep = mask & (np.exp(lps) < 0.9)
    by_id = {e["id"]: row for row, e in enumerate(samples)}
    advantages, weights = [], []
    for paths in layout:
        seen = set()
        ga, gw = [], []
        for path in paths:
            a, w = [], []
            for node in path:
                n = len(node["tokens"])
                row = by_id.get(node["id"])
                if row is None or node["id"] in seen:
                    a += [0.0] * n
                    w += [0.0] * n
                else:
                    a += adv[row, :n].tolist()
                    w += keep[row, :n].astype(np.float64).tolist()
                seen.add(node["id"])
            ga.append(a)
            gw.append(w)
        advantages.append(ga)
        weights.append(gw)
    params = {}
    if adv_method != "rloo":
        params["advantage"] = adv_method
    if not whiten:
        params["whiten"] = False
    return {"kind": kind, "tokenwise_differs": None,
            "request": {"method": "spo_tree", "params": params, "groups": groups},
            "advantages": rounded(advantages), "weights": weights}


def main():
    rng = np.random.default_rng(20250530)
    chain = []
    specs = [("random", True)] * 14 + [("edges", True)] * 4 + [("equal", True)] * 2 + [("random", False)] * 4 \
        + [("edges", False)] * 2 + [("tiny_variance", True)]
    for kind, whiten in specs:
        c = None
        while c is None:
            c = chain_case(rng, kind, whiten)
        chain.append(c)
    tree = []
    specs = [("random", "rloo", True)] * 14 + [("equal", "rloo", True)] * 2 + [("random", "grpo", True)] * 6 \
        + [("random", "rloo", False)] * 4 + [("random", "grpo", False)] * 2
    for kind, method, whiten in specs:
        c = None
        while c is None:
            c = tree_case(rng, kind, method, whiten)
        tree.append(c)
    out = os.path.join(os.path.dirname(__file__), "../../Tests/CreditTests/Fixtures/spo_official.json")
    with open(out, "w") as f:
        json.dump({"source": "AIFrameResearch/SPO@b9fc6a263dec54e28137fd488a9b9c0e0d026025 "
                             "math_episode_generator_with_mc_advantages.py, tree_episode_generator.py, "
                             "hybrid_inference_strategy.py, hybrid_episode_generator.py, trainers/utils.py, ppo_trainer.py",
                   "chain": chain, "tree": tree}, f)
    print(f"{len(chain)} chain and {len(tree)} tree cases → {os.path.normpath(out)}")


if __name__ == "__main__":
    main()
