#!/usr/bin/env python3
"""Writes tiny random Hugging Face checkpoints for tests (run with Debian's
/usr/bin/python3; needs only python3-torch). Each directory holds config.json
and model.safetensors with the tensor names and layouts transformers uses:

  tiny-llama: LlamaForCausalLM, GQA (4 heads, 2 kv heads), tied embeddings,
              rope_theta 500000
  tiny-gpt2:  GPT2LMHeadModel, Conv1D weight layout ([in, out])
  tiny-llama3-scaled: LlamaForCausalLM with rope_scaling type llama3 (all three
              frequency bands in use), untied lm_head, attention and MLP biases,
              head_dim 16 != hidden / heads, one kv head for four query heads

and beside them a tiny byte-level BPE tokenizer.json (256 byte tokens, merges
learned from a fixed English text, <|endoftext|>): vocab 320.

Deterministic (seed 0): rerunning rewrites identical bytes.
"""
import json
import os
import struct
import sys

import torch

DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}


def write_safetensors(path, tensors):
    """The format by hand (no safetensors package on Debian 12): u64 header
    length, JSON header padded with spaces to 8 bytes, then the raw data."""
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        data = t.view(torch.uint8).numpy().tobytes() if t.dtype == torch.bfloat16 \
            else t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for blob in blobs:
            f.write(blob)


VOCAB = 320
EOT = VOCAB - 1  # <|endoftext|>
TEXT = ("the quick brown fox jumps over the lazy dog. the dog sleeps in the sun, "
        "and the fox runs into the woods. this is a test of the tokenizer; "
        "there are three things that they think these then the other. ")


