#!/usr/bin/env python3
"""AlignDistil's per-token loss as the authors' off-policy trainer computes it, for Tokenwise's
fixture test.

Re-implements with numpy in float64, line by line, the loss block of
OpenRLHF/openrlhf/trainer/aligndistil_offpolicy_trainer.py in songmzhang/AlignDistil at commit
f80ca4ef266f80f0bdc3e367ce7eaff8598cf6af (`reward_boost_type` aligndistil, theorem1,
theorem1_contrast, theorem1_adaptive): stu_lprobs = log_softmax(student), tea/ref the DPO and
reverse-DPO models' log_softmax; tvd = sum |p_tea - p_ref|; weight = tvd * beta2 + 1e-3 (adaptive)
or beta / beta2; the combined teacher logits; final = log_softmax(combined / kd_temperature);
loss_t = sum_v p_stu * (stu_lprobs - final) * (beta / weight, or beta2). A response's loss is the
sum of loss_t over its mask divided by the mask's count (`--reward_len_norm`), and the batch's the
mean over responses. Also the metrics: KL(student || dpo), KL(student || reverse), and the expected
reward sum_v p_stu * beta * (tea - ref). The gradient of the batch loss with respect to the
student's logits is written too (the analytic reverse-KL gradient: scale * p_j * ((l_j - t_j) - KL)
per token, times the response's 1/n and the batch's 1/B).
Writes Tests/ObjectivesTests/Fixtures/aligndistil_official.json.

    python3 scripts/reference/aligndistil_official.py
"""
import json
import os
import numpy as np


def log_softmax(x):
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def token_terms(s, d, r, kind, beta, beta2, temp):
    ls, ld, lr = log_softmax(s), log_softmax(d), log_softmax(r)
    ps = np.exp(ls)
    if kind in ("aligndistil", "theorem1_adaptive"):
        weight = np.abs(np.exp(ld) - np.exp(lr)).sum(-1) * beta2 + 1e-3
        scale = beta / weight
        w = weight[:, None]
        combined = w * (d - r) + d if kind == "aligndistil" else w * d + (1 - w) * r
    else:
        weight = np.full(len(s), beta / beta2)
        scale = np.full(len(s), beta2)
        w = beta / beta2
        combined = w * d + (1 - w) * r if kind == "theorem1" else w * (d - r) + d
    lt = log_softmax(combined / temp)
    kl = (ps * (ls - lt)).sum(-1)
    grad = scale[:, None] * ps * ((ls - lt) - kl[:, None])
    return {
        "loss": (kl * scale).tolist(), "weight": weight.tolist(),
        "kl_dpo": (ps * (ls - ld)).sum(-1).tolist(), "kl_reverse": (ps * (ls - lr)).sum(-1).tolist(),
        "reward": ((ps * (ld - lr)).sum(-1) * beta).tolist(), "grad": grad,
    }


def main():
    rng = np.random.default_rng(20261204)
    kinds = ["aligndistil", "theorem1", "theorem1_contrast", "theorem1_adaptive"]
    cases = []
    for k in range(12):
        vocab = int(rng.integers(3, 9))
        lengths = [int(rng.integers(1, 5)) for _ in range(int(rng.integers(1, 4)))]
        n = sum(lengths)
        s = rng.normal(0, 2, (n, vocab))
        d = s + rng.normal(0, 1.5, (n, vocab))
        r = d + rng.normal(0, 1.0 if k != 4 else 0.0, (n, vocab))   # case 4: the two teachers agree
        kind = kinds[k % 4]
        beta, beta2, temp = [0.1, 0.5][k % 2], [10.0, 15.0, 1.0][k % 3], [1.0, 0.7][(k // 4) % 2]
        t = token_terms(s, d, r, kind, beta, beta2, temp)
        owners = [i for i, m in enumerate(lengths) for _ in range(m)]
        per = np.array([1.0 / lengths[o] for o in owners]) / len(lengths)
        batch = float((np.array(t["loss"]) * per).sum())
        grad = (t.pop("grad") * per[:, None]).tolist()
        cases.append({"teacher": kind, "beta": beta, "beta2": beta2, "temperature": temp, "lengths": lengths,
                      "student": s.tolist(), "dpo": d.tolist(), "reverse": r.tolist(),
                      "expected": dict(t, batch_loss=batch, grad=grad)})
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "..", "..", "Tests", "ObjectivesTests", "Fixtures", "aligndistil_official.json")
    with open(out, "w") as f:
        json.dump({"source": "songmzhang/AlignDistil@f80ca4e", "cases": cases}, f, indent=1)
    print(f"wrote {len(cases)} cases to {os.path.normpath(out)}")


if __name__ == "__main__":
    main()
