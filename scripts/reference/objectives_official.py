#!/usr/bin/env python3
"""GSPO, TDPO, SparsePO, TGDPO and F-DPO losses as the authors' released code computes them, for
Tokenwise's fixture test (Tests/ObjectivesTests/OfficialObjectiveTests.swift).

Each case is a complete `tokenwise objective` request plus the official loss and the gradient of
that loss with respect to every per-token log-probability in the request, as torch autograd would
give it (stop-gradients honoured, torch's tie rules for clamp/maximum). numpy, float64 throughout.
Every gradient is checked here against central finite differences of the official forward, with the
stop-gradient terms held at the evaluation point (which is what autograd differentiates).

Sources (re-implemented line by line; no code copied):
1. GSPO -- volcengine/verl @ b178a3cd56f58b2d502255daba591e92833930a7,
   verl/trainer/ppo/core_algos.py: `compute_policy_loss_gspo` and `agg_loss`.
     nak = logp - old;  L = clamp(sum(mask), 1);  seq = sum(nak * mask) / L
     log s_it = logp - sg(logp) + sg(seq);  log s_it = clamp(log s_it, max=10);  s_it = exp(.)
     pg = max(-A s_it, -A clamp(s_it, 1 - eps_low, 1 + eps_high))
     loss = agg_loss(pg, mask, "seq-mean-token-mean") (forced): per row sum(pg*mask)/(L_raw + 1e-8),
            mean over rows with L_raw > 0 (dp_size 1, no global batch info).
   eps 3e-4 / 4e-4 are verl's GSPO recipe values (examples/gspo_trainer/*.sh; ActorConfig's own
   default clip_ratio is 0.2). verl's "gspo" IS the GSPO-token form: Tokenwise `ratio: gspo_token`.
   Tokenwise `ratio: sequence` (gradient through s_i, no stop-gradient) equals it when the advantage
   is constant within each response, which is how the `sequence` cases are built.
2. TDPO -- Vance0124/Token-level-Direct-Preference-Optimization @
   2a736ecb285394a8419b461816bce1ba3b093cc9, trainers.py: `_tdpo_get_batch_logps` and `tdpo_loss`,
   `get_batch_metrics` (losses.mean()). Per-token KL = sum_v p_ref (log p_ref - log p_theta), i.e.
   KL(ref || theta) >= 0, which is the request's `kl`. Defaults in config/loss/tdpo.yaml: beta 0.1,
   alpha 0.5, if_tdpo2 false.
3. SparsePO -- huawei-noah/HEBO @ 04f4ece8c7ac95d1466763880def692fc2215f6f,
   SparsePO/src/trainers/sparse_trainer.py `get_batch_loss_metrics` (independent reward / KL masks;
   defaults mask_on_reward = mask_on_kl = True, l1_norm_param_u = l1_norm_param_d = 0) and
   SparsePO/src/trainers/mapo_trainer.py `mapo_loss` (one mask for both terms). Both define
   token_kl = sum_v p_ref (log pi - log p_ref) = -KL(ref || theta); the request's `kl` is its
   negation, and  loss = -logsigmoid(beta (u - d)),  u = sum m_u (logp - ref) (chosen - rejected),
   d = sum m_d token_kl (chosen - rejected).  The masks here are given constants (`weights`,
   `kl_weights`); the official learned masks (sparse_trainer's mask model) are not reproduced.
4. TGDPO -- dvlab-research/TGDPO @ dd889823897c4e8c3f1490e520fbab505774381d,
   src/llamafactory/train/tgdpo/trainer.py `dpo_loss` (loss_type "sigmoid") with per-token logps
   from src/llamafactory/train/trainer_utils.py `get_batch_logps` (the second definition: per-token,
   masked). loss = -logsigmoid(sum beta (1 + alpha beta r_w) D_w - sum beta (1 - alpha beta r_l) D_l),
   D = logp - ref, r = rm_logp - ref (no grad). Defaults: pref_beta 0.1, tgdpo_alpha 0.5.

Cases marked `known_difference` are where Tokenwise is known to depart from the official code
(the test skips them and says why); every other case must match to 1e-6.

    python3 scripts/reference/objectives_official.py
"""
import json
import os
import numpy as np

VERL = "volcengine/verl@b178a3cd56f58b2d502255daba591e92833930a7 verl/trainer/ppo/core_algos.py (compute_policy_loss_gspo, agg_loss)"
TDPO = "Vance0124/Token-level-Direct-Preference-Optimization@2a736ecb285394a8419b461816bce1ba3b093cc9 trainers.py (_tdpo_get_batch_logps, tdpo_loss)"
HEBO = ("huawei-noah/HEBO@04f4ece8c7ac95d1466763880def692fc2215f6f SparsePO/src/trainers/sparse_trainer.py "
        "(get_batch_loss_metrics), SparsePO/src/trainers/mapo_trainer.py (mapo_loss)")
