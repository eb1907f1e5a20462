#include "engine/tensor_io.h"

#include <cstring>
#include <optional>

#include "common/error.h"

namespace promptsweep {
namespace {

// safetensors stores little-endian bytes and the copies below are plain memcpy.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "tensor IO assumes a little-endian host");

std::optional<DType> MaybeFromTorchDType(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat64: return DType::kF64;
    case torch::kFloat32: return DType::kF32;
    case torch::kFloat16: return DType::kF16;
    case torch::kBFloat16: return DType::kBF16;
    case torch::kInt64: return DType::kI64;
    case torch::kInt32: return DType::kI32;
    case torch::kInt16: return DType::kI16;
    case torch::kInt8: return DType::kI8;
    case torch::kUInt8: return DType::kU8;
    case torch::kBool: return DType::kBool;
    default: return std::nullopt;
  }
}

// Copies into freshly allocated memory rather than from_blob + clone: the
// mapped bytes need not be aligned for their dtype (headers from other
// writers are not always padded to 8).
torch::Tensor CopyToTensor(const TensorInfo& info, const uint8_t* data) {
  torch::Tensor tensor = torch::empty(info.shape, torch::TensorOptions().dtype(ToTorchDType(info.dtype)));
  PS_CHECK(static_cast<uint64_t>(tensor.nbytes()) == info.NumBytes(), "tensor '", info.name, "'");
  if (info.NumBytes() > 0) std::memcpy(tensor.data_ptr(), data, info.NumBytes());
  return tensor;
}

}  // namespace

torch::ScalarType ToTorchDType(DType dtype) {
  switch (dtype) {
    case DType::kF64: return torch::kFloat64;
    case DType::kF32: return torch::kFloat32;
    case DType::kF16: return torch::kFloat16;
    case DType::kBF16: return torch::kBFloat16;
    case DType::kI64: return torch::kInt64;
    case DType::kI32: return torch::kInt32;
    case DType::kI16: return torch::kInt16;
    case DType::kI8: return torch::kInt8;
    case DType::kU8: return torch::kUInt8;
    case DType::kBool: return torch::kBool;
  }
  PS_CHECK(false, "unknown DType ", static_cast<int>(dtype));
  return torch::kFloat32;
}

DType FromTorchDType(torch::ScalarType dtype) {
  const std::optional<DType> result = MaybeFromTorchDType(dtype);
  if (!result) {
    throw Error(StrCat("torch dtype ", c10::toString(dtype),
                       " cannot be stored in safetensors (supported: float64, float32, float16, "
                       "bfloat16, int64, int32, int16, int8, uint8, bool)"));
  }
  return *result;
}

torch::Tensor ReadTensor(const SafetensorsFile& file, const TensorInfo& info) {
  return CopyToTensor(info, file.Data(info));
}

torch::Tensor ReadTensor(const CheckpointReader& checkpoint, const std::string& name) {
  return CopyToTensor(checkpoint.Get(name), checkpoint.Data(name));
}

std::map<std::string, torch::Tensor> LoadSafetensors(const std::string& path) {
  const std::unique_ptr<SafetensorsFile> file = SafetensorsFile::Open(path);
  std::map<std::string, torch::Tensor> tensors;
  for (const TensorInfo& info : file->tensors()) tensors.emplace(info.name, ReadTensor(*file, info));
  return tensors;
}

void SaveSafetensors(const std::string& path,
                     const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                     const std::map<std::string, std::string>& metadata) {
  // Keeps the CPU contiguous copies alive until the bytes are written.
  std::vector<torch::Tensor> host;
  std::vector<TensorToWrite> to_write;
  host.reserve(tensors.size());
  to_write.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    if (!tensor.defined()) {
      throw Error(StrCat(path, ": tensor '", name, "' is undefined"));
    }
    const std::optional<DType> dtype = MaybeFromTorchDType(tensor.scalar_type());
    if (!dtype) {
      throw Error(StrCat(path, ": tensor '", name, "' has dtype ", c10::toString(tensor.scalar_type()),
                         ", which safetensors cannot hold here; convert it to one of float64, "
                         "float32, float16, bfloat16, int64, int32, int16, int8, uint8, bool"));
    }
    host.push_back(tensor.detach().to(torch::kCPU).contiguous());
    const torch::Tensor& t = host.back();
    to_write.push_back(
        TensorToWrite{name, *dtype, t.sizes().vec(), t.data_ptr(), static_cast<std::size_t>(t.nbytes())});
  }
  WriteSafetensors(path, to_write, metadata);
}

}  // namespace promptsweep
