"""Writes examples/rto/arithmetic-pairs.jsonl: 240 preference pairs on the arithmetic task's own
prompts (single-digit addition, "Answer with just the number."), the correct sum chosen and a sum
off by 1 to 3 rejected: the DPO data of the README's RTO run. Fixed seed, same file every time.

    python3 scripts/make_rto_pairs.py > examples/rto/arithmetic-pairs.jsonl
"""
import json
import random

rng = random.Random(20261203)
for _ in range(240):
    a, b = rng.randint(0, 9), rng.randint(0, 9)
    wrong = a + b + rng.choice([-3, -2, -1, 1, 2, 3])
    if wrong < 0:
        wrong = a + b + 1
    print(json.dumps({"prompt": f"What is {a} + {b}? Answer with just the number.", "chosen": str(a + b), "rejected": str(wrong)}))
