#!/usr/bin/env python3
"""SparsePO's activation-based token masks (the MaPO recipe) as the authors' code combines them,
for Tokenwise's fixture test (Tests/TrainingTests/MaPOMaskTests.swift).

Source: huawei-noah/HEBO @ 04f4ece8c7ac95d1466763880def692fc2215f6f,
SparsePO/src/trainers/mapo_trainer.py: `apply_activation_mapping` (activation_mapping
"zn_rescale", the default), `concatenated_forward` (run_hooks=True, the reference model) and
`get_batch_loss_metrics` (`reference_*_activations * *_loss_mask`). Re-implemented with numpy.

Input here: per hook, the activation's feature mean `act_reduced = activation.mean(-1)` already
taken at the position that predicts each response token (`actv[:, :-1]` against `labels[:, 1:]`),
as an [N, W] array per hook (W = longest response; values past a response's length are padding and
deliberately garbage: the official code only ever reads them through the loss mask).
Per hook map and response (mask = loss_mask, the response's tokens, end token included):
    mean = masked_mean(a, mask);  std = a[mask].std()   (torch: unbiased, N - 1)
    z = (a - mean) / (std + 1e-12)
    rescaled = (z - min z[mask]) / (max z[mask] - min z[mask]) * mask
Within a group: the mean over the group's hook maps (`torch.concat(...).mean(-1)`): MLP
"mlp.post_act" per layer; attention q, k, v, post-rotary q, k and v_out per layer; residual 7 points
per layer plus "resid.post_emb" and "resid.post_ln_f"; logits one map. Across groups: the mean over
the groups hooked (activation_hook "all" = mlp, attn, resid, logits), then times the loss mask.
Group names here are Tokenwise's (`CausalLM.ActivationProbe.Group`): mlp, attention, residual, logits.

PRECISION: the official code casts std, min and max to float16
(`torch.Tensor(_std).type(torch.float16)`, likewise `_min`, `_max`; 1e-12 then vanishes in float16).
This script computes everything in float64 WITHOUT those casts, so z-normalising then min-max
rescaling is exactly min-max rescaling up to rounding. `fp16_casts` repeats each case with the casts
emulated (float32 activations, float16 std/min/max) and records its largest difference from the
float64 masks, for information only: it is not what Tokenwise is tested against.

Flat maps: a response of one token (unbiased std of one value: NaN) or a hook map constant over a
response (std 0: 0/0) makes the official mask NaN for that whole row -- including its padding, since
NaN * 0 is NaN -- and so that pair's loss NaN. Tokenwise instead gives such a map 1 on the response's
tokens. `flat_cases` record which rows the official code makes NaN (`official_nan_rows`) and the
masks under Tokenwise's rule (`tokenwise_masks`, computed here with that rule, not the official code).

    python3 scripts/reference/mapo_masks_official.py
"""
import json
import os
import numpy as np

SOURCE = ("huawei-noah/HEBO@04f4ece8c7ac95d1466763880def692fc2215f6f SparsePO/src/trainers/mapo_trainer.py "
          "(apply_activation_mapping 'zn_rescale', concatenated_forward, get_batch_loss_metrics)")
GROUPS = ["mlp", "attention", "residual", "logits"]


