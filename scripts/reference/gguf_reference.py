"""Independent reference for Tokenwise's model loading (not run by CI).

Loads a llama-architecture GGUF with the `gguf` package (its own dequantisers), rebuilds the
Hugging Face tokenizer with the `tokenizers` library from the GGUF vocabulary, runs the decoder in
numpy (float64), and prints the same JSON as `tokenwise logprobs`. Compare:

    pip install gguf tokenizers numpy
    python3 scripts/reference/gguf_reference.py MODEL.gguf "some text" > ref.json
    tokenwise logprobs --model MODEL.gguf --text "some text" > ours.json
    python3 scripts/reference/compare.py ref.json ours.json
"""
import json, sys
import numpy as np
import gguf
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, AddedToken


def field(r, key):
    f = r.fields[key]
    if len(f.types) == 1 and f.types[0] == gguf.GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode()
    if f.types[0] == gguf.GGUFValueType.ARRAY:
        if f.types[1] == gguf.GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode() for i in f.data]
        return [f.parts[i][0].item() for i in f.data]
    return f.parts[f.data[0]][0].item()


def tokenizer(r):
    tokens = field(r, "tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ", 1)) for m in field(r, "tokenizer.ggml.merges")]
    types = field(r, "tokenizer.ggml.token_type")
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab, merges))
    pre = field(r, "tokenizer.ggml.pre")
    byte = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte]) if pre == "smollm" else byte
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False) for i, t in enumerate(types) if t == 3])
    tok.add_tokens([AddedToken(tokens[i], normalized=False) for i, t in enumerate(types) if t == 4])
    return tok


def main(path, text):
    r = gguf.GGUFReader(path)
    arch = field(r, "general.architecture")
    assert arch == "llama", arch
    H, KV = field(r, "llama.attention.head_count"), field(r, "llama.attention.head_count_kv")
    L, eps, theta = field(r, "llama.block_count"), field(r, "llama.attention.layer_norm_rms_epsilon"), field(r, "llama.rope.freq_base")
    W = {}
    for t in r.tensors:
        a = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64)
        W[t.name] = a.reshape([int(x) for x in reversed(t.shape)]) if a.ndim == 1 and len(t.shape) > 1 else a
    def unpermute(w, n):
        return w.reshape(n, w.shape[0] // n // 2, 2, w.shape[1]).swapaxes(1, 2).reshape(w.shape)
    tok = tokenizer(r)
    ids = tok.encode(text).ids
    x = W["token_embd.weight"][ids]                      # [T, D]
    T, D = x.shape
    hd = D // H
    def rms(v, w): return v / np.sqrt((v * v).mean(-1, keepdims=True) + eps) * w
    inv = 1.0 / theta ** (np.arange(0, hd, 2) / hd)
    ang = np.arange(T)[:, None] * inv[None]
    cos, sin = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))
    def rope(q): return q * cos + np.concatenate([-q[..., hd // 2:], q[..., :hd // 2]], -1) * sin
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for i in range(L):
        p = f"blk.{i}."
        h = rms(x, W[p + "attn_norm.weight"])
        q = (h @ unpermute(W[p + "attn_q.weight"], H).T).reshape(T, H, hd).transpose(1, 0, 2)
        k = (h @ unpermute(W[p + "attn_k.weight"], KV).T).reshape(T, KV, hd).transpose(1, 0, 2)
        v = (h @ W[p + "attn_v.weight"].T).reshape(T, KV, hd).transpose(1, 0, 2)
        q, k = rope(q), rope(k)
        k, v = np.repeat(k, H // KV, 0), np.repeat(v, H // KV, 0)
        s = q @ k.transpose(0, 2, 1) / np.sqrt(hd) + mask
        s = np.exp(s - s.max(-1, keepdims=True)); s /= s.sum(-1, keepdims=True)
        x = x + (s @ v).transpose(1, 0, 2).reshape(T, D) @ W[p + "attn_output.weight"].T
        h = rms(x, W[p + "ffn_norm.weight"])
        g = h @ W[p + "ffn_gate.weight"].T
        x = x + ((g / (1 + np.exp(-g))) * (h @ W[p + "ffn_up.weight"].T)) @ W[p + "ffn_down.weight"].T
    x = rms(x, W["output_norm.weight"])
    logits = x @ W.get("output.weight", W["token_embd.weight"]).T
    logp = logits - logits.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    lp = [float(logp[t, ids[t + 1]]) for t in range(T - 1)]
    ent = [float(-(np.exp(logp[t]) * logp[t]).sum()) for t in range(T - 1)]
    print(json.dumps({"tokens": ids, "logprobs": lp, "entropies": ent, "decoded": tok.decode(ids, skip_special_tokens=False)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