TGDPO = ("dvlab-research/TGDPO@dd889823897c4e8c3f1490e520fbab505774381d src/llamafactory/train/tgdpo/trainer.py (dpo_loss), "
         "src/llamafactory/train/trainer_utils.py (get_batch_logps)")
FDPO = ("VectorInstitute/Factual-Preference-Alignment@8f66ee2599527e9310c5462730ba4b64322a3856 "
        "src/aixpert/training/training/factualdpo_trainer.py (FactualDPOTrainer.dpo_loss, loss_type sigmoid)")


# ----------------------------------------------------------------------------------------------
# helpers

def pad(rows, value=0.0):
    width = max(1, max(len(r) for r in rows))
    out = np.full((len(rows), width), value, dtype=np.float64)
    mask = np.zeros((len(rows), width), dtype=np.float64)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
        mask[i, :len(r)] = 1
    return out, mask


def unpad(x, lengths):
    return [[float(v) for v in x[i, :n]] for i, n in enumerate(lengths)]


def logsigmoid(x):
    return -np.logaddexp(0.0, -x)


def sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


def fd_grad(f, x, mask, h=1e-6):
    """Central differences of f at x for every unmasked entry (f: array -> float)."""
    g = np.zeros_like(x)
    for idx in zip(*np.nonzero(mask)):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        g[idx] = (f(xp) - f(xm)) / (2 * h)
    return g


def check(name, analytic, numeric, mask):
    a, n = analytic * mask, numeric * mask
    err = np.max(np.abs(a - n)) if a.size else 0.0
    scale = max(1.0, np.max(np.abs(n)) if n.size else 0.0)
    assert err <= 1e-6 * scale, f"{name}: analytic vs finite-difference gradient differ by {err}"


# ----------------------------------------------------------------------------------------------
# 1. GSPO (verl compute_policy_loss_gspo)

def verl_gspo(logp, old, adv, mask, eps_low, eps_high, logp_sg=None):
    """Forward of compute_policy_loss_gspo + agg_loss('seq-mean-token-mean'); `logp_sg` is the value
    the .detach() terms see (defaults to logp)."""
    if logp_sg is None:
        logp_sg = logp
    lengths = np.maximum(mask.sum(-1), 1)
    seq = ((logp_sg - old) * mask).sum(-1) / lengths                 # negative_approx_kl_seq, detached
    log_r = logp - logp_sg + seq[:, None]
    log_r = np.minimum(log_r, 10.0)
    r = np.exp(log_r)
    pg1 = -adv * r
    pg2 = -adv * np.clip(r, 1 - eps_low, 1 + eps_high)
    pg = np.maximum(pg1, pg2)
    raw = mask.sum(-1)
    seq_losses = (pg * mask).sum(-1) / (raw + 1e-8)
    seq_mask = (raw > 0).astype(np.float64)
    return float((seq_losses * seq_mask).sum() / seq_mask.sum())


def verl_gspo_grad(logp, old, adv, mask, eps_low, eps_high):
    """torch autograd of verl_gspo w.r.t. logp: clamp(max) passes where log_r <= 10; clamp(lo, hi)
    passes where lo <= r <= hi; maximum splits a tie in half (so an unclipped token gets it whole)."""
    lengths = np.maximum(mask.sum(-1), 1)
    seq = ((logp - old) * mask).sum(-1) / lengths
    log_r = np.broadcast_to(seq[:, None], logp.shape)
    through_clamp = (log_r <= 10.0).astype(np.float64)
    r = np.exp(np.minimum(log_r, 10.0))
    lo, hi = 1 - eps_low, 1 + eps_high
    pg1 = -adv * r
    pg2 = -adv * np.clip(r, lo, hi)
    inside = ((r >= lo) & (r <= hi)).astype(np.float64)
    w1 = np.where(pg1 > pg2, 1.0, np.where(pg1 == pg2, 0.5, 0.0))
    w2 = np.where(pg2 > pg1, 1.0, np.where(pg1 == pg2, 0.5, 0.0))
    dpg_dr = w1 * (-adv) + w2 * (-adv) * inside
    dpg = dpg_dr * r * through_clamp                                  # d r / d logp = r (own token only)
    raw = mask.sum(-1)
    seq_mask = (raw > 0).astype(np.float64)
    return dpg * mask / (raw + 1e-8)[:, None] * seq_mask[:, None] / seq_mask.sum()


def gspo_case(name, ratio, logp_rows, old_rows, adv_rows, eps=None, known=None):
    eps_low, eps_high = eps if eps else (3e-4, 4e-4)
    logp, mask = pad(logp_rows)
    old, _ = pad(old_rows)
    adv, _ = pad(adv_rows)
    loss = verl_gspo(logp, old, adv, mask, eps_low, eps_high)
    grad = verl_gspo_grad(logp, old, adv, mask, eps_low, eps_high)
    check(name, grad, fd_grad(lambda x: verl_gspo(x, old, adv, mask, eps_low, eps_high, logp_sg=logp), logp, mask), mask)
    objective = {"ratio": ratio}
    if eps:
        objective.update({"seq_eps_low": eps_low, "seq_eps_high": eps_high})
    trajectories = [{"logprobs": list(map(float, l)), "old_logprobs": list(map(float, o)), "advantages": list(map(float, a))}
                    for l, o, a in zip(logp_rows, old_rows, adv_rows)]
    return {"name": name, "family": "gspo", "source": VERL,
            "request": {"objective": objective, "trajectories": trajectories},
            "loss": loss, "grad_logprobs": unpad(grad, [len(r) for r in logp_rows]), "known_difference": known}


