"""Checks that transformers loads a directory written by `tokenwise convert` unchanged and agrees
with Tokenwise (not run by CI).

    pip install torch==2.11.0 transformers
    tokenwise convert --model default --out /tmp/smollm2-hf
    python3 scripts/reference/transformers_check.py /tmp/smollm2-hf ours.json "TEXT"
where ours.json is `tokenwise logprobs --model default --text "TEXT"`.
"""
import json, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

path, ours_path, text = sys.argv[1], sys.argv[2], sys.argv[3]
tok = AutoTokenizer.from_pretrained(path)
model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32)
model.eval()
ours = json.load(open(ours_path))
ids = tok(text, add_special_tokens=False)["input_ids"]
print("tokens equal:", ids == ours["tokens"], len(ids))
print("decode round trip:", tok.decode(ids) == text)
chat = tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
print("chat template:", repr(chat))
with torch.no_grad():
    logits = model(torch.tensor([ids])).logits[0].float()
logp = torch.log_softmax(logits, -1)
lp = logp[:-1].gather(-1, torch.tensor(ids[1:])[:, None])[:, 0]
ent = -(logp.exp() * logp).sum(-1)[:-1]
print("logprobs max abs diff: %.3e" % (lp - torch.tensor(ours["logprobs"])).abs().max().item())
print("entropies max abs diff: %.3e" % (ent - torch.tensor(ours["entropies"])).abs().max().item())
prompt = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}], add_generation_prompt=True, tokenize=False)
out = model.generate(torch.tensor([tok(prompt, add_special_tokens=False)["input_ids"]]),
                     max_new_tokens=8, do_sample=False)
print("greedy:", repr(tok.decode(out[0][-8:])))
