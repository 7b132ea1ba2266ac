"""Writes examples/sft/arithmetic-chat.jsonl: 240 chat lines of two-digit arithmetic with the
working written out, a quarter of them with a follow-up turn, each with its final number as the
`answer`. The answers are computed, so the
file is correct by construction; the fixed seed makes it the same file every time.

    python3 scripts/make_sft_example.py > examples/sft/arithmetic-chat.jsonl
"""
import json
import random

rng = random.Random(20261203)
OPS = [("+", lambda a, b: a + b, "plus"), ("-", lambda a, b: a - b, "minus"), ("*", lambda a, b: a * b, "times")]


def problem():
    sym, fn, word = rng.choice(OPS)
    a, b = rng.randint(10, 99), rng.randint(2, 99 if sym != "*" else 12)
    question = rng.choice([f"What is {a} {sym} {b}?", f"Compute {a} {word} {b}.", f"Work out {a} {sym} {b}, please."])
    if sym == "*":
        tens, ones = a // 10 * 10, a % 10
        working = f"{a} * {b} = {tens} * {b} + {ones} * {b} = {tens * b} + {ones * b} = {fn(a, b)}."
    else:
        working = f"{a} {sym} {b} = {fn(a, b)}."
    return question, f"{working} The answer is {fn(a, b)}.", fn(a, b)


for i in range(240):
    q, reply, value = problem()
    messages = [{"role": "user", "content": q}, {"role": "assistant", "content": reply}]
    if i % 4 == 3:
        d = rng.randint(2, 9)
        messages += [{"role": "user", "content": f"Now add {d} to that."},
                     {"role": "assistant", "content": f"{value} + {d} = {value + d}. The answer is {value + d}."}]
        value += d
    # The final number, the reference `tokenwise eval` compares the reply's last number with.
    print(json.dumps({"messages": messages, "answer": str(value)}))