def gspo_cases(rng):
    cases = []

    def rows(n_rows, lengths=None, spread=3e-4, const_adv=True):
        lengths = lengths or [int(x) for x in rng.integers(1, 9, n_rows)]
        logp = [np.round(rng.normal(-1.2, 0.6, n), 6) for n in lengths]
        old = [np.round(l - rng.normal(0, spread, len(l)) - rng.normal(0, spread), 9) for l in logp]
        if const_adv:
            adv = [np.full(len(l), np.round(rng.normal(0, 1), 6)) for l in logp]
        else:
            adv = [np.round(rng.normal(0, 1, len(l)), 6) for l in logp]
        return logp, old, adv

    # Random batches: ragged (padding), clipped and unclipped rows, both signs of advantage.
    for k in range(8):
        logp, old, adv = rows(int(rng.integers(1, 6)), const_adv=True)
        cases.append(gspo_case(f"gspo_token random {k}", "gspo_token", logp, old, adv))
        cases.append(gspo_case(f"sequence random {k} (advantage constant per response)", "sequence", logp, old, adv))
    for k in range(4):
        logp, old, adv = rows(int(rng.integers(2, 6)), const_adv=False)
        cases.append(gspo_case(f"gspo_token per-token advantages {k}", "gspo_token", logp, old, adv))
    # Edge cases.
    l1 = [np.array([-0.7]), np.array([-2.1]), np.array([-0.3])]
    cases.append(gspo_case("gspo_token length-1 responses", "gspo_token", l1,
                           [l1[0] - 1e-4, l1[1] + 2e-3, l1[2] - 5e-3], [np.array([1.0]), np.array([-0.5]), np.array([2.0])]))
    eq = np.array([-1.0, -0.5, -2.0, -0.25])
    cases.append(gspo_case("gspo_token equal log-ratios in a row", "gspo_token", [eq, eq[:2]],
                           [eq - 2e-4, eq[:2] + 1e-3], [np.full(4, 0.8), np.full(2, -1.3)]))
    cases.append(gspo_case("sequence equal log-ratios in a row", "sequence", [eq, eq[:2]],
                           [eq - 2e-4, eq[:2] + 1e-3], [np.full(4, 0.8), np.full(2, -1.3)]))
    same = [np.array([-1.0, -2.0, -0.5]), np.array([-0.1])]
    cases.append(gspo_case("gspo_token on-policy (ratio 1)", "gspo_token", same, same,
                           [np.array([1.0, -1.0, 0.5]), np.array([-2.0])]))
    cases.append(gspo_case("gspo_token zero advantages", "gspo_token", same, [s - 1e-3 for s in same], [np.zeros(3), np.zeros(1)]))
    lp, old, adv = rows(3, lengths=[5, 1, 12], spread=0.05, const_adv=True)
    cases.append(gspo_case("gspo_token eps 0.2/0.28 (explicit)", "gspo_token", lp, old, adv, eps=(0.2, 0.28)))
    cases.append(gspo_case("sequence eps 0.2/0.28 (explicit)", "sequence", lp, old, adv, eps=(0.2, 0.28)))
    # A response with no tokens (all padding): verl's seq_mask leaves the row out of the mean.
    part = [np.array([-0.4, -1.1]), np.array([]), np.array([-2.0, -0.6, -0.9])]
    part_old = [part[0] + 1e-4, part[1], part[2] - 2e-4]
    part_adv = [np.full(2, 1.5), np.array([]), np.full(3, -0.7)]
    cases.append(gspo_case("gspo_token an empty response in the batch", "gspo_token", part, part_old, part_adv))
    cases.append(gspo_case("sequence an empty response in the batch", "sequence", part, part_old, part_adv))
    # Extreme log-ratios: verl clamps log s_it = logp - sg(logp) + sg(seq) at 10 after adding (no
    # gradient past it), and averages unclamped token log-ratios.
    big = np.array([-0.5, -0.5, -0.5])
    cases.append(gspo_case("gspo_token mean log-ratio above 10", "gspo_token", [big], [big - 12.0], [np.full(3, -1.0)]))
    cases.append(gspo_case("sequence mean log-ratio above 10", "sequence", [big], [big - 12.0], [np.full(3, -1.0)]))
    spike = np.array([-0.5, -0.5, -0.5, -0.5])
    cases.append(gspo_case("gspo_token one token log-ratio 25", "gspo_token", [spike], [spike - np.array([25.0, 0, 0, 0])],
                           [np.full(4, -1.0)]))
    return cases


