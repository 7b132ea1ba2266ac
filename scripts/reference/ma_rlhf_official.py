#!/usr/bin/env python3
"""MA-RLHF's macro-action GAE as the authors' code computes it, for Tokenwise's fixture test.

Re-implements with numpy in float64, line by line, from ernie-research/MA-RLHF at commit
807551d519d738b2f446a2fd878f9afd2cbb4e7a, applications/DeepSpeed-Chat/dschat/rlhf/ppo_trainer.py:
- `compute_rewards`: r_t = -kl_ctl * (logp_t - ref_logp_t), the (clipped) reward score added at the
  last response token;
- `fixed_ngram_selection`: boundaries start, start+n, start+2n, ... over the response positions and
  mask.size(1) - 1 (the last response position) at the end;
- `modeling_macro_action`: split sizes diff(boundaries) + [1]; a macro's value / reward is
  sum(x * sigma) with sigma from `value_function` (equal, unit, position);
- `get_advantages_and_returns` (DeepSpeed-Chat's) over the macro index, returns = A + V per macro;
- `actor_loss_fn` / `critic_loss_fn` give every token of macro i the macro's advantage and return.
The one departure: when (R - 1) is a multiple of n the official loop appends the last position twice
and the split has an empty macro (value 0, reward 0) before the last token; Tokenwise keeps each
boundary once, as the same file's `parsing_selection` does (list(set(...))), so that n = 1 is
token-level GAE. Such cases carry `official_duplicate_boundary: true`, and the expected values are
the de-duplicated ones. Rewards stay inside the official clip (±2.5). Batch size 1 per call, as the
official code supports (it splits by row 0's mask). Writes Tests/CreditTests/Fixtures/ma_rlhf_official.json.

    python3 scripts/reference/ma_rlhf_official.py
"""
import json
import os
import numpy as np


def fixed_ngram_selection(start, mask, ngram):
    current_count = 0
    ma_length = [start]
    for i in range(mask[:, start:].shape[1] - 1):
        current_count += mask[0, start + i]
        if current_count == ngram:
            ma_length.append(start + i + 1)
            current_count = 0
    ma_length.append(mask.shape[1] - 1)
    return ma_length


def modeling_macro_action(variables, mask, start, ma_lengths, value_function):
    split_list = list(np.diff(np.array(ma_lengths)))
    split_list += [1]
    cuts = np.cumsum(split_list)[:-1]
    splited_vars = np.split(variables[:, start:], cuts, axis=-1)
    splited_mask = np.split(mask[:, start:], cuts, axis=-1)
    ma_variables = np.zeros((variables.shape[0], len(split_list)))
    for idx, (var_i, mask_i) in enumerate(zip(splited_vars, splited_mask)):
        masked_vars = var_i[mask_i != 0]
        if value_function == 'equal':
            sigma = np.ones_like(masked_vars) / max(masked_vars.size, 1)
        elif value_function == 'unit':
            sigma = np.zeros_like(masked_vars)
            if masked_vars.size:
                sigma[-1] = 1.0   # the official sigma[:, -1] on this 1-D tensor: its last entry
        elif value_function == 'position':
            sigma = 1.0 / (np.arange(masked_vars.size) + 1)
            sigma = sigma / np.sum(sigma) if masked_vars.size else sigma
        ma_variables[:, idx] = np.sum(masked_vars * sigma) if masked_vars.size > 0 else 0.0
    return ma_variables, split_list


def get_advantages_and_returns(values, rewards, start, gamma, lam):
    lastgaelam = 0
    advantages_reversed = []
    length = rewards.shape[-1]
    for t in reversed(range(start, length)):
        nextvalues = values[:, t + 1] if t < length - 1 else 0.0
        delta = rewards[:, t] + gamma * nextvalues - values[:, t]
        lastgaelam = delta + gamma * lam * lastgaelam
        advantages_reversed.append(lastgaelam)
    advantages = np.stack(advantages_reversed[::-1], axis=1)
    returns = advantages + values[:, start:]
    return advantages, returns


