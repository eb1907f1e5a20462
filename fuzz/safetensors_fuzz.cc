// libFuzzer target for the safetensors reader. Any input may be rejected with
// promptsweep::Error; anything else escaping, a crash or a sanitizer report is
// a bug. Inputs that parse must satisfy the format's invariants, and must
// survive a write/read round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/safetensors.h"

namespace {

using promptsweep::SafetensorsHeader;
using promptsweep::TensorInfo;

void CheckInvariants(const SafetensorsHeader& header, std::size_t size) {
  if (header.data_start < 8 || header.data_start > size) __builtin_trap();
  const uint64_t buffer_size = size - header.data_start;
  uint64_t expected_begin = 0;
  std::set<std::string> names;
  for (const TensorInfo& info : header.tensors) {
    if (info.name == "__metadata__") __builtin_trap();
    if (!names.insert(info.name).second) __builtin_trap();  // duplicate name
    if (info.begin != expected_begin || info.end < info.begin) __builtin_trap();
    if (info.end > buffer_size) __builtin_trap();
    uint64_t elements = 1;
    for (int64_t dim : info.shape) {
      if (dim < 0) __builtin_trap();
      elements *= static_cast<uint64_t>(dim);  // cannot wrap: the reader checked
    }
    if (static_cast<int64_t>(elements) != info.NumElements()) __builtin_trap();
    if (elements * promptsweep::DTypeSize(info.dtype) != info.NumBytes()) __builtin_trap();
    expected_begin = info.end;
  }
  if (expected_begin != buffer_size) __builtin_trap();  // tensors cover the buffer exactly
}

// Re-serialises what was read and parses it again: the writer must accept
// anything the reader accepts, and the round trip must keep every tensor.
void CheckRoundTrip(const SafetensorsHeader& header, const uint8_t* data) {
  std::vector<promptsweep::TensorToWrite> tensors;
  for (const TensorInfo& info : header.tensors) {
    tensors.push_back({info.name, info.dtype, info.shape, data + header.data_start + info.begin,
                       static_cast<std::size_t>(info.NumBytes())});
  }
  const std::string bytes = promptsweep::SerializeSafetensors(tensors, header.metadata);
  const auto* out = reinterpret_cast<const uint8_t*>(bytes.data());
  const SafetensorsHeader again = promptsweep::ParseSafetensors(out, bytes.size(), "round trip");
  if (again.metadata != header.metadata) __builtin_trap();
  if (again.tensors.size() != header.tensors.size()) __builtin_trap();
  if (again.data_start % 8 != 0) __builtin_trap();
  for (const TensorInfo& a : again.tensors) {
    const TensorInfo* b = nullptr;
    for (const TensorInfo& candidate : header.tensors) {
      if (candidate.name == a.name) b = &candidate;
    }
    if (b == nullptr || a.dtype != b->dtype || a.shape != b->shape || a.NumBytes() != b->NumBytes()) {
      __builtin_trap();
    }
    if (std::string(reinterpret_cast<const char*>(out + again.data_start + a.begin), a.NumBytes()) !=
        std::string(reinterpret_cast<const char*>(data + header.data_start + b->begin), b->NumBytes())) {
      __builtin_trap();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  SafetensorsHeader header;
  try {
    header = promptsweep::ParseSafetensors(data, size, "fuzz.safetensors");
  } catch (const promptsweep::Error&) {
    return 0;  // rejected with a message: the expected outcome for most inputs
  }
  CheckInvariants(header, size);
  CheckRoundTrip(header, data);  // an Error here escapes: the writer refused valid input
  return 0;
}