# ----------------------------------------------------------------------------------------------
# Preference losses: the official code starts from logits; these helpers build per-token inputs the
# way the official code does (shifted labels, -100 on the prompt and padding, log_softmax/softmax).

def official_token_stats(rng, lengths, vocab=7, prompt=1, policy_shift=0.4):
    """Random policy/reference logits and labels; returns, per response, the official per-token
    policy logp, reference logp, KL(ref || theta) (TDPO's per_position_kl; SparsePO's token_kl is its
    negation), computed with the official shift and -100 masking."""
    width = prompt + max(lengths)
    n = len(lengths)
    ref_logits = rng.normal(0, 1.5, (n, width, vocab))
    pol_logits = ref_logits + rng.normal(0, policy_shift, (n, width, vocab))
    labels = np.full((n, width), -100, dtype=np.int64)
    for i, L in enumerate(lengths):
        labels[i, prompt:prompt + L] = rng.integers(0, vocab, L)
    labels = labels[:, 1:].copy()
    pol, ref = pol_logits[:, :-1, :], ref_logits[:, :-1, :]
    loss_mask = labels != -100
    labels[labels == -100] = 0

    def log_softmax(x):
        m = x.max(-1, keepdims=True)
        return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))

    vocab_logps = log_softmax(pol)
    ref_ps = np.exp(log_softmax(ref))
    ref_logps = np.log(ref_ps)                       # TDPO: reference_vocab_ps.log()
    kl = (ref_ps * (ref_logps - vocab_logps)).sum(-1)
    logp = np.take_along_axis(vocab_logps, labels[..., None], 2)[..., 0]
    rlogp = np.take_along_axis(ref_logps, labels[..., None], 2)[..., 0]
    out = []
    for i, L in enumerate(lengths):
        sel = loss_mask[i]
        out.append((logp[i, sel], rlogp[i, sel], kl[i, sel]))
    return out


def side_json(logp, ref, **extra):
    d = {"logprobs": list(map(float, logp)), "ref_logprobs": list(map(float, ref))}
    for k, v in extra.items():
        if v is not None:
            d[k] = list(map(float, v))
    return d


def pref_grads(fw, xw, xl, mw, ml):
    """Finite differences of a pair-batch loss f(xw, xl) in each side's logprobs."""
    gw = fd_grad(lambda x: fw(x, xl), xw, mw)
    gl = fd_grad(lambda x: fw(xw, x), xl, ml)
    return gw, gl


# ----------------------------------------------------------------------------------------------
# 2. TDPO (tdpo_loss)

def tdpo_loss(margin_w, margin_l, kl_w, kl_l, beta, alpha, tdpo2):
    chosen_rejected = margin_w - margin_l
    if not tdpo2:
        logits = chosen_rejected - (kl_l - kl_w)
    else:
        logits = chosen_rejected - alpha * (kl_l - kl_w)   # kl_w.detach(): the kl is a given constant here
    return -logsigmoid(beta * logits)


def tdpo_case(rng, name, lw, ll, tdpo2, beta=None, alpha=None, data=None):
    b = 0.1 if beta is None else beta
    a = 0.5 if alpha is None else alpha
    if data is None:
        data = official_token_stats(rng, lw + ll)
    w, l = data[:len(lw)], data[len(lw):]
    Pw, mw = pad([x[0] for x in w]); Rw, _ = pad([x[1] for x in w]); Kw, _ = pad([x[2] for x in w])
    Pl, ml = pad([x[0] for x in l]); Rl, _ = pad([x[1] for x in l]); Kl, _ = pad([x[2] for x in l])

    def f(xw, xl):
        margin_w = ((xw - Rw) * mw).sum(-1)          # (logps_margin * loss_mask).sum(-1)
        margin_l = ((xl - Rl) * ml).sum(-1)
        return float(tdpo_loss(margin_w, margin_l, (Kw * mw).sum(-1), (Kl * ml).sum(-1), b, a, tdpo2).mean())

    loss = f(Pw, Pl)
    margin_w, margin_l = ((Pw - Rw) * mw).sum(-1), ((Pl - Rl) * ml).sum(-1)
    kw, kl = (Kw * mw).sum(-1), (Kl * ml).sum(-1)
    z = margin_w - margin_l - ((kl - kw) if not tdpo2 else a * (kl - kw))
    coeff = b * sigmoid(-b * z) / len(lw)            # d(-logsigmoid(bz))/dz = -b sigmoid(-bz)
    gw, gl = -coeff[:, None] * mw, coeff[:, None] * ml
    nw, nl = pref_grads(f, Pw, Pl, mw, ml)
    check(name + " chosen", gw, nw, mw)
    check(name + " rejected", gl, nl, ml)
    objective = {"name": "tdpo2" if tdpo2 else "tdpo1"}
    if beta is not None:
        objective["beta"] = beta
    if alpha is not None:
        objective["alpha"] = alpha
    pairs = [{"chosen": side_json(*w[i][:2], kl=w[i][2]), "rejected": side_json(*l[i][:2], kl=l[i][2])} for i in range(len(lw))]
    official_rewards = {"chosen": (b * (margin_w + kw)).tolist(), "rejected": (b * (margin_l + kl)).tolist()}
    return {"name": name, "family": "tdpo", "source": TDPO, "request": {"objective": objective, "pairs": pairs},
            "loss": loss,
            "grad_logprobs": [{"chosen": unpad(gw, lw)[i], "rejected": unpad(gl, ll)[i]} for i in range(len(lw))],
            "official_rewards": official_rewards, "known_difference": None}