def official(prompt_len, values, logp, ref_logp, score, ngram, kl_ctl, gamma, lam, value_function):
    """Per-token advantages and returns of one response (batch size 1)."""
    R = len(values)
    L = prompt_len + R
    start = prompt_len - 1
    pad = np.zeros(start)
    v = np.concatenate([pad, values])[None, :]                      # [1, L-1]
    lp = np.concatenate([pad, logp])[None, :]
    rlp = np.concatenate([pad, ref_logp])[None, :]
    action_mask = np.ones((1, L - 1))
    rewards = -kl_ctl * (lp - rlp)
    ends = start + int(action_mask[:, start:].sum()) + 1
    rewards[0, start:ends][-1] += np.clip(score, -2.5, 2.5)
    ma = fixed_ngram_selection(start, action_mask, ngram)
    duplicate = len(ma) != len(set(ma))
    ma = sorted(set(ma))
    mv, split = modeling_macro_action(v, action_mask, start, ma, value_function)
    mr, _ = modeling_macro_action(rewards, action_mask, start, ma, value_function)
    adv, ret = get_advantages_and_returns(mv, mr, 0, gamma, lam)
    tok_adv, tok_ret = [], []
    for i, size in enumerate(split):
        tok_adv += [float(adv[0, i])] * size
        tok_ret += [float(ret[0, i])] * size
    assert len(tok_adv) == R
    return tok_adv, tok_ret, duplicate


def main():
    rng = np.random.default_rng(2410)
    cases = []
    settings = [(5, 0.0, 1.0, 0.95, 'equal'), (5, 0.05, 1.0, 0.95, 'equal'), (3, 0.1, 0.9, 0.8, 'equal'),
                (1, 0.05, 1.0, 0.95, 'equal'), (2, 0.05, 1.0, 1.0, 'unit'), (4, 0.05, 0.99, 0.9, 'position'),
                (7, 0.02, 1.0, 0.95, 'equal'), (16, 0.05, 1.0, 0.95, 'equal')]
    for k in range(24):
        n, kl, gamma, lam, vf = settings[k % len(settings)]
        groups = []
        adv_g, ret_g, dup_any = [], [], False
        for g in range(2):
            trajs, advs, rets = [], [], []
            for i in range(int(rng.integers(1, 4))):
                R = int(rng.choice([1, 2, 3, 4, 5, 6, 9, 10, 11, 16, 17, 23]))
                values = rng.normal(0.3, 0.5, R)
                logp = -rng.exponential(1.0, R)
                ref = -rng.exponential(1.0, R)
                score = float(rng.choice([0.0, 1.0, -0.5, 2.0]))
                a, r, dup = official(int(rng.integers(1, 6)), values, logp, ref, score, n, kl, gamma, lam, vf)
                dup_any |= dup
                t = {"tokens": [int(x) for x in rng.integers(0, 50, R)], "reward": score, "values": values.tolist()}
                if kl != 0:
                    t["kl"] = (logp - ref).tolist()
                trajs.append(t)
                advs.append(a)
                rets.append(r)
            groups.append({"id": f"p{g}", "trajectories": trajs})
            adv_g.append(advs)
            ret_g.append(rets)
        params = {"macro": "fixed", "macro_n": n, "kl_coef": kl, "gamma": gamma, "lam": lam, "macro_value": vf}
        cases.append({"kind": f"n{n}_{vf}", "official_duplicate_boundary": dup_any,
                      "request": {"method": "gae", "params": params, "groups": groups},
                      "advantages": adv_g, "returns": ret_g})
    out = {"source": "ernie-research/MA-RLHF @807551d ppo_trainer.py (fixed n-gram, modeling_macro_action, get_advantages_and_returns)",
           "cases": cases}
    path = os.path.join(os.path.dirname(__file__), "../../Tests/CreditTests/Fixtures/ma_rlhf_official.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {len(cases)} cases to {os.path.normpath(path)}")


if __name__ == "__main__":
    main()
