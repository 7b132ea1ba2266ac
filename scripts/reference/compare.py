"""Compares two `tokenwise logprobs`-style JSON files: tokens must be equal, logprobs/entropies close."""
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
print("tokens equal:", a["tokens"] == b["tokens"], len(a["tokens"]), len(b["tokens"]))
if a["tokens"] == b["tokens"]:
    for k in ("logprobs", "entropies"):
        d = max(abs(x - y) for x, y in zip(a[k], b[k]))
        print(f"{k}: max abs diff {d:.3e} over {len(a[k])} positions")
else:
    for i, (x, y) in enumerate(zip(a["tokens"], b["tokens"])):
        if x != y:
            print("first difference at", i, x, y); break
