"""transformers' `generate` on the workload of `tokenwise bench rollout` (not run by CI): the same 8
chat prompts, left-padded, temperature-1 sampling, 128 new tokens each (end tokens ignored), on the
same number of CPU threads. Decode tokens/s = tokens after the first / (time(128) − time(1)).

    pip install torch==2.11.0 transformers
    tokenwise convert --model default --out /tmp/smollm2-hf
    python3 scripts/reference/hf_generate_bench.py /tmp/smollm2-hf 8 128 2 [float32|bfloat16]
"""
import sys, time
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

path, batch, new, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
dtype = getattr(torch, sys.argv[5] if len(sys.argv) > 5 else "float32")
torch.set_num_threads(threads)
tok = AutoTokenizer.from_pretrained(path)
tok.padding_side = "left"
model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).eval()
questions = ["What is the capital of France?", "Write a haiku about the sea.", "Explain photosynthesis briefly.",
             "What is 17 times 23?", "Name three prime numbers.", "How do airplanes fly?",
             "Give me a synonym for happy.", "What causes rain?"]
texts = [tok.apply_chat_template([{"role": "user", "content": questions[i % len(questions)]}], tokenize=False, add_generation_prompt=True)
         for i in range(batch)]
enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)

def run(n):
    torch.manual_seed(0)
    t = time.perf_counter()
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=n, min_new_tokens=n, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                             pad_token_id=tok.pad_token_id)
    return time.perf_counter() - t, out.shape[1] - enc["input_ids"].shape[1]

run(4)  # warm-up
t1, _ = run(1)
tn, got = run(new)
decoded = batch * (got - 1)
print(f"transformers {__import__('transformers').__version__}, torch {torch.__version__}, {threads} thread(s), batch {batch}, {dtype}")
print(f"prefill+1 token: {t1:.3f} s; {new} tokens: {tn:.3f} s")
print(f"decode: {decoded} tokens in {tn - t1:.3f} s = {decoded / (tn - t1):.1f} tokens/s")