def tdpo_cases(rng):
    cases = []
    for k in range(5):
        n = int(rng.integers(1, 5))
        lw, ll = [int(x) for x in rng.integers(1, 10, n)], [int(x) for x in rng.integers(1, 10, n)]
        cases.append(tdpo_case(rng, f"tdpo1 random {k} (defaults)", lw, ll, tdpo2=False))
        cases.append(tdpo_case(rng, f"tdpo2 random {k} (defaults)", lw, ll, tdpo2=True))
    for k in range(3):
        n = int(rng.integers(1, 5))
        lw, ll = [int(x) for x in rng.integers(1, 10, n)], [int(x) for x in rng.integers(1, 10, n)]
        beta, alpha = float(np.round(rng.uniform(0.05, 1.0), 3)), float(np.round(rng.uniform(0.1, 2.0), 3))
        cases.append(tdpo_case(rng, f"tdpo1 beta {beta}", lw, ll, tdpo2=False, beta=beta))
        cases.append(tdpo_case(rng, f"tdpo2 beta {beta} alpha {alpha}", lw, ll, tdpo2=True, beta=beta, alpha=alpha))
    cases.append(tdpo_case(rng, "tdpo1 length-1 responses", [1, 1], [1, 1], tdpo2=False))
    cases.append(tdpo_case(rng, "tdpo2 length-1 responses", [1, 1], [1, 1], tdpo2=True, alpha=0.3))
    same = official_token_stats(rng, [4, 2])
    cases.append(tdpo_case(rng, "tdpo1 chosen equals rejected", [4, 2], [4, 2], tdpo2=False, data=same + same))
    cases.append(tdpo_case(rng, "tdpo2 chosen equals rejected", [4, 2], [4, 2], tdpo2=True, data=same + same))
    cases.append(tdpo_case(rng, "tdpo2 padding: long chosen, short rejected", [12, 3, 7], [2, 11, 1], tdpo2=True, beta=0.5))
    return cases


# ----------------------------------------------------------------------------------------------
# 3. SparsePO (sparse_trainer.get_batch_loss_metrics, mapo_trainer.mapo_loss)

def sparse_trainer_losses(Pw, Rw, Tw, mw, rw_w, kl_w, Pl, Rl, Tl, ml, rw_l, kl_l, beta):
    """Tw/Tl: the official token_kl (= -KL(ref || theta)); rw_*/kl_*: the reward and KL masks."""
    chosen_reward = rw_w * (Pw - Rw)
    rejected_reward = rw_l * (Pl - Rl)
    chosen_reward = (chosen_reward * mw).sum(-1)
    rejected_reward = (rejected_reward * ml).sum(-1)
    u = chosen_reward - rejected_reward
    chosen_token_kl = ((kl_w * Tw) * mw).sum(-1)
    rejected_token_kl = ((kl_l * Tl) * ml).sum(-1)
    d = chosen_token_kl - rejected_token_kl
    losses = -logsigmoid(beta * (u - d))
    # l1_norm_param_u = l1_norm_param_d = 0 (defaults): no mask-norm terms.
    return losses, beta * (chosen_reward + chosen_token_kl), beta * (rejected_reward + rejected_token_kl)


def mapo_losses(Pw, Rw, Tw, mw, m_w, Pl, Rl, Tl, ml, m_l, beta):
    """mapo_loss: the masks arrive already multiplied by the loss mask; logps are loss-masked."""
    chosen_mask, rejected_mask = m_w * mw, m_l * ml
    chosen_u = (chosen_mask * (Pw * mw - Rw * mw)).sum(-1)
    rejected_u = (rejected_mask * (Pl * ml - Rl * ml)).sum(-1)
    chosen_d = (chosen_mask * (Tw * mw)).sum(-1)
    rejected_d = (rejected_mask * (Tl * ml)).sum(-1)
    logits = (chosen_u - rejected_u) - (chosen_d - rejected_d)
    return -logsigmoid(beta * logits), beta * (chosen_u + chosen_d), beta * (rejected_u + rejected_d)


def random_mask(rng, n, kind):
    if kind == "ones":
        return np.ones(n)
    m = np.round(rng.uniform(0, 1, n), 6)
    if kind == "sparse":
        m[rng.random(n) < 0.4] = 0.0
    return m