def bytes_to_unicode():
    """GPT-2's byte -> printable character map (as in tokenizers' ByteLevel)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) \
        + list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def tiny_tokenizer():
    """Byte-level BPE with VOCAB - 257 merges learned greedily from TEXT."""
    byte_char = bytes_to_unicode()
    vocab = {byte_char[b]: i for i, b in enumerate(sorted(byte_char))}
    words = [[byte_char[b] for b in (" " + w).encode()] for w in TEXT.split()]
    merges = []
    while len(vocab) < EOT:
        counts = {}
        for w in words:
            for pair in zip(w, w[1:]):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            break
        best = max(sorted(counts), key=lambda p: counts[p])
        merges.append(" ".join(best))
        vocab[best[0] + best[1]] = len(vocab)
        for w in words:
            i = 0
            while i < len(w) - 1:
                if (w[i], w[i + 1]) == best:
                    w[i:i + 2] = [w[i] + w[i + 1]]
                i += 1
    assert len(vocab) == EOT, len(vocab)
    eot = {"id": EOT, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
           "rstrip": False, "normalized": True, "special": True}
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                  "use_regex": True}
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [eot],
            "normalizer": None, "pre_tokenizer": byte_level, "post_processor": byte_level,
            "decoder": byte_level,
            "model": {"type": "BPE", "dropout": None, "unk_token": None,
                      "continuing_subword_prefix": "", "end_of_word_suffix": "",
                      "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                      "merges": merges}}


def rand(*shape):
    return torch.randn(*shape) * 0.2


def tiny_llama():
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
           "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
           "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": VOCAB,
           "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
           "hidden_act": "silu", "tie_word_embeddings": True, "bos_token_id": EOT,
           "eos_token_id": EOT, "torch_dtype": "float32"}
    h, i, kv = 32, 64, 2 * 32 // 4
    t = {"model.embed_tokens.weight": rand(VOCAB, h), "model.norm.weight": 1 + rand(h)}
    for layer in range(2):
        p = f"model.layers.{layer}."
        t[p + "input_layernorm.weight"] = 1 + rand(h)
        t[p + "post_attention_layernorm.weight"] = 1 + rand(h)
        t[p + "self_attn.q_proj.weight"] = rand(h, h)
        t[p + "self_attn.k_proj.weight"] = rand(kv, h)
        t[p + "self_attn.v_proj.weight"] = rand(kv, h)
        t[p + "self_attn.o_proj.weight"] = rand(h, h)
        t[p + "mlp.gate_proj.weight"] = rand(i, h)
        t[p + "mlp.up_proj.weight"] = rand(i, h)
        t[p + "mlp.down_proj.weight"] = rand(h, i)
    return cfg, t


def tiny_gpt2():
    cfg = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 32,
           "n_layer": 2, "n_head": 4, "n_positions": 64, "n_inner": None, "vocab_size": VOCAB,
           "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new",
           "bos_token_id": EOT, "eos_token_id": EOT, "torch_dtype": "float32"}
    h = 32
    t = {"transformer.wte.weight": rand(VOCAB, h), "transformer.wpe.weight": rand(64, h),
         "transformer.ln_f.weight": 1 + rand(h), "transformer.ln_f.bias": rand(h)}
    for layer in range(2):
        p = f"transformer.h.{layer}."
        for ln in ("ln_1", "ln_2"):
            t[p + ln + ".weight"] = 1 + rand(h)
            t[p + ln + ".bias"] = rand(h)
        t[p + "attn.c_attn.weight"] = rand(h, 3 * h)  # Conv1D: [in, out]
        t[p + "attn.c_attn.bias"] = rand(3 * h)
        t[p + "attn.c_proj.weight"] = rand(h, h)
        t[p + "attn.c_proj.bias"] = rand(h)
        t[p + "mlp.c_fc.weight"] = rand(h, 4 * h)
        t[p + "mlp.c_fc.bias"] = rand(4 * h)
        t[p + "mlp.c_proj.weight"] = rand(4 * h, h)
        t[p + "mlp.c_proj.bias"] = rand(h)
    return cfg, t


def tiny_llama3_scaled():
    h, heads, kv_heads, head_dim, i = 32, 4, 1, 16, 48
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
           "hidden_size": h, "intermediate_size": i, "num_hidden_layers": 2,
           "num_attention_heads": heads, "num_key_value_heads": kv_heads, "head_dim": head_dim,
           "vocab_size": VOCAB, "max_position_embeddings": 64, "rms_norm_eps": 1e-5,
           "rope_theta": 10000.0,
           # Wavelengths 2*pi*theta^(2j/16) run from 6.3 to ~19900: with an original
           # context of 16, low_freq_wavelen = 16 and high_freq_wavelen = 4, so some
           # frequencies are kept, some divided by factor and some interpolated.
           "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                            "high_freq_factor": 4.0, "original_max_position_embeddings": 16},
           "attention_bias": True, "mlp_bias": True, "hidden_act": "silu",
           "tie_word_embeddings": False, "bos_token_id": EOT, "eos_token_id": EOT,
           "torch_dtype": "float32"}
    q, kv = heads * head_dim, kv_heads * head_dim
    t = {"model.embed_tokens.weight": rand(VOCAB, h), "model.norm.weight": 1 + rand(h),
         "lm_head.weight": rand(VOCAB, h)}
    for layer in range(2):
        p = f"model.layers.{layer}."
        t[p + "input_layernorm.weight"] = 1 + rand(h)
        t[p + "post_attention_layernorm.weight"] = 1 + rand(h)
        for name, rows, cols in (("self_attn.q_proj", q, h), ("self_attn.k_proj", kv, h),
                                 ("self_attn.v_proj", kv, h), ("self_attn.o_proj", h, q),
                                 ("mlp.gate_proj", i, h), ("mlp.up_proj", i, h),
                                 ("mlp.down_proj", h, i)):
            t[p + name + ".weight"] = rand(rows, cols)
            t[p + name + ".bias"] = rand(rows)
    return cfg, t


def main():
    out = os.path.dirname(os.path.abspath(__file__)) if len(sys.argv) < 2 else sys.argv[1]
    torch.manual_seed(0)
    for name, make in (("tiny-llama", tiny_llama), ("tiny-gpt2", tiny_gpt2),
                       ("tiny-llama3-scaled", tiny_llama3_scaled)):
        cfg, tensors = make()
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")
        write_safetensors(os.path.join(d, "model.safetensors"), tensors)
        with open(os.path.join(d, "tokenizer.json"), "w") as f:
            json.dump(tiny_tokenizer(), f, ensure_ascii=False)
            f.write("\n")
        print(d, sum(v.numel() for v in tensors.values()), "parameters")


if __name__ == "__main__":
    main()
