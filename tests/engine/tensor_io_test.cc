#include "engine/tensor_io.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/json_util.h"
#include "test_utils.h"

namespace promptsweep {
namespace {

using test::ReadFileBytes;
using test::ScopedTempDir;
using test::WriteFileBytes;

constexpr DType kEveryDType[] = {DType::kF64, DType::kF32, DType::kF16, DType::kBF16, DType::kI64,
                                 DType::kI32, DType::kI16, DType::kI8,  DType::kU8,   DType::kBool};

const std::string kReferenceDir = std::string(PROMPTSWEEP_TEST_DATA_DIR) + "/safetensors";

// Bytes of a tensor as stored (after making it contiguous).
std::string RawBytes(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), c.nbytes());
}

class TensorIoTest : public ::testing::Test {
 protected:
  void SetUp() override { torch::manual_seed(1234); }

  // Random bit patterns, so floats include NaN payloads, infinities,
  // subnormals and -0: a round trip must keep every bit.
  static torch::Tensor RandomBits(torch::ScalarType dtype, std::vector<int64_t> shape) {
    if (dtype == torch::kBool) return torch::randint(0, 2, shape, torch::kUInt8).to(torch::kBool);
    int64_t count = 1;
    for (int64_t d : shape) count *= d;
    const int64_t item = static_cast<int64_t>(c10::elementSize(dtype));
    return torch::randint(0, 256, {count * item}, torch::kUInt8).view(dtype).reshape(shape);
  }

  ScopedTempDir dir_;
};

TEST_F(TensorIoTest, DTypeMappingIsOneToOne) {
  const std::pair<DType, torch::ScalarType> expected[] = {
      {DType::kF64, torch::kFloat64},   {DType::kF32, torch::kFloat32}, {DType::kF16, torch::kFloat16},
      {DType::kBF16, torch::kBFloat16}, {DType::kI64, torch::kInt64},   {DType::kI32, torch::kInt32},
      {DType::kI16, torch::kInt16},     {DType::kI8, torch::kInt8},     {DType::kU8, torch::kUInt8},
      {DType::kBool, torch::kBool}};
  for (const auto& [dtype, scalar_type] : expected) {
    EXPECT_EQ(ToTorchDType(dtype), scalar_type) << DTypeName(dtype);
    EXPECT_EQ(FromTorchDType(scalar_type), dtype) << DTypeName(dtype);
    EXPECT_EQ(c10::elementSize(scalar_type), DTypeSize(dtype)) << DTypeName(dtype);
  }
  EXPECT_THROW(FromTorchDType(torch::kComplexFloat), Error);
  EXPECT_THROW(FromTorchDType(torch::kQInt8), Error);
}

TEST_F(TensorIoTest, RoundTripsEveryDTypeBitExact) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (DType dtype : kEveryDType) {
    tensors.emplace_back(std::string("t_") + std::string(DTypeName(dtype)),
                         RandomBits(ToTorchDType(dtype), {3, 5, 7}));
  }
  const std::string path = dir_.File("all.safetensors");
  SaveSafetensors(path, tensors, {{"format", "pt"}, {"step", "7"}});

  const std::map<std::string, torch::Tensor> loaded = LoadSafetensors(path);
  ASSERT_EQ(loaded.size(), tensors.size());
  for (const auto& [name, original] : tensors) {
    const torch::Tensor& back = loaded.at(name);
    EXPECT_EQ(back.scalar_type(), original.scalar_type()) << name;
    EXPECT_EQ(back.sizes(), original.sizes()) << name;
    EXPECT_TRUE(back.is_contiguous()) << name;
    EXPECT_EQ(RawBytes(back), RawBytes(original)) << name;
  }
  EXPECT_EQ(SafetensorsFile::Open(path)->metadata().at("step"), "7");
}

