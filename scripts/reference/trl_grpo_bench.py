#!/usr/bin/env python3
"""One GRPO step of SmolLM2-135M-Instruct: TRL's GRPOTrainer against `tokenwise bench train`, same run.

Settings (both): 8 prompts x 8 samples, at most 64 new tokens, temperature 1, LoRA r=8 (alpha 16) on
q/k/v/o, no KL, lr 1e-5, the arithmetic task (difficulty 1), 2 CPU threads. Each side runs 2 steps;
the second is reported (the first includes warm-up). Not part of CI.

    python3 scripts/reference/trl_grpo_bench.py            # creates .deps/trl-venv on first use

Needs: the release binary (scripts/run.sh builds it), network once for the venv.
"""
import json, os, re, subprocess, sys, time, venv

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
VENV = os.path.join(ROOT, ".deps", "trl-venv")
PY = os.path.join(VENV, "bin", "python")
PKGS = ["torch==2.11.0", "transformers==5.23.0", "trl==1.16.0", "peft", "datasets", "accelerate"]


def ensure_venv():
    if not os.path.exists(PY):
        venv.create(VENV, with_pip=True)
        subprocess.check_call([PY, "-m", "pip", "install", "-q", "--index-url", "https://pypi.org/simple", *PKGS])


TRL_SIDE = r'''
import json, re, sys, time, torch
torch.set_num_threads(2)
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import GRPOConfig, GRPOTrainer
model_dir, prompts = sys.argv[1], json.loads(sys.argv[2])
ds = Dataset.from_list([{"prompt": [{"role": "user", "content": p["q"]}], "answer": p["a"]} for p in prompts])
def correct(completions, answer, **kw):
    out = []
    for c, a in zip(completions, answer):
        nums = re.findall(r"-?\d+(?:\.\d+)?", c[0]["content"])
        out.append(1.0 if nums and float(nums[-1]) == float(a) else 0.0)
    return out
class Timer(TrainerCallback):
    def __init__(self): self.times, self.t = [], 0
    def on_step_begin(self, *a, **k): self.t = time.perf_counter()
    def on_step_end(self, *a, **k): self.times.append(time.perf_counter() - self.t)
timer = Timer()
cfg = GRPOConfig(output_dir="/tmp/trl-grpo-bench", per_device_train_batch_size=64, num_generations=8,
                 max_completion_length=64, temperature=1.0, learning_rate=1e-5, beta=0.0, max_steps=2,
                 logging_steps=1, report_to="none", use_cpu=True, bf16=False, save_strategy="no", seed=1)
tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
trainer = GRPOTrainer(model=model, reward_funcs=correct, args=cfg, train_dataset=ds, processing_class=tok,
                      peft_config=LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]),
                      callbacks=[timer])
trainer.train()
print(json.dumps({"step_seconds": timer.times}))
'''


def main():
    ensure_venv()
    tokenwise = subprocess.check_output(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, text=True).strip() + "/tokenwise"
    model_dir = os.path.join(ROOT, ".deps", "smollm2-hf")
    if not os.path.exists(os.path.join(model_dir, "config.json")):
        subprocess.check_call([tokenwise, "convert", "--model", "default", "--out", model_dir])
    # The same task as `tokenwise bench train` (single-digit addition, same wording), 16 prompts for 2 steps.
    import random
    prompts = []
    rng = random.Random(7)
    for _ in range(16):
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        prompts.append({"q": f"What is {a} + {b}? Answer with just the number.", "a": str(a + b)})
    env = dict(os.environ, OMP_NUM_THREADS="2")
    out = subprocess.check_output([PY, "-c", TRL_SIDE, model_dir, json.dumps(prompts)], env=env, text=True)
    trl = json.loads(out.strip().splitlines()[-1])["step_seconds"]
    ours_out = subprocess.check_output([tokenwise, "bench", "train", "--threads", "2", "--steps", "2"], text=True)
    ours = [float(m) for m in re.findall(r"step \d+: ([\d.]+) s", ours_out)]
    print(ours_out.strip())
    print(f"TRL GRPOTrainer: step seconds {', '.join(f'{t:.1f}' for t in trl)}")
    print(f"Tokenwise:       step seconds {', '.join(f'{t:.1f}' for t in ours)}")
    print(f"second step: Tokenwise {ours[-1]:.1f} s vs TRL {trl[-1]:.1f} s = {ours[-1] / trl[-1]:.2f}x of TRL's wall-clock")


if __name__ == "__main__":
    main()
