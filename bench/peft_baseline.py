#!/usr/bin/env python3
"""PyTorch-eager baseline for bench/engine_bench.cc: the same prompt-tuning
training step as Hugging Face transformers + PEFT compute it, on the same
weights, batch, initial prompt and thread count.

Runs on Debian's /usr/bin/python3 with python3-torch only (no transformers or
peft there), so the model is written out here from transformers'
modeling_llama.py math (eager attention, as transformers uses with torch < 2:
LlamaRMSNorm in float32, rotate_half rotary embeddings, repeat_kv for grouped
query attention, softmax upcast to float32, SiLU-gated MLP, tied LM head), and
the prompt step from PEFT's PeftModelForCausalLM.forward for PROMPT_TUNING:

    prompts = prompt_encoder(prompt_tokens).to(inputs_embeds.dtype)
    inputs_embeds = cat((prompts, word_embeddings(input_ids)), dim=1)
    labels = cat((full((B, N), -100), labels), dim=1)
    logits = lm_head(hidden) at every position; loss = cross_entropy(
        logits[:, :-1].float(), labels[:, 1:], ignore_index=-100)   (ForCausalLMLoss)

Frozen weights have requires_grad=False, so autograd computes no weight
gradients (as PEFT freezes the base model). Optimizer: torch.optim.AdamW on the
prompt (lr 1e-3, no weight decay), as engine_bench's step.

Usage: peft_baseline.py --model DIR --threads T --dtype float32|bfloat16 --steps S
Prints one JSON line like engine_bench step.
"""
import argparse
import json
import math
import os
import resource
import struct
import time

import torch
import torch.nn.functional as F

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64,
          "F64": torch.float64, "I32": torch.int32}


def load_safetensors(path):
    """The format by hand (no safetensors package on Debian 12)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    start = 8 + n
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = bytearray(data[start + begin:start + end])
        tensors[name] = torch.frombuffer(raw, dtype=DTYPES[info["dtype"]]).reshape(info["shape"]).clone()
    return tensors


class Llama:
    """transformers' LlamaForCausalLM forward (eager attention), frozen."""

    def __init__(self, config, weights, dtype):
        self.c = config
        self.w = {k: v.to(dtype).requires_grad_(False) for k, v in weights.items()}
        self.dtype = dtype
        self.heads = config["num_attention_heads"]
        self.kv_heads = config.get("num_key_value_heads", self.heads)
        self.head_dim = config.get("head_dim", config["hidden_size"] // self.heads)
        self.eps = config.get("rms_norm_eps", 1e-6)
        d = self.head_dim
        self.inv_freq = 1.0 / (config.get("rope_theta", 10000.0) ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))

    def rms_norm(self, x, weight):
        input_dtype = x.dtype
        x = x.to(torch.float32)
        variance = x.pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(variance + self.eps)
        return weight * x.to(input_dtype)

    @staticmethod
    def rotate_half(x):
        x1 = x[..., : x.shape[-1] // 2]
        x2 = x[..., x.shape[-1] // 2:]
        return torch.cat((-x2, x1), dim=-1)

    def forward(self, inputs_embeds):
        b, s, _ = inputs_embeds.shape
        w = self.w
        position_ids = torch.arange(s).unsqueeze(0)  # PEFT drops position_ids: 0..S-1
        freqs = position_ids[:, :, None].float() * self.inv_freq[None, None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = emb.cos().to(self.dtype)[:, None]  # [1, 1, S, D]
        sin = emb.sin().to(self.dtype)[:, None]
        mask = torch.full((s, s), torch.finfo(self.dtype).min, dtype=self.dtype).triu(1)[None, None]
        x = inputs_embeds
        groups = self.heads // self.kv_heads
        for i in range(self.c["num_hidden_layers"]):
            p = f"model.layers.{i}."
            h = self.rms_norm(x, w[p + "input_layernorm.weight"])
            q = F.linear(h, w[p + "self_attn.q_proj.weight"]).view(b, s, self.heads, self.head_dim).transpose(1, 2)
            k = F.linear(h, w[p + "self_attn.k_proj.weight"]).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
            v = F.linear(h, w[p + "self_attn.v_proj.weight"]).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
            q = q * cos + self.rotate_half(q) * sin
            k = k * cos + self.rotate_half(k) * sin
            k = k[:, :, None].expand(b, self.kv_heads, groups, s, self.head_dim).reshape(b, self.heads, s, self.head_dim)
            v = v[:, :, None].expand(b, self.kv_heads, groups, s, self.head_dim).reshape(b, self.heads, s, self.head_dim)
            scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_dim) + mask
            probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(self.dtype)
            o = torch.matmul(probs, v).transpose(1, 2).reshape(b, s, -1)
            x = x + F.linear(o, w[p + "self_attn.o_proj.weight"])
            h = self.rms_norm(x, w[p + "post_attention_layernorm.weight"])
            gate = F.linear(h, w[p + "mlp.gate_proj.weight"])
            up = F.linear(h, w[p + "mlp.up_proj.weight"])
            x = x + F.linear(F.silu(gate) * up, w[p + "mlp.down_proj.weight"])
        x = self.rms_norm(x, w["model.norm.weight"])
        head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
        return F.linear(x, head)  # logits at every position, as LlamaForCausalLM


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args.dtype]

    with open(os.path.join(args.model, "config.json")) as f:
        config = json.load(f)
    model = Llama(config, load_safetensors(os.path.join(args.model, "model.safetensors")), dtype)
    batch = load_safetensors(os.path.join(args.model, "batch.safetensors"))
    input_ids = torch.cat((batch["input_ids"], batch["target_ids"]), dim=1)  # [B, L]
    b, length = input_ids.shape
    labels = torch.full_like(input_ids, -100)
    labels[:, -1] = batch["target_ids"][:, 0]
    initial = load_safetensors(os.path.join(args.model, "prompt.safetensors"))["prompt"]
    n = initial.shape[0]
    prompt_encoder = torch.nn.Embedding(n, initial.shape[1])  # PEFT's PromptEmbedding, float32
    with torch.no_grad():
        prompt_encoder.weight.copy_(initial)
    optimizer = torch.optim.AdamW(prompt_encoder.parameters(), lr=1e-3, weight_decay=0.0)
    prompt_tokens = torch.arange(n).unsqueeze(0).expand(b, -1)
    word_embeddings = model.w["model.embed_tokens.weight"]

    losses = []
    seconds = []
    for _ in range(args.steps):
        start = time.perf_counter()
        inputs_embeds = F.embedding(input_ids, word_embeddings)
        prompts = prompt_encoder(prompt_tokens).to(inputs_embeds.dtype)
        inputs_embeds = torch.cat((prompts, inputs_embeds), dim=1)
        full_labels = torch.cat((torch.full((b, n), -100), labels), dim=1)
        logits = model.forward(inputs_embeds)
        loss = F.cross_entropy(logits[:, :-1, :].float().reshape(-1, logits.shape[-1]),
                               full_labels[:, 1:].reshape(-1), ignore_index=-100)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        seconds.append(time.perf_counter() - start)
        losses.append(loss.item())
    per_step = sum(seconds[1:]) / max(1, len(seconds) - 1) if len(seconds) > 1 else seconds[0]
    print(json.dumps({"impl": "pytorch_eager_peft", "threads": args.threads, "dtype": args.dtype,
                      "seconds_per_step": per_step, "tokens_per_second": b * length / per_step,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                      "losses": losses}), flush=True)


if __name__ == "__main__":
    main()
