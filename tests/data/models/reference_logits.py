#!/usr/bin/env python3
"""Reference logits for the tiny test checkpoints, computed with plain PyTorch
following transformers' modeling code (modeling_llama.py: LlamaRMSNorm,
LlamaRotaryEmbedding + _compute_llama3_parameters, repeat_kv,
eager_attention_forward, LlamaMLP; modeling_gpt2.py: Conv1D, GPT2Attention's
eager path, gelu_new, GPT2Block) and its 4D causal + padding mask. Written from
those sources, not from promptsweep's C++, so tests/worker/causal_lm_test.cc
compares two independent implementations.

Run with Debian's /usr/bin/python3 (python3-torch; no transformers needed):

  /usr/bin/python3 tests/data/models/reference_logits.py

It reads each model directory here and writes reference_logits.safetensors with,
per model M: M.input_ids and M.attention_mask (int64 [3, 10]: row 0 unpadded,
row 1 right-padded, row 2 left-padded) and M.logits (float32 [3, 10, vocab];
padded positions hold whatever transformers computes there and are not
compared). Deterministic: rerunning rewrites identical bytes.
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ beside the test data
sys.path.insert(0, HERE)
from make_tiny_models import write_safetensors  # noqa: E402  (the same hand-written format)

MODELS = ("tiny-llama", "tiny-gpt2", "tiny-llama3-scaled")
ST_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
             "F64": torch.float64, "I64": torch.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=ST_DTYPES[entry["dtype"]])
        tensors[name] = t.reshape(entry["shape"])
    return tensors


def inputs(vocab):
    """Three rows of 10 token ids: full, right-padded (6 real), left-padded (7 real)."""
    g = torch.Generator().manual_seed(1234)
    ids = torch.randint(0, vocab - 1, (3, 10), generator=g)
    mask = torch.ones(3, 10, dtype=torch.int64)
    mask[1, 6:] = 0
    mask[2, :3] = 0
    ids = ids.masked_fill(mask == 0, 0)
    return ids, mask


def position_ids_from_mask(mask):
    """As transformers' generate prepares them (padding positions are never compared)."""
    pos = mask.long().cumsum(-1) - 1
    return pos.masked_fill(mask == 0, 1)


def causal_padding_mask(mask, dtype):
    """_prepare_4d_causal_attention_mask_with_cache_position, no cache."""
    b, t = mask.shape
    min_dtype = torch.finfo(dtype).min
    causal = torch.full((t, t), min_dtype, dtype=dtype).triu(1)
    causal = causal[None, None].expand(b, 1, t, t).clone()
    padding = (causal + mask[:, None, None, :].to(dtype)) == 0
    return causal.masked_fill(padding, min_dtype)


# ---------------------------------------------------------------- Llama ----

def llama_rms_norm(x, weight, eps):
    input_dtype = x.dtype
    x = x.to(torch.float32)
    variance = x.pow(2).mean(-1, keepdim=True)
    x = x * torch.rsqrt(variance + eps)
    return weight * x.to(input_dtype)


def llama_inv_freq(cfg, head_dim):
    base = cfg.get("rope_theta", 10000.0)
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.int64).to(dtype=torch.float) / head_dim))
    scaling = cfg.get("rope_scaling")
    if not scaling:
        return inv_freq
    assert scaling.get("rope_type", scaling.get("type")) == "llama3"
    factor = scaling["factor"]
    low_freq_factor = scaling["low_freq_factor"]
    high_freq_factor = scaling["high_freq_factor"]
    old_context_len = scaling["original_max_position_embeddings"]
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
    is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama)


def llama_rotary(inv_freq, position_ids, dtype):
    inv_freq_expanded = inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
    position_ids_expanded = position_ids[:, None, :].float()
    freqs = (inv_freq_expanded @ position_ids_expanded).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def repeat_kv(x, n_rep):
    b, kv_heads, s, d = x.shape
    if n_rep == 1:
        return x
    return x[:, :, None, :, :].expand(b, kv_heads, n_rep, s, d).reshape(b, kv_heads * n_rep, s, d)