TEST_F(TensorIoTest, RoundTripsScalarsAndEmptyTensors) {
  const std::string path = dir_.File("edge.safetensors");
  SaveSafetensors(path, {{"scalar", torch::tensor(2.5, torch::kFloat64)},
                         {"empty", torch::zeros({0, 4}, torch::kBFloat16)}});
  const auto loaded = LoadSafetensors(path);
  EXPECT_EQ(loaded.at("scalar").dim(), 0);
  EXPECT_EQ(loaded.at("scalar").item<double>(), 2.5);
  EXPECT_EQ(loaded.at("empty").sizes(), (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(loaded.at("empty").scalar_type(), torch::kBFloat16);
}

TEST_F(TensorIoTest, SavesNonContiguousTensorsByValue) {
  const torch::Tensor base = torch::arange(24, torch::kFloat32).reshape({4, 6});
  const torch::Tensor transposed = base.t();  // strides swapped
  const torch::Tensor strided = base.index({torch::indexing::Slice(), torch::indexing::Slice(1, 6, 2)});
  const torch::Tensor offset_view = base[2];                                              // storage offset 12
  const torch::Tensor expanded = torch::tensor({1, 2, 3}, torch::kInt16).expand({4, 3});  // stride 0
  ASSERT_FALSE(transposed.is_contiguous());
  ASSERT_FALSE(strided.is_contiguous());
  ASSERT_FALSE(expanded.is_contiguous());

  const std::string path = dir_.File("views.safetensors");
  SaveSafetensors(path, {{"transposed", transposed},
                         {"strided", strided},
                         {"offset_view", offset_view},
                         {"expanded", expanded},
                         {"needs_grad", base.clone().requires_grad_(true)}});
  const auto loaded = LoadSafetensors(path);
  EXPECT_TRUE(torch::equal(loaded.at("transposed"), transposed));
  EXPECT_TRUE(torch::equal(loaded.at("strided"), strided));
  EXPECT_TRUE(torch::equal(loaded.at("offset_view"), offset_view));
  EXPECT_TRUE(torch::equal(loaded.at("expanded"), expanded));
  EXPECT_TRUE(torch::equal(loaded.at("needs_grad"), base));
  EXPECT_EQ(loaded.at("transposed").sizes(), (std::vector<int64_t>{6, 4}));
  EXPECT_EQ(loaded.at("transposed")[0][1].item<float>(), 6.0f);  // row-major of the view, not the storage
}

TEST_F(TensorIoTest, SaveRejectsUnsupportedDTypeNamingTheTensor) {
  const std::string path = dir_.File("bad.safetensors");
  EXPECT_TRUE(test::HasText(
      test::ErrorOf([&] {
        SaveSafetensors(path, {{"ok", torch::ones({2})}, {"phase", torch::ones({2}, torch::kComplexFloat)}});
      }),
      "tensor 'phase'"));
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(TensorIoTest, ReadTensorOwnsItsMemory) {
  const std::string path = dir_.File("owned.safetensors");
  const torch::Tensor original = torch::randn({16, 8});
  SaveSafetensors(path, {{"w", original}});
  torch::Tensor read;
  {
    const auto file = SafetensorsFile::Open(path);
    read = ReadTensor(*file, file->Get("w"));
  }  // unmapped here
  std::filesystem::remove(path);
  EXPECT_TRUE(torch::equal(read, original));
  read.add_(1.0f);  // writable: not a view of a read-only mapping
  EXPECT_TRUE(torch::equal(read, original + 1.0f));
}

TEST_F(TensorIoTest, ReadsTensorsFromShardedCheckpoint) {
  const torch::Tensor a = torch::randn({3, 2});
  const torch::Tensor b = torch::arange(5, torch::kInt64);
  SaveSafetensors(dir_.File("s1.safetensors"), {{"a", a}});
  SaveSafetensors(dir_.File("s2.safetensors"), {{"b", b}});
  WriteFileBytes(dir_.File("model.safetensors.index.json"),
                 R"({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}})");
  const auto checkpoint = CheckpointReader::Open(dir_.path().string());
  EXPECT_TRUE(torch::equal(ReadTensor(*checkpoint, "a"), a));
  EXPECT_TRUE(torch::equal(ReadTensor(*checkpoint, "b"), b));
  EXPECT_TRUE(test::HasText(test::ErrorOf([&] { ReadTensor(*checkpoint, "c"); }), "'c'"));
}

TEST_F(TensorIoTest, ReadsMisalignedTensorData) {
  // Other writers need not pad the header: here F64 data starts at file
  // offset 8 + 61, which is not 8-byte aligned in the mapping.
  const std::string header =
      R"({"x":{"dtype":"F64","shape":[3],"data_offsets":[0,24]}})" + std::string(6, ' ');
  ASSERT_EQ(header.size() % 8, 5u);
  const double values[] = {1.25, -7.5, 1e-310};
  std::string bytes;
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xFF));
  bytes += header + std::string(reinterpret_cast<const char*>(values), sizeof(values));
  const std::string path = dir_.File("misaligned.safetensors");
  WriteFileBytes(path, bytes);

  const torch::Tensor x = LoadSafetensors(path).at("x");
  ASSERT_EQ(x.numel(), 3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(x[i].item<double>(), values[i]);
}

// reference.safetensors was written by tests/data/safetensors/make_reference.py
// from torch's own bytes; reference_expected.json holds the values torch read back.
TEST_F(TensorIoTest, ReadsFileWrittenByPython) {
  const nlohmann::json expected = ReadJsonFile(kReferenceDir + "/reference_expected.json");
  const auto file = SafetensorsFile::Open(kReferenceDir + "/reference.safetensors");
  EXPECT_EQ(nlohmann::json(file->metadata()), expected.at("metadata"));
  ASSERT_EQ(file->tensors().size(), expected.at("tensors").size());

  for (const auto& [name, want] : expected.at("tensors").items()) {
    SCOPED_TRACE(name);
    const TensorInfo& info = file->Get(name);
    EXPECT_EQ(DTypeName(info.dtype), want.at("dtype").get<std::string>());
    const torch::Tensor t = ReadTensor(*file, info);
    EXPECT_EQ(t.sizes().vec(), want.at("shape").get<std::vector<int64_t>>());
    const torch::Tensor flat = t.reshape({-1});
    const nlohmann::json& values = want.at("values");
    ASSERT_EQ(flat.numel(), static_cast<int64_t>(values.size()));
    for (int64_t i = 0; i < flat.numel(); ++i) {
      if (t.is_floating_point()) {
        const double got = flat[i].item<double>();
        const double wanted = values[i].get<double>();
        EXPECT_EQ(got, wanted) << "element " << i;
        EXPECT_EQ(std::signbit(got), std::signbit(wanted)) << "element " << i;  // -0.0
      } else {
        EXPECT_EQ(flat[i].to(torch::kInt64).item<int64_t>(), values[i].get<int64_t>()) << "element " << i;
      }
    }
  }
}

// Saving what was read reproduces the Python-written file byte for byte: the
// same header layout, tensor order and padding as the reference writer.
TEST_F(TensorIoTest, RewritesPythonFileByteExact) {
  const std::string reference = kReferenceDir + "/reference.safetensors";
  const auto file = SafetensorsFile::Open(reference);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& [name, tensor] : LoadSafetensors(reference))
    tensors.emplace_back(name, tensor);  // by name
  const std::string path = dir_.File("rewritten.safetensors");
  SaveSafetensors(path, tensors, file->metadata());
  EXPECT_EQ(ReadFileBytes(path), ReadFileBytes(reference));
}

}  // namespace
}  // namespace promptsweep