def sparsepo_case(rng, name, lw, ll, beta=None, independent=True, kind="dense", masks=None, data=None):
    b = 0.1 if beta is None else beta
    if data is None:
        data = official_token_stats(rng, lw + ll)
    w, l = data[:len(lw)], data[len(lw):]
    if masks is None:
        mu = [random_mask(rng, n, kind) for n in lw + ll]
        md = [random_mask(rng, n, kind) for n in lw + ll] if independent else mu
    else:
        mu, md = masks
    Pw, mw = pad([x[0] for x in w]); Rw, _ = pad([x[1] for x in w]); Tw, _ = pad([-x[2] for x in w])
    Pl, ml = pad([x[0] for x in l]); Rl, _ = pad([x[1] for x in l]); Tl, _ = pad([-x[2] for x in l])
    Uw, _ = pad(mu[:len(lw)]); Ul, _ = pad(mu[len(lw):]); Dw, _ = pad(md[:len(lw)]); Dl, _ = pad(md[len(lw):])

    if independent:
        def f(xw, xl):
            return float(sparse_trainer_losses(xw, Rw, Tw, mw, Uw, Dw, xl, Rl, Tl, ml, Ul, Dl, b)[0].mean())
        _, rc, rr = sparse_trainer_losses(Pw, Rw, Tw, mw, Uw, Dw, Pl, Rl, Tl, ml, Ul, Dl, b)
    else:
        def f(xw, xl):
            return float(mapo_losses(xw, Rw, Tw, mw, Uw, xl, Rl, Tl, ml, Ul, b)[0].mean())
        _, rc, rr = mapo_losses(Pw, Rw, Tw, mw, Uw, Pl, Rl, Tl, ml, Ul, b)
        # The two official trainers agree when the masks are one.
        alt = float(sparse_trainer_losses(Pw, Rw, Tw, mw, Uw, Uw, Pl, Rl, Tl, ml, Ul, Ul, b)[0].mean())
        assert abs(alt - f(Pw, Pl)) < 1e-12
    loss = f(Pw, Pl)
    u = ((Uw * (Pw - Rw)) * mw).sum(-1) - ((Ul * (Pl - Rl)) * ml).sum(-1)
    d = ((Dw * Tw) * mw).sum(-1) - ((Dl * Tl) * ml).sum(-1)
    coeff = b * sigmoid(-b * (u - d)) / len(lw)
    gw, gl = -coeff[:, None] * Uw * mw, coeff[:, None] * Ul * ml
    nw, nl = pref_grads(f, Pw, Pl, mw, ml)
    check(name + " chosen", gw, nw, mw)
    check(name + " rejected", gl, nl, ml)
    objective = {"name": "sparsepo"}
    if beta is not None:
        objective["beta"] = beta
    pairs = []
    for i in range(len(lw)):
        j = len(lw) + i
        pairs.append({"chosen": side_json(w[i][0], w[i][1], kl=w[i][2], weights=mu[i], kl_weights=md[i] if independent else None),
                      "rejected": side_json(l[i][0], l[i][1], kl=l[i][2], weights=mu[j], kl_weights=md[j] if independent else None)})
    return {"name": name, "family": "sparsepo", "source": HEBO, "request": {"objective": objective, "pairs": pairs},
            "loss": loss,
            "grad_logprobs": [{"chosen": unpad(gw, lw)[i], "rejected": unpad(gl, ll)[i]} for i in range(len(lw))],
            "official_rewards": {"chosen": rc.tolist(), "rejected": rr.tolist()}, "known_difference": None}


def sparsepo_cases(rng):
    cases = []
    for k in range(4):
        n = int(rng.integers(1, 5))
        lw, ll = [int(x) for x in rng.integers(1, 10, n)], [int(x) for x in rng.integers(1, 10, n)]
        cases.append(sparsepo_case(rng, f"sparsepo independent masks {k} (sparse_trainer, defaults)", lw, ll, kind="sparse"))
        cases.append(sparsepo_case(rng, f"sparsepo one mask {k} (mapo_loss, defaults)", lw, ll, independent=False))
    for k in range(2):
        n = int(rng.integers(1, 5))
        lw, ll = [int(x) for x in rng.integers(1, 10, n)], [int(x) for x in rng.integers(1, 10, n)]
        cases.append(sparsepo_case(rng, f"sparsepo one mask beta 0.8 {k} (the MaPO recipe's beta)", lw, ll, beta=0.8, independent=False))
        cases.append(sparsepo_case(rng, f"sparsepo independent masks beta 0.8 {k}", lw, ll, beta=0.8))
    cases.append(sparsepo_case(rng, "sparsepo all-one masks (TDPO1-like)", [3, 5], [4, 1], kind="ones", independent=False))
    cases.append(sparsepo_case(rng, "sparsepo length-1 responses", [1, 1], [1, 1]))
    z = [np.zeros(3), np.array([0.5, 1.0]), np.zeros(4), np.array([0.2])]
    cases.append(sparsepo_case(rng, "sparsepo zero masks on a side", [3, 2], [4, 1], masks=(z, [np.ones(3), np.zeros(2), np.ones(4), np.zeros(1)])))
    same = official_token_stats(rng, [4, 2])
    cases.append(sparsepo_case(rng, "sparsepo chosen equals rejected", [4, 2], [4, 2], data=same + same))
    cases.append(sparsepo_case(rng, "sparsepo padding: long chosen, short rejected", [12, 3, 7], [2, 11, 1], independent=False))
    return cases


