// safetensors reader and writer (https://github.com/huggingface/safetensors).
// Layout: u64 little-endian header length N, N bytes of UTF-8 JSON header,
// then the data buffer. The reader memory-maps the file and validates every
// rule of the format before any tensor is handed out; errors name the file,
// the tensor and the rule that failed. No LibTorch here: worker/tensor_io.h
// turns TensorInfo + bytes into torch::Tensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace promptsweep {

enum class DType { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool };

// "F32", "BF16", ... as written in headers.
std::string_view DTypeName(DType dtype);
// Size of one element in bytes.
std::size_t DTypeSize(DType dtype);
// Inverse of DTypeName; nullopt for names this reader does not support.
std::optional<DType> ParseDType(std::string_view name);

// One tensor entry of a header. Offsets are relative to the data buffer.
struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // data_offsets[0]
  uint64_t end = 0;    // data_offsets[1]

  int64_t NumElements() const;
  uint64_t NumBytes() const { return end - begin; }
};

// The validated content of a header.
struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;  // sorted by data offset (file order)
  std::map<std::string, std::string> metadata;  // "__metadata__"
  uint64_t data_start = 0;  // 8 + header length: file offset of the data buffer
};

// Validates a whole safetensors file held in memory (header and buffer sizes).
// `where` names it in errors. Used by SafetensorsFile::Open and the fuzzer.
SafetensorsHeader ParseSafetensors(const uint8_t* data, std::size_t size, const std::string& where);

// A memory-mapped, validated safetensors file. Immutable after Open, so safe to
// share between threads.
class SafetensorsFile {
 public:
  static std::unique_ptr<SafetensorsFile> Open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }

  // nullptr when absent.
  const TensorInfo* Find(std::string_view name) const;
  // Throws Error "path: no tensor named 'x'" when absent.
  const TensorInfo& Get(std::string_view name) const;
  // Start of the tensor's bytes inside the mapping (NumBytes() long).
  const uint8_t* Data(const TensorInfo& info) const;

 private:
  SafetensorsFile(std::string path, const uint8_t* data, std::size_t size);

  std::string path_;
  const uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  SafetensorsHeader header_;
  std::map<std::string, std::size_t, std::less<>> index_;  // name -> position in tensors
};

// A tensor to write: raw little-endian row-major bytes.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  std::size_t num_bytes = 0;
};

// Serialises like the reference writer: tensors ordered by dtype alignment
// (largest first, in the reference enum's order: I64 F64 F32 I32 BF16 F16 I16
// I8 U8 BOOL) then name, "__metadata__" first in the header (omitted when
// `metadata` is empty), header padded with spaces to a multiple of 8. Throws
// on duplicate names or size mismatch.
std::string SerializeSafetensors(const std::vector<TensorToWrite>& tensors,
                                 const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// Writes SerializeSafetensors(...) to `path` atomically (temp file + rename),
// so a crash never leaves a half-written file.
void WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                      const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// A Hugging Face checkpoint: one `model.safetensors`, or shards listed by
// `model.safetensors.index.json` ("weight_map": tensor name -> shard file).
// Open() accepts a model directory, a .safetensors file or an index file.
class CheckpointReader {
 public:
  static std::unique_ptr<CheckpointReader> Open(const std::string& path);

  std::vector<std::string> TensorNames() const;  // sorted
  const TensorInfo* Find(std::string_view name) const;
  // Throws Error naming the tensor and the checkpoint when absent.
  const TensorInfo& Get(std::string_view name) const;
  const uint8_t* Data(std::string_view name) const;
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*, std::less<>> owner_;  // tensor -> file
};

}  // namespace promptsweep