def zn_rescale(a, mask, fp16=False):
    """apply_activation_mapping('zn_rescale') on act_reduced a [N, W] with a boolean mask [N, W]."""
    a = a.astype(np.float32 if fp16 else np.float64)
    n = a.shape[0]
    m = mask.astype(a.dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = ((a * m).sum(-1) / m.sum(-1)).reshape(-1, 1)
        std = np.array([a[i, mask[i]].std(ddof=1) if mask[i].sum() > 1 else np.nan for i in range(n)])
        if fp16:
            std = std.astype(np.float16)
            std = (std + np.float16(1e-12)).astype(np.float32).reshape(-1, 1)   # 1e-12 is 0 in float16
        else:
            std = (std + 1e-12).reshape(-1, 1)
        z = (a - mean) / std
        lo = np.array([z[i, mask[i]].min() for i in range(n)])
        hi = np.array([z[i, mask[i]].max() for i in range(n)])
        if fp16:
            lo, hi = lo.astype(np.float16).astype(np.float32), hi.astype(np.float16).astype(np.float32)
        rescaled = (z - lo.reshape(-1, 1)) / (hi - lo).reshape(-1, 1)
        return rescaled * m


def official_masks(maps, mask, fp16=False):
    groups = []
    for g in GROUPS:
        if g in maps and len(maps[g]) > 0:
            per_hook = [zn_rescale(np.asarray(h), mask, fp16) for h in maps[g]]
            groups.append(np.mean(np.stack(per_hook, -1), -1))
    out = np.mean(np.stack(groups, -1), -1)
    return out * mask


def tokenwise_rule_masks(maps, mask):
    """Tokenwise's ActivationMasks rule (NOT the official code): plain min-max per response, a flat
    map (span <= 1e-12 * max(|max| + |min|, 1)) is 1 on the response's tokens."""
    groups = []
    for g in GROUPS:
        if g in maps and len(maps[g]) > 0:
            per_hook = []
            for h in maps[g]:
                h = np.asarray(h, dtype=np.float64)
                lo = np.array([h[i, mask[i]].min() for i in range(h.shape[0])]).reshape(-1, 1)
                hi = np.array([h[i, mask[i]].max() for i in range(h.shape[0])]).reshape(-1, 1)
                span = hi - lo
                flat = span <= 1e-12 * np.maximum(np.abs(hi) + np.abs(lo), 1)
                r = np.where(flat, 1.0, (h - lo) / np.where(flat, 1.0, span))
                per_hook.append(r * mask)
            groups.append(np.mean(np.stack(per_hook, -1), -1))
    return np.mean(np.stack(groups, -1), -1) * mask


def random_maps(rng, lengths, hooks):
    """Per group, `hooks[g]` maps [N, W] of feature means; each hook has its own offset and scale
    (activations of different layers live on different scales); padding is garbage."""
    n, width = len(lengths), max(lengths)
    maps = {}
    for g, k in hooks.items():
        maps[g] = []
        for _ in range(k):
            offset, scale = rng.normal(0, 3), np.exp(rng.normal(0, 1.5))
            h = offset + scale * rng.normal(0, 1, (n, width))
            for i, L in enumerate(lengths):
                h[i, L:] = rng.normal(0, 1e3, width - L)      # padding: never read
            maps[g].append(np.round(h, 9))
    return maps


def as_lists(maps):
    return {g: [h.tolist() for h in hs] for g, hs in maps.items()}


def mask_of(lengths):
    width = max(lengths)
    return np.arange(width)[None, :] < np.asarray(lengths)[:, None]


def main():
    rng = np.random.default_rng(4105)
    cases, flat_cases = [], []
    official_hooks = {"mlp": 4, "attention": 6 * 4, "residual": 7 * 4 + 2, "logits": 1}   # a 4-layer model, hook "all"
    tokenwise_hooks = {"mlp": 2, "attention": 2, "residual": 1 + 2 * 2 + 1, "logits": 1}  # Tokenwise's 2-layer probe
    subsets = [{"mlp": 3}, {"logits": 1}, {"mlp": 2, "logits": 1}, {"attention": 5, "residual": 4}]
    layouts = [official_hooks] * 6 + [tokenwise_hooks] * 6 + subsets
    for k, hooks in enumerate(layouts):
        n = int(rng.integers(1, 6))
        lengths = [int(x) for x in rng.integers(2, 14, n)]
        if k % 5 == 0:
            lengths[0] = 2                                       # the shortest non-flat response
        mask = mask_of(lengths)
        maps = random_maps(rng, lengths, hooks)
        masks = official_masks(maps, mask)
        assert np.all(np.isfinite(masks))
        fp16 = official_masks(maps, mask, fp16=True)
        tw = tokenwise_rule_masks(maps, mask)
        assert np.max(np.abs(tw - masks)) < 1e-12, "z-normalise + min-max must equal min-max in float64"
        cases.append({"lengths": lengths, "groups": sorted(hooks, key=GROUPS.index), "maps": as_lists(maps),
                      "masks": masks.tolist(), "fp16_casts_max_abs_diff": float(np.max(np.abs(fp16 - masks)))})
    # Flat maps: length-1 responses, a hook map constant over a response, a whole group flat.
    flat_layouts = [
        ([1, 5, 3], tokenwise_hooks, None),
        ([4, 1], {"mlp": 2, "logits": 1}, None),
        ([6, 3, 4], tokenwise_hooks, ("mlp", 0, 1)),          # hook 0 of mlp is constant on row 1
        ([5, 5], {"attention": 3, "residual": 2}, ("residual", 1, 0)),
        ([3, 7], {"logits": 1}, ("logits", 0, 1)),            # the only map of the only group is flat on row 1
    ]
    for lengths, hooks, flat in flat_layouts:
        mask = mask_of(lengths)
        maps = random_maps(rng, lengths, hooks)
        if flat:
            g, h, row = flat
            maps[g][h][row, :lengths[row]] = np.round(rng.normal(0, 2), 6)
        official = official_masks(maps, mask)
        nan_rows = [i for i in range(len(lengths)) if np.any(np.isnan(official[i]))]
        assert nan_rows, "a flat map must make the official row NaN"
        finite_rows = [i for i in range(len(lengths)) if i not in nan_rows]
        tw = tokenwise_rule_masks(maps, mask)
        assert np.max(np.abs(tw[finite_rows] - official[finite_rows]), initial=0) < 1e-12
        flat_cases.append({"lengths": lengths, "groups": sorted(hooks, key=GROUPS.index), "maps": as_lists(maps),
                           "official_nan_rows": nan_rows,
                           "official_masks_finite_rows": {str(i): official[i].tolist() for i in finite_rows},
                           "tokenwise_masks": tw.tolist()})
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../Tests/TrainingTests/Fixtures/mapo_masks_official.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"generator": "scripts/reference/mapo_masks_official.py", "source": SOURCE,
                   "precision": "float64, without the official float16 casts of std/min/max (see fp16_casts_max_abs_diff)",
                   "cases": cases, "flat_cases": flat_cases}, f)
    worst = max(c["fp16_casts_max_abs_diff"] for c in cases)
    print(f"{len(cases)} cases, {len(flat_cases)} flat cases; float16 casts move a mask by up to {worst:.2e} -> {os.path.normpath(out)}")


if __name__ == "__main__":
    main()