# ----------------------------------------------------------------------------------------------
# 4. TGDPO (dpo_loss, loss_type sigmoid)

def tgdpo_losses(Pw, Rw, Mw, mw, Pl, Rl, Ml, ml, beta, alpha):
    # get_batch_logps (per-token version) returns per_token_logps * loss_mask for policy, reference, reward model.
    Pw, Rw, Mw, Pl, Rl, Ml = Pw * mw, Rw * mw, Mw * mw, Pl * ml, Rl * ml, Ml * ml
    chosen_logratios = Pw - Rw
    rejected_logratios = Pl - Rl
    reward_chosen_logratios = Mw - Rw
    reward_rejected_logratios = Ml - Rl
    return -logsigmoid((beta * (1 + alpha * beta * reward_chosen_logratios) * chosen_logratios).sum(-1)
                       - (beta * (1 - alpha * beta * reward_rejected_logratios) * rejected_logratios).sum(-1))


def tgdpo_case(rng, name, lw, ll, beta=None, alpha=None, rm_scale=2.0):
    b = 0.1 if beta is None else beta
    a = 0.5 if alpha is None else alpha
    data = official_token_stats(rng, lw + ll)
    rm = [d[1] + rng.normal(0, rm_scale, len(d[1])) for d in data]     # a token-level reward model's logps
    w, l = data[:len(lw)], data[len(lw):]
    Pw, mw = pad([x[0] for x in w]); Rw, _ = pad([x[1] for x in w]); Mw, _ = pad(rm[:len(lw)])
    Pl, ml = pad([x[0] for x in l]); Rl, _ = pad([x[1] for x in l]); Ml, _ = pad(rm[len(lw):])

    def f(xw, xl):
        return float(tgdpo_losses(xw, Rw, Mw, mw, xl, Rl, Ml, ml, b, a).mean())

    loss = f(Pw, Pl)
    cw = b * (1 + a * b * (Mw - Rw)) * mw
    cl = b * (1 - a * b * (Ml - Rl)) * ml
    zz = (cw * (Pw - Rw)).sum(-1) - (cl * (Pl - Rl)).sum(-1)
    s = sigmoid(-zz) / len(lw)
    gw, gl = -s[:, None] * cw, s[:, None] * cl
    nw, nl = pref_grads(f, Pw, Pl, mw, ml)
    check(name + " chosen", gw, nw, mw)
    check(name + " rejected", gl, nl, ml)
    objective = {"name": "tgdpo"}
    if beta is not None:
        objective["beta"] = beta
    if alpha is not None:
        objective["alpha"] = alpha
    pairs = [{"chosen": side_json(w[i][0], w[i][1], rm_logprobs=rm[i]),
              "rejected": side_json(l[i][0], l[i][1], rm_logprobs=rm[len(lw) + i])} for i in range(len(lw))]
    return {"name": name, "family": "tgdpo", "source": TGDPO, "request": {"objective": objective, "pairs": pairs},
            "loss": loss,
            "grad_logprobs": [{"chosen": unpad(gw, lw)[i], "rejected": unpad(gl, ll)[i]} for i in range(len(lw))],
            "known_difference": None}


def tgdpo_cases(rng):
    cases = []
    for k in range(5):
        n = int(rng.integers(1, 5))
        lw, ll = [int(x) for x in rng.integers(1, 10, n)], [int(x) for x in rng.integers(1, 10, n)]
        cases.append(tgdpo_case(rng, f"tgdpo random {k} (defaults)", lw, ll))
    for k in range(3):
        n = int(rng.integers(1, 5))
        lw, ll = [int(x) for x in rng.integers(1, 10, n)], [int(x) for x in rng.integers(1, 10, n)]
        beta, alpha = float(np.round(rng.uniform(0.05, 1.0), 3)), float(np.round(rng.uniform(0.1, 2.0), 3))
        cases.append(tgdpo_case(rng, f"tgdpo beta {beta} alpha {alpha}", lw, ll, beta=beta, alpha=alpha))
    cases.append(tgdpo_case(rng, "tgdpo length-1 responses", [1, 1], [1, 1]))
    cases.append(tgdpo_case(rng, "tgdpo padding: long chosen, short rejected", [12, 3, 7], [2, 11, 1], beta=0.5))
    cases.append(tgdpo_case(rng, "tgdpo reward model far from reference", [5, 4], [3, 6], beta=0.3, alpha=1.0, rm_scale=8.0))
    return cases


