#!/usr/bin/env python3
"""RTO's token rewards and advantages as the authors' code computes them, for Tokenwise's fixture test.

Re-implements with numpy in float64, step by step, from zkshan2002/RTO at commit
f2c12948c2d9ce68519d174b891b27e0672bc571:
- openrlhf/trainer/ppo_utils/experience_maker.py `_compute_dpo_rewards`: (logp_dpo - logp_base) * mask,
  times dpo_reward_scale when it is not 1 and positive, clamped to +-dpo_reward_clip when that is positive;
- openrlhf/models/utils.py `compute_reward`: the sequence reward r (clamped to +-10) at the last
  response token, plus -kl_coef * (logp - logp_base) at every token, plus the token rewards;
- experience_maker.py `get_advantages_and_returns`: GAE over the masked values and rewards,
  returns = advantages + values.
One response per row, no padding (Tokenwise's trajectories carry their own length). The request
gives `kl` = logp - logp_base and `token_rewards` = logp_dpo - logp_base, as Tokenwise's providers do.
Writes Tests/CreditTests/Fixtures/rto_official.json.

    python3 scripts/reference/rto_official.py
"""
import json
import os
import numpy as np


def dpo_rewards(dpo, base, mask, scale, clip):
    r = (dpo - base) * mask
    if scale != 1.0 and scale > 0:
        r = r * scale
    if clip > 0:
        r = np.clip(r, -clip, clip)
    return r


def compute_reward(r, kl_coef, logp, base, mask, token_reward):
    kl_coef = max(kl_coef, 0.0)
    kl = (logp - base) * mask
    reward = -kl_coef * kl
    reward[-1] += np.clip(r, -10, 10)
    return reward + token_reward


def advantages_and_returns(values, rewards, mask, gamma, lambd):
    values, rewards = values * mask, rewards * mask
    last, out = 0.0, []
    for t in reversed(range(len(rewards))):
        next_value = values[t + 1] if t < len(rewards) - 1 else 0.0
        delta = rewards[t] + gamma * next_value - values[t]
        last = delta + gamma * lambd * last
        out.append(last)
    adv = np.array(out[::-1])
    return adv, adv + values


def main():
    rng = np.random.default_rng(20261203)
    cases = []
    settings = [(0.05, 0.05, 0.01, 1.0, 0.95), (0.05, 0.0, 0.01, 1.0, 0.95), (1.0, 0.0, 0.0, 1.0, 1.0),
                (0.2, 0.1, 0.05, 0.99, 0.9), (1.0, 0.5, 0.1, 1.0, 0.95), (0.5, 0.0, 0.0, 0.9, 0.8)]
    for k, (scale, clip, kl_coef, gamma, lambd) in enumerate(settings * 3):
        groups, adv_out, ret_out = [], [], []
        for g in range(2):
            trajectories, ga, gr = [], [], []
            for i in range(3):
                n = int(rng.integers(1, 9))
                logp, base, dpo = (-rng.exponential(1.5, n) for _ in range(3))
                values = rng.normal(0, 0.5, n)
                r = float(rng.choice([0.0, 1.0, 0.3]))
                mask = np.ones(n)
                tr = dpo_rewards(dpo, base, mask, scale, clip)
                rewards = compute_reward(r, kl_coef, logp, base, mask, tr)
                a, ret = advantages_and_returns(values, rewards, mask, gamma, lambd)
                trajectories.append({"tokens": list(range(n)), "reward": r, "values": values.tolist(),
                                     "kl": (logp - base).tolist(), "token_rewards": (dpo - base).tolist()})
                ga.append(a.tolist())
                gr.append(ret.tolist())
            groups.append({"id": f"g{g}", "trajectories": trajectories})
            adv_out.append(ga)
            ret_out.append(gr)
        params = {"gamma": gamma, "lam": lambd, "kl_coef": kl_coef, "token_rewards": True,
                  "token_reward_scale": scale, "token_reward_clip": clip}
        cases.append({"request": {"method": "gae", "params": params, "groups": groups},
                      "advantages": adv_out, "returns": ret_out})
    out = os.path.join(os.path.dirname(__file__), "../../Tests/CreditTests/Fixtures/rto_official.json")
    with open(out, "w") as f:
        json.dump({"source": "zkshan2002/RTO @f2c1294 (numpy re-implementation, float64)", "cases": cases}, f)
    print(f"wrote {len(cases)} cases to {os.path.normpath(out)}")


if __name__ == "__main__":
    main()
