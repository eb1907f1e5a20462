// Bridge between safetensors (common/safetensors.h, torch-free) and LibTorch.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "common/safetensors.h"

namespace promptsweep {

torch::ScalarType ToTorchDType(DType dtype);
// Throws Error for torch dtypes safetensors cannot hold (complex, quantized).
DType FromTorchDType(torch::ScalarType dtype);

// Copies one tensor of `file` into a new CPU tensor that owns its memory
// (the mapping may close afterwards).
torch::Tensor ReadTensor(const SafetensorsFile& file, const TensorInfo& info);
// Same from a (possibly sharded) checkpoint, by name. Throws Error naming the
// tensor and the checkpoint when absent.
torch::Tensor ReadTensor(const CheckpointReader& checkpoint, const std::string& name);

// Every tensor of a .safetensors file, by name.
std::map<std::string, torch::Tensor> LoadSafetensors(const std::string& path);

// Writes tensors (any device; made contiguous and copied to CPU) with the
// reference writer's layout. Atomic: temp file + rename.
void SaveSafetensors(const std::string& path,
                     const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                     const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace promptsweep