# ----------------------------------------------------------------------------------------------
# 5. F-DPO (FactualDPOTrainer.dpo_loss, loss_type sigmoid, label_smoothing 0): sequence logps are
#    sums over response tokens; logits = (pi_w - pi_l) - (ref_w - ref_l) - (h_l - h_w) * delta;
#    loss = -logsigmoid(beta * logits), mean over pairs. The flip of (1, 0) pairs happens on the
#    data (flip_sample), so the loss sees whatever labels it is given.

def fdpo_losses(Pw, Rw, mw, hw, Pl, Rl, ml, hl, beta, delta):
    logits = ((Pw - Rw) * mw).sum(-1) - ((Pl - Rl) * ml).sum(-1)
    return -logsigmoid(beta * (logits - (hl - hw) * delta))


def fdpo_case(rng, name, lw, ll, labels, beta=None, delta=None):
    b = 0.1 if beta is None else beta
    d = 10.0 if delta is None else delta
    data = official_token_stats(rng, lw + ll)
    w, l = data[:len(lw)], data[len(lw):]
    Pw, mw = pad([x[0] for x in w]); Rw, _ = pad([x[1] for x in w])
    Pl, ml = pad([x[0] for x in l]); Rl, _ = pad([x[1] for x in l])
    hw = np.array([float(h[0]) for h in labels]); hl = np.array([float(h[1]) for h in labels])

    def f(xw, xl):
        return float(fdpo_losses(xw, Rw, mw, hw, xl, Rl, ml, hl, b, d).mean())

    loss = f(Pw, Pl)
    z = ((Pw - Rw) * mw).sum(-1) - ((Pl - Rl) * ml).sum(-1) - (hl - hw) * d
    s = b * sigmoid(-b * z) / len(lw)
    gw, gl = -s[:, None] * mw, s[:, None] * ml
    nw, nl = pref_grads(f, Pw, Pl, mw, ml)
    check(name + " chosen", gw, nw, mw)
    check(name + " rejected", gl, nl, ml)
    objective = {"name": "fdpo"}
    if beta is not None:
        objective["beta"] = beta
    if delta is not None:
        objective["delta"] = delta
    pairs = []
    for i in range(len(lw)):
        cw, cl = side_json(w[i][0], w[i][1]), side_json(l[i][0], l[i][1])
        cw["hallucinated"], cl["hallucinated"] = float(hw[i]), float(hl[i])
        pairs.append({"chosen": cw, "rejected": cl})
    return {"name": name, "family": "fdpo", "source": FDPO, "request": {"objective": objective, "pairs": pairs},
            "loss": loss,
            "grad_logprobs": [{"chosen": unpad(gw, lw)[i], "rejected": unpad(gl, ll)[i]} for i in range(len(lw))],
            "known_difference": None}


def fdpo_cases(rng):
    cases = []
    for k in range(5):
        n = int(rng.integers(1, 6))
        lw, ll = [int(x) for x in rng.integers(1, 10, n)], [int(x) for x in rng.integers(1, 10, n)]
        labels = [(int(a), int(c)) for a, c in rng.integers(0, 2, (n, 2))]
        cases.append(fdpo_case(rng, f"fdpo random {k} (defaults)", lw, ll, labels))
    for k in range(3):
        n = int(rng.integers(1, 5))
        lw, ll = [int(x) for x in rng.integers(1, 10, n)], [int(x) for x in rng.integers(1, 10, n)]
        labels = [(int(a), int(c)) for a, c in rng.integers(0, 2, (n, 2))]
        beta, delta = float(np.round(rng.uniform(0.05, 1.0), 3)), float(np.round(rng.uniform(0.0, 50.0), 2))
        cases.append(fdpo_case(rng, f"fdpo beta {beta} delta {delta}", lw, ll, labels, beta=beta, delta=delta))
    cases.append(fdpo_case(rng, "fdpo every pair factual-over-hallucinated", [3, 5], [4, 2], [(0, 1), (0, 1)]))
    cases.append(fdpo_case(rng, "fdpo labels equal: DPO", [6, 2, 4], [3, 3, 7], [(0, 0), (1, 1), (0, 0)], beta=0.3))
    cases.append(fdpo_case(rng, "fdpo delta 0: DPO", [2, 9], [5, 1], [(0, 1), (1, 0)], delta=0.0))
    return cases


def main():
    rng = np.random.default_rng(20250717)
    cases = gspo_cases(rng) + tdpo_cases(rng) + sparsepo_cases(rng) + tgdpo_cases(rng) + fdpo_cases(rng)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../Tests/ObjectivesTests/Fixtures/objectives_official.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"generator": "scripts/reference/objectives_official.py",
                   "sources": {"gspo": VERL, "tdpo": TDPO, "sparsepo": HEBO, "tgdpo": TGDPO, "fdpo": FDPO},
                   "tolerance": 1e-6,
                   "cases": cases}, f)
    counts = {}
    for c in cases:
        counts[c["family"]] = counts.get(c["family"], 0) + 1
    known = sum(1 for c in cases if c["known_difference"])
    print(f"{len(cases)} cases {counts}, {known} known differences -> {os.path.normpath(out)}")


if __name__ == "__main__":
    main()
