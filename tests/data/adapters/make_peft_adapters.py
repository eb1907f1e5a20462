#!/usr/bin/env python3
"""Writes PEFT-format prompt-tuning adapters for the tests, following PEFT's own
code path step by step (PEFT itself is not installed here; run with Debian's
/usr/bin/python3, which has python3-torch):

  adapter_config.json  PeftConfigMixin.save_pretrained: json.dumps(asdict(config),
                       indent=2, sort_keys=True) written with no trailing newline.
                       The dataclasses below copy PEFT 0.18's field set for
                       PromptTuningConfig and its bases (peft/config.py,
                       peft/tuners/prompt_tuning/config.py); PeftType/TaskType
                       and PromptTuningInit are str enums, so json writes their
                       values. PeftModel.save_pretrained sets inference_mode=True
                       and base_model_name_or_path before saving.
  adapter_model.safetensors
                       get_peft_model_state_dict -> {"prompt_embeddings": [N, H]}
                       saved by safetensors.torch.save_file(..., metadata=
                       {"format": "pt"}): compact JSON header, "__metadata__"
                       first, each entry {"dtype", "shape", "data_offsets"},
                       padded with spaces to a multiple of 8.

Outputs (deterministic, seed 0):
  peft-text/        TEXT init, non-ASCII init text, tiny-llama sizes (N=4, H=32)
  peft-random.json  the config alone for a RANDOM-init adapter (nulls everywhere)
"""
import enum
import json
import os
import struct
from dataclasses import asdict, dataclass, field
from typing import Optional

import torch


class PeftType(str, enum.Enum):
    PROMPT_TUNING = "PROMPT_TUNING"


class TaskType(str, enum.Enum):
    CAUSAL_LM = "CAUSAL_LM"


class PromptTuningInit(str, enum.Enum):
    TEXT = "TEXT"
    SAMPLE_VOCAB = "SAMPLE_VOCAB"
    RANDOM = "RANDOM"


@dataclass
class PeftConfigMixin:
    task_type: Optional[TaskType] = None
    peft_type: Optional[PeftType] = None
    auto_mapping: Optional[dict] = None
    peft_version: Optional[str] = "0.18.0"


@dataclass
class PeftConfig(PeftConfigMixin):
    base_model_name_or_path: Optional[str] = None
    revision: Optional[str] = None
    inference_mode: bool = False


@dataclass
class PromptLearningConfig(PeftConfig):
    num_virtual_tokens: int = None
    token_dim: int = None
    num_transformer_submodules: Optional[int] = None
    num_attention_heads: Optional[int] = None
    num_layers: Optional[int] = None
    modules_to_save: Optional[list] = None


@dataclass
class PromptTuningConfig(PromptLearningConfig):
    prompt_tuning_init: PromptTuningInit = PromptTuningInit.RANDOM
    prompt_tuning_init_text: Optional[str] = None
    tokenizer_name_or_path: Optional[str] = None
    tokenizer_kwargs: Optional[dict] = None


def config_text(config):
    return json.dumps(asdict(config), indent=2, sort_keys=True)


def write_safetensors(path, tensors):
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    blobs = []
    for name, t in tensors.items():
        data = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for blob in blobs:
            f.write(blob)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    torch.manual_seed(0)
    text = PromptTuningConfig(
        task_type=TaskType.CAUSAL_LM, peft_type=PeftType.PROMPT_TUNING,
        base_model_name_or_path="tests/data/models/tiny-llama", inference_mode=True,
        num_virtual_tokens=4, token_dim=32, num_transformer_submodules=1,
        num_attention_heads=4, num_layers=2, prompt_tuning_init=PromptTuningInit.TEXT,
        prompt_tuning_init_text="Classify: caf\u00e9 \U0001F600 \"quoted\"\ttab",
        tokenizer_name_or_path="tests/data/models/tiny-llama")
    out = os.path.join(here, "peft-text")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "adapter_config.json"), "w") as f:
        f.write(config_text(text))
    write_safetensors(os.path.join(out, "adapter_model.safetensors"),
                      {"prompt_embeddings": torch.randn(4, 32)})

    random = PromptTuningConfig(
        task_type=TaskType.CAUSAL_LM, peft_type=PeftType.PROMPT_TUNING,
        base_model_name_or_path="meta-llama/Llama-3.2-1B", inference_mode=True,
        num_virtual_tokens=20, token_dim=2048, num_transformer_submodules=1,
        num_attention_heads=32, num_layers=16)
    with open(os.path.join(here, "peft-random.json"), "w") as f:
        f.write(config_text(random))


if __name__ == "__main__":
    main()