def llama_logits(cfg, w, ids, mask):
    h_size = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    kv_heads = cfg.get("num_key_value_heads", heads)
    head_dim = cfg.get("head_dim", h_size // heads)
    eps = cfg["rms_norm_eps"]
    b, t = ids.shape

    def lin(x, name):
        return F.linear(x, w[name + ".weight"], w.get(name + ".bias"))

    x = F.embedding(ids, w["model.embed_tokens.weight"])
    cos, sin = llama_rotary(llama_inv_freq(cfg, head_dim), position_ids_from_mask(mask), x.dtype)
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    attn_mask = causal_padding_mask(mask, x.dtype)
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        residual = x
        x = llama_rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = lin(x, p + "self_attn.q_proj").view(b, t, -1, head_dim).transpose(1, 2)
        k = lin(x, p + "self_attn.k_proj").view(b, t, -1, head_dim).transpose(1, 2)
        v = lin(x, p + "self_attn.v_proj").view(b, t, -1, head_dim).transpose(1, 2)
        q = (q * cos) + (rotate_half(q) * sin)
        k = (k * cos) + (rotate_half(k) * sin)
        k = repeat_kv(k, heads // kv_heads)
        v = repeat_kv(v, heads // kv_heads)
        scores = torch.matmul(q, k.transpose(2, 3)) * head_dim ** -0.5 + attn_mask
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(probs, v).transpose(1, 2).reshape(b, t, -1)
        x = residual + lin(out, p + "self_attn.o_proj")
        residual = x
        x = llama_rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        x = lin(F.silu(lin(x, p + "mlp.gate_proj")) * lin(x, p + "mlp.up_proj"), p + "mlp.down_proj")
        x = residual + x
    x = llama_rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings", True) else w["lm_head.weight"]
    return F.linear(x, head).float()


# ---------------------------------------------------------------- GPT-2 ----

def conv1d(x, w, name):
    """transformers' Conv1D: weight stored [in, out]."""
    size_out = x.size()[:-1] + (w[name + ".weight"].size(-1),)
    y = torch.addmm(w[name + ".bias"], x.view(-1, x.size(-1)), w[name + ".weight"])
    return y.view(size_out)


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def gpt2_logits(cfg, w, ids, mask):
    n_embd = cfg["n_embd"]
    heads = cfg["n_head"]
    head_dim = n_embd // heads
    eps = cfg["layer_norm_epsilon"]
    b, t = ids.shape
    x = F.embedding(ids, w["transformer.wte.weight"]) + \
        F.embedding(position_ids_from_mask(mask), w["transformer.wpe.weight"])
    dtype = x.dtype
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool))[None, None]
    extended = (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min

    def split_heads(y):
        return y.view(b, t, heads, head_dim).permute(0, 2, 1, 3)

    for layer in range(cfg["n_layer"]):
        p = f"transformer.h.{layer}."
        residual = x
        x = F.layer_norm(x, (n_embd,), w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        q, k, v = conv1d(x, w, p + "attn.c_attn").split(n_embd, dim=2)
        q, k, v = split_heads(q), split_heads(k), split_heads(v)
        scores = torch.matmul(q, k.transpose(-1, -2))
        scores = scores / torch.full([], v.size(-1) ** 0.5, dtype=scores.dtype)
        scores = torch.where(causal, scores, torch.full([], torch.finfo(dtype).min, dtype=dtype))
        scores = scores + extended
        probs = F.softmax(scores, dim=-1).type(v.dtype)
        out = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous().view(b, t, n_embd)
        x = residual + conv1d(out, w, p + "attn.c_proj")
        residual = x
        x = F.layer_norm(x, (n_embd,), w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        x = residual + conv1d(gelu_new(conv1d(x, w, p + "mlp.c_fc")), w, p + "mlp.c_proj")
    x = F.layer_norm(x, (n_embd,), w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], eps)
    return F.linear(x, w["transformer.wte.weight"]).float()


def main():
    out = {}
    with torch.no_grad():
        for name in MODELS:
            d = os.path.join(HERE, name)
            with open(os.path.join(d, "config.json")) as f:
                cfg = json.load(f)
            weights = read_safetensors(os.path.join(d, "model.safetensors"))
            ids, mask = inputs(cfg["vocab_size"])
            logits_fn = gpt2_logits if cfg["model_type"] == "gpt2" else llama_logits
            out[name + ".input_ids"] = ids
            out[name + ".attention_mask"] = mask
            out[name + ".logits"] = logits_fn(cfg, weights, ids, mask)
    write_safetensors(os.path.join(HERE, "reference_logits.safetensors"), out)
    print("wrote", os.path.join(HERE, "reference_logits.safetensors"))


if __name__ == "__main__":
    main()
