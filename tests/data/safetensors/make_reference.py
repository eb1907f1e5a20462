#!/usr/bin/python3
"""Writes reference.safetensors and reference_expected.json for tensor_io_test.

There is no `safetensors` package on the build machines, so this writes the
format by hand, following the spec (huggingface/safetensors README) and the
reference writer's layout (safetensors/src/tensor.rs `prepare`):
  u64 little-endian header length N, N bytes of compact JSON with
  "__metadata__" first and tensors sorted by descending dtype alignment then
  name, spaces padding the header to a multiple of 8, then the raw
  little-endian row-major tensor bytes in header order.
Tensor bytes come from torch itself, so the C++ reader is checked against
torch's own encoding of each dtype. Run with Debian's python3-torch:
  /usr/bin/python3 tests/data/safetensors/make_reference.py
"""
import json
import os
import struct
import sys

import torch

assert sys.byteorder == "little"

HERE = os.path.dirname(os.path.abspath(__file__))

# name -> (safetensors dtype, torch tensor)
TENSORS = {
    "f64": ("F64", torch.tensor([[1.5, -2.25], [1e-300, 3.0e300]], dtype=torch.float64)),
    "f32": ("F32", torch.tensor([[0.1, -1.5, 3.25], [1e-3, 65504.0, -0.0]], dtype=torch.float32)),
    "f16": ("F16", torch.tensor([0.5, -1.0, 65504.0, 0.1, 6.0e-8], dtype=torch.float16)),
    "bf16": ("BF16", torch.tensor([1.0, -3.14159, 1.0e38, 0.1], dtype=torch.bfloat16)),
    "i64": ("I64", torch.tensor([-9007199254740993, 2**62, -1], dtype=torch.int64)),
    "i32": ("I32", torch.tensor([[-2147483648, 2147483647], [0, 7]], dtype=torch.int32)),
    "i16": ("I16", torch.tensor([-32768, 32767], dtype=torch.int16)),
    "i8": ("I8", torch.tensor([-128, 127, 0], dtype=torch.int8)),
    "u8": ("U8", torch.tensor([0, 255, 128], dtype=torch.uint8)),
    "bool": ("BOOL", torch.tensor([[True, False], [False, True]], dtype=torch.bool)),
    "scalar": ("F32", torch.tensor(42.5, dtype=torch.float32)),
    "empty": ("F32", torch.zeros((0, 3), dtype=torch.float32)),
}
METADATA = {"format": "pt", "source": "make_reference.py"}

# Position in the reference Dtype enum (increasing alignment order).
ALIGNMENT_RANK = {"BOOL": 0, "U8": 1, "I8": 2, "I16": 3, "F16": 4, "BF16": 5,
                  "I32": 6, "F32": 7, "F64": 8, "I64": 9}


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16; same bits as int16
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def main():
    order = sorted(TENSORS, key=lambda n: (-ALIGNMENT_RANK[TENSORS[n][0]], n))
    header = {"__metadata__": dict(sorted(METADATA.items()))}
    data = b""
    for name in order:
        dtype, t = TENSORS[name]
        raw = tensor_bytes(t)
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(os.path.join(HERE, "reference.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)

    # Values as torch reads them back, flattened row-major; bools as 0/1.
    expected = {}
    for name, (dtype, t) in TENSORS.items():
        flat = t.reshape(-1)
        if t.dtype.is_floating_point:
            values = [float(v) for v in flat.double().tolist()]
        else:
            values = [int(v) for v in flat.long().tolist()]
        expected[name] = {"dtype": dtype, "shape": list(t.shape), "values": values}
    with open(os.path.join(HERE, "reference_expected.json"), "w") as f:
        json.dump({"metadata": METADATA, "tensors": expected}, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
