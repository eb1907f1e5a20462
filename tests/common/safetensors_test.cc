#include "common/safetensors.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/error.h"
#include "test_utils.h"

namespace promptsweep {
namespace {

namespace fs = std::filesystem;
using test::ReadFileBytes;
using test::ScopedTempDir;
using test::WriteFileBytes;

constexpr DType kEveryDType[] = {DType::kF64, DType::kF32, DType::kF16, DType::kBF16, DType::kI64,
                                 DType::kI32, DType::kI16, DType::kI8,  DType::kU8,   DType::kBool};

std::string LittleEndianU64(uint64_t value) {
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
  return out;
}

// A file exactly as given: length prefix, header text (unpadded unless the
// caller pads it), data bytes.
std::string RawFile(const std::string& header, const std::string& data = "") {
  return LittleEndianU64(header.size()) + header + data;
}

std::string Bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out.push_back(static_cast<char>(v));
  return out;
}

// Deterministic, dtype-dependent bytes; BOOL gets 0/1 so torch-side readers
// would also accept it.
std::string PatternBytes(DType dtype, std::size_t count, int seed) {
  std::string out;
  for (std::size_t i = 0; i < count * DTypeSize(dtype); ++i) {
    out.push_back(static_cast<char>(dtype == DType::kBool ? (i + seed) % 2 : (i * 37 + seed) & 0xFF));
  }
  return out;
}

SafetensorsHeader Parse(const std::string& bytes) {
  return ParseSafetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "model.safetensors");
}

class SafetensorsTest : public ::testing::Test {
 protected:
  // The message of the Error that parsing `bytes` throws; fails the test if it parses.
  static std::string ParseError(const std::string& bytes) {
    return test::ErrorOf([&] { Parse(bytes); });
  }

  // Parsing fails, and the error names the file and the rule.
  static void ExpectRule(const std::string& bytes, const std::string& rule,
                         const std::string& also_contains = "") {
    const std::string message = ParseError(bytes);
    EXPECT_EQ(message.rfind("model.safetensors", 0), 0u) << message;
    EXPECT_NE(message.find("(rule: " + rule), std::string::npos) << message;
    if (!also_contains.empty()) {
      EXPECT_NE(message.find(also_contains), std::string::npos) << message;
    }
  }

  // An F32 entry of `count` elements at [begin, begin + 4 * count).
  static std::string F32Entry(const std::string& name, int count, uint64_t begin) {
    return "\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[" + std::to_string(count) +
           "],\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(begin + 4 * count) + "]}";
  }
};

// --- dtypes and round trips ---

TEST_F(SafetensorsTest, DTypeNamesAndSizesFollowTheSpec) {
  const std::pair<const char*, std::size_t> expected[] = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2},
                                                          {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1},
                                                          {"U8", 1},  {"BOOL", 1}};
  for (std::size_t i = 0; i < std::size(kEveryDType); ++i) {
    EXPECT_EQ(DTypeName(kEveryDType[i]), expected[i].first);
    EXPECT_EQ(DTypeSize(kEveryDType[i]), expected[i].second);
    EXPECT_EQ(ParseDType(expected[i].first), kEveryDType[i]);
  }
  EXPECT_EQ(ParseDType("F8_E4M3"), std::nullopt);
  EXPECT_EQ(ParseDType("f32"), std::nullopt);  // names are case-sensitive
}

TEST_F(SafetensorsTest, RoundTripsEveryDType) {
  std::vector<std::string> payloads;
  std::vector<TensorToWrite> tensors;
  payloads.reserve(std::size(kEveryDType));
  int seed = 1;
  for (DType dtype : kEveryDType) {
    payloads.push_back(PatternBytes(dtype, 6, seed++));
    tensors.push_back({"t." + std::string(DTypeName(dtype)),
                       dtype,
                       {2, 3},
                       payloads.back().data(),
                       payloads.back().size()});
  }
  const std::string bytes = SerializeSafetensors(tensors, {{"format", "pt"}, {"note", "ünïcode"}});
  const SafetensorsHeader header = Parse(bytes);

  EXPECT_EQ(header.metadata, (std::map<std::string, std::string>{{"format", "pt"}, {"note", "ünïcode"}}));
  EXPECT_EQ(header.data_start % 8, 0u);
  ASSERT_EQ(header.tensors.size(), tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const TensorToWrite& want = tensors[i];
    const auto it = std::find_if(header.tensors.begin(), header.tensors.end(),
                                 [&](const TensorInfo& t) { return t.name == want.name; });
    ASSERT_NE(it, header.tensors.end()) << want.name;
    EXPECT_EQ(it->dtype, want.dtype) << want.name;
    EXPECT_EQ(it->shape, want.shape) << want.name;
    EXPECT_EQ(it->NumElements(), 6);
    EXPECT_EQ(bytes.substr(header.data_start + it->begin, it->NumBytes()), payloads[i]) << want.name;
  }
}

TEST_F(SafetensorsTest, AcceptsEmptyTensorsAndScalars) {
  const std::string scalar = PatternBytes(DType::kF64, 1, 3);
  const std::vector<TensorToWrite> tensors = {
      {"empty", DType::kF32, {0, 5}, nullptr, 0},
      {"scalar", DType::kF64, {}, scalar.data(), scalar.size()},
  };
  const std::string bytes = SerializeSafetensors(tensors, {});
  const SafetensorsHeader header = Parse(bytes);
  ASSERT_EQ(header.tensors.size(), 2u);
  EXPECT_EQ(header.tensors[0].name, "scalar");  // F64 sorts before F32
  EXPECT_TRUE(header.tensors[0].shape.empty());
  EXPECT_EQ(header.tensors[0].NumElements(), 1);
  EXPECT_EQ(bytes.substr(header.data_start + header.tensors[0].begin, 8), scalar);
  EXPECT_EQ(header.tensors[1].name, "empty");
  EXPECT_EQ(header.tensors[1].shape, (std::vector<int64_t>{0, 5}));
  EXPECT_EQ(header.tensors[1].NumElements(), 0);
  EXPECT_EQ(header.tensors[1].begin, 8u);
  EXPECT_EQ(header.tensors[1].NumBytes(), 0u);
  EXPECT_TRUE(header.metadata.empty());
}

TEST_F(SafetensorsTest, AcceptsHugeDimensionsBesideAZero) {
  // The reference multiplies in order with overflow checks: 2^31 * 2^32 fits
  // u64 (not i64), then * 0 gives an empty tensor.
  const SafetensorsHeader parsed =
      Parse(RawFile(R"({"e":{"dtype":"U8","shape":[2147483648,4294967296,0],"data_offsets":[0,0]}})"));
  ASSERT_EQ(parsed.tensors.size(), 1u);
  EXPECT_EQ(parsed.tensors[0].NumElements(), 0);
}

TEST_F(SafetensorsTest, AcceptsHeaderPaddedWithSpaces) {
  const std::string header = "{" + F32Entry("w", 1, 0) + "}" + std::string(37, ' ');
  const SafetensorsHeader parsed = Parse(RawFile(header, Bytes({0, 0, 128, 63})));
  ASSERT_EQ(parsed.tensors.size(), 1u);
  EXPECT_EQ(parsed.data_start, 8 + header.size());
}

TEST_F(SafetensorsTest, AcceptsEntriesInAnyOrder) {
  // Older writers ordered entries by name, not offset; the reader sorts by offset.
  const std::string header = "{" + F32Entry("a", 1, 4) + "," + F32Entry("b", 1, 0) + "}";
  const SafetensorsHeader parsed = Parse(RawFile(header, std::string(8, '\0')));
  ASSERT_EQ(parsed.tensors.size(), 2u);
  EXPECT_EQ(parsed.tensors[0].name, "b");
  EXPECT_EQ(parsed.tensors[1].name, "a");
}

// --- the writer's exact layout ---

TEST_F(SafetensorsTest, WritesPeftAdapterByteExact) {
  std::vector<float> values(8 * 64);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = 0.25f * static_cast<float>(i) - 3.0f;
  const std::string bytes = SerializeSafetensors(
      {{"prompt_embeddings", DType::kF32, {8, 64}, values.data(), values.size() * sizeof(float)}},
      {{"format", "pt"}});

  const std::string header =
      R"({"__metadata__":{"format":"pt"},"prompt_embeddings":{"dtype":"F32","shape":[8,64],"data_offsets":[0,2048]}})";
  ASSERT_EQ(header.size(), 107u);
  const std::string expected = LittleEndianU64(112) + header + std::string(5, ' ') +
                               std::string(reinterpret_cast<const char*>(values.data()), 2048);
  EXPECT_EQ(bytes, expected);
}

// Byte vectors from the reference implementation's own tests
// (huggingface/safetensors, safetensors/src/tensor.rs: test_serialization, test_empty).
TEST_F(SafetensorsTest, MatchesReferenceTestVectors) {
  const float values[] = {0, 1, 2, 3, 4, 5};
  const std::string attn =
      SerializeSafetensors({{"attn.0", DType::kF32, {1, 2, 3}, values, sizeof(values)}}, {});
  const std::string attn_expected =
      Bytes({64, 0, 0, 0, 0, 0, 0, 0}) +
      R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})" +
      Bytes({0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64});
  EXPECT_EQ(attn, attn_expected);

  EXPECT_EQ(SerializeSafetensors({}, {}), Bytes({8, 0, 0, 0, 0, 0, 0, 0}) + "{}      ");
  EXPECT_EQ(SerializeSafetensors({}, {{"framework", "pt"}}),
            Bytes({40, 0, 0, 0, 0, 0, 0, 0}) + R"({"__metadata__":{"framework":"pt"}})" + "     ");
}

TEST_F(SafetensorsTest, WriterOrdersLikeReferencePrepare) {
  // Reference `prepare`: descending position in its Dtype enum (alignment
  // order), then name. Two tensors share F32 to check the name tie-break.
  std::vector<TensorToWrite> tensors;
  std::vector<std::string> payloads;
  payloads.reserve(std::size(kEveryDType) + 1);
  for (DType dtype : kEveryDType) {
    payloads.push_back(PatternBytes(dtype, 1, 0));
    tensors.push_back({std::string("x_") + std::string(DTypeName(dtype)),
                       dtype,
                       {1},
                       payloads.back().data(),
                       payloads.back().size()});
  }
  payloads.push_back(PatternBytes(DType::kF32, 1, 0));
  tensors.push_back({"a_F32", DType::kF32, {1}, payloads.back().data(), payloads.back().size()});

  const SafetensorsHeader header = Parse(SerializeSafetensors(tensors));
  std::vector<std::string> order;
  for (const TensorInfo& t : header.tensors) order.push_back(t.name);
  EXPECT_EQ(order, (std::vector<std::string>{"x_I64", "x_F64", "a_F32", "x_F32", "x_I32", "x_BF16", "x_F16",
                                             "x_I16", "x_I8", "x_U8", "x_BOOL"}));
}

TEST_F(SafetensorsTest, WriterRejectsDuplicateNames) {
  const float v = 1;
  {
    const std::string error = test::ErrorOf([&] {
      SerializeSafetensors({{"w", DType::kF32, {1}, &v, 4}, {"w", DType::kF32, {1}, &v, 4}});
    });
    EXPECT_TRUE(test::HasText(error, "tensor 'w'"));
    EXPECT_TRUE(test::HasText(error, "(rule: duplicate tensor name)"));
  }
}

TEST_F(SafetensorsTest, WriterRejectsByteSizeMismatch) {
  const float v[3] = {1, 2, 3};
  EXPECT_TRUE(test::HasText(test::ErrorOf([&] {
                              SerializeSafetensors({{"w", DType::kF32, {2, 2}, v, sizeof(v)}});
                            }),
                            "tensor 'w': 12 bytes given but shape [2, 2] of F32 needs 16 "
                            "(rule: size mismatch)"));
}

TEST_F(SafetensorsTest, WriterRejectsReservedNameAndNegativeDims) {
  const float v = 1;
  EXPECT_THROW(SerializeSafetensors({{"__metadata__", DType::kF32, {1}, &v, 4}}), Error);
  EXPECT_THROW(SerializeSafetensors({{"w", DType::kF32, {-1}, &v, 4}}), Error);
}

TEST_F(SafetensorsTest, WriteIsAtomicAndReadable) {
  ScopedTempDir dir;
  const std::string path = dir.File("adapter_model.safetensors");
  const std::vector<int32_t> first = {1, 2, 3};
  const std::vector<int32_t> second = {4, 5};
  WriteSafetensors(path, {{"ids", DType::kI32, {3}, first.data(), 12}});
  WriteSafetensors(path, {{"ids", DType::kI32, {2}, second.data(), 8}});  // replaces

  EXPECT_EQ(ReadFileBytes(path), SerializeSafetensors({{"ids", DType::kI32, {2}, second.data(), 8}}));
  std::vector<std::string> entries;
  for (const auto& entry : fs::directory_iterator(dir.path())) entries.push_back(entry.path().filename());
  EXPECT_EQ(entries, std::vector<std::string>{"adapter_model.safetensors"});  // no temp file left

  const auto file = SafetensorsFile::Open(path);
  EXPECT_EQ(file->metadata().at("format"), "pt");
  const TensorInfo& info = file->Get("ids");
  int32_t read[2];
  std::memcpy(read, file->Data(info), sizeof(read));
  EXPECT_EQ(read[0], 4);
  EXPECT_EQ(read[1], 5);
}

TEST_F(SafetensorsTest, WriteIntoMissingDirectoryFails) {
  ScopedTempDir dir;
  const int32_t v = 1;
  EXPECT_THROW(WriteSafetensors(dir.File("no/such/dir/x.safetensors"), {{"v", DType::kI32, {1}, &v, 4}}),
               Error);
}

// --- one test per malformed-file rule ---

TEST_F(SafetensorsTest, RejectsFileShorterThanEightBytes) {
  ExpectRule("", "file too short");
  ExpectRule(Bytes({2, 0, 0, 0, 0, 0, 0}), "file too short", "7 bytes");
}

TEST_F(SafetensorsTest, RejectsHeaderLongerThanLimit) {
  ExpectRule(LittleEndianU64(100'000'001) + "{}", "header too large");
  ExpectRule(LittleEndianU64(UINT64_MAX) + "{}", "header too large");
  // Exactly at the limit passes this rule and fails the next one.
  ExpectRule(LittleEndianU64(100'000'000) + "{}", "header past end of file");
}

TEST_F(SafetensorsTest, RejectsHeaderPastEndOfFile) {
  ExpectRule(LittleEndianU64(100) + "{}      ", "header past end of file");
}

TEST_F(SafetensorsTest, RejectsHeaderThatIsNotUtf8) {
  ExpectRule(RawFile("{\"w\xff\":1}"), "header not UTF-8", "header:1:4");
  ExpectRule(RawFile("{\"\xed\xa0\x80\":1}"), "header not UTF-8");  // UTF-16 surrogate
  ExpectRule(RawFile("{\"\xc0\xaf\":1}"), "header not UTF-8");      // overlong '/'
  ExpectRule(RawFile("{\"\xe2\x82"), "header not UTF-8");           // cut in the middle
}

TEST_F(SafetensorsTest, RejectsHeaderThatIsNotJson) {
  ExpectRule(RawFile("{\"w\": {\"dtype\": \"F32\",\n \"shape\": [1,]}}"), "header not JSON",
             "model.safetensors header:2:");
  // nlohmann's lexer alone stops at NUL and would accept both.
  ExpectRule(RawFile(std::string("{}\0\0\0\0\0\0", 8)), "header not JSON", "header:1:3");
  ExpectRule(RawFile(std::string("{\"a\0\":1}", 8)), "header not JSON", "NUL");
}

TEST_F(SafetensorsTest, RejectsHeaderNotStartingWithBrace) {
  ExpectRule(RawFile("[1, 2]  "), "header start");
  ExpectRule(RawFile(" {}     "), "header start");
  ExpectRule(RawFile(""), "header start");
}

TEST_F(SafetensorsTest, RejectsUnsupportedDType) {
  const std::string header = R"({"w":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}})";
  const std::string message = ParseError(RawFile(header, "x"));
  EXPECT_NE(message.find("tensor 'w'"), std::string::npos) << message;
  EXPECT_NE(message.find("'F8_E4M3'"), std::string::npos) << message;
  EXPECT_NE(message.find("F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL"), std::string::npos) << message;
  EXPECT_NE(message.find("(rule: unsupported dtype)"), std::string::npos) << message;
}

TEST_F(SafetensorsTest, RejectsEntryThatIsNotAnObject) {
  ExpectRule(RawFile(R"({"w":[0,4]})"), "entry not an object", "tensor 'w'");
}

TEST_F(SafetensorsTest, RejectsEntryMissingAField) {
  ExpectRule(RawFile(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", "abcd"), "missing field", "'dtype'");
  ExpectRule(RawFile(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", "abcd"), "missing field", "'shape'");
  ExpectRule(RawFile(R"({"w":{"dtype":"F32","shape":[1]}})", "abcd"), "missing field", "'data_offsets'");
}

TEST_F(SafetensorsTest, RejectsFieldsOfTheWrongType) {
  ExpectRule(RawFile(R"({"w":{"dtype":32,"shape":[1],"data_offsets":[0,4]}})", "abcd"), "wrong type",
             "dtype");
  ExpectRule(RawFile(R"({"w":{"dtype":"F32","shape":4,"data_offsets":[0,4]}})", "abcd"), "wrong type",
             "shape");
  ExpectRule(RawFile(R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", "abcd"), "wrong type");
  ExpectRule(RawFile(R"({"w":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}})", "abcd"), "wrong type");
  ExpectRule(RawFile(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4]}})", "abcd"), "wrong type",
             "data_offsets");
  ExpectRule(RawFile(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", "abcd"), "wrong type");
  ExpectRule(RawFile(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":{"a":0}}})", "abcd"), "wrong type");
  ExpectRule(RawFile(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}})", "abcd"), "wrong type");
}

TEST_F(SafetensorsTest, RejectsNegativeDimensionsAndOffsets) {
  ExpectRule(RawFile(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "abcd"), "negative value",
             "-1");
  ExpectRule(RawFile(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", "abcd"), "negative value");
}

TEST_F(SafetensorsTest, RejectsSizeOverflow) {
  // 2^62 * 8 elements overflows before the dtype size is applied.
  ExpectRule(RawFile(R"({"w":{"dtype":"U8","shape":[4611686018427387904,8],"data_offsets":[0,0]}})"),
             "size overflow", "tensor 'w'");
  // 2^62 elements fit, 2^62 * 4 bytes does not.
  ExpectRule(RawFile(R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})"),
             "size overflow");
  // Larger than int64 in one dimension, even with a zero elsewhere.
  ExpectRule(RawFile(R"({"w":{"dtype":"U8","shape":[0,18446744073709551615],"data_offsets":[0,0]}})"),
             "size overflow");
}

TEST_F(SafetensorsTest, RejectsShapeThatDisagreesWithOffsets) {
  const std::string header = R"({"lm_head.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})";
  EXPECT_EQ(ParseError(RawFile(header, std::string(12, 'x'))),
            "model.safetensors: tensor 'lm_head.weight': data_offsets [0, 12) hold 12 bytes but shape [2, 2] "
            "of F32 needs 16 (rule: size mismatch)");
}

TEST_F(SafetensorsTest, RejectsHoleBetweenTensors) {
  ExpectRule(RawFile("{" + F32Entry("a", 1, 0) + "," + F32Entry("b", 1, 8) + "}", std::string(12, 'x')),
             "offsets not contiguous: hole", "tensor 'b'");
  // The first tensor must start at 0.
  ExpectRule(RawFile("{" + F32Entry("a", 1, 4) + "}", std::string(8, 'x')), "offsets not contiguous: hole");
}

TEST_F(SafetensorsTest, RejectsOverlappingTensors) {
  ExpectRule(RawFile("{" + F32Entry("a", 2, 0) + "," + F32Entry("b", 2, 4) + "}", std::string(12, 'x')),
             "offsets not contiguous: overlap", "tensor 'a'");
  // Two tensors on the same bytes.
  ExpectRule(RawFile("{" + F32Entry("a", 1, 0) + "," + F32Entry("b", 1, 0) + "}", std::string(4, 'x')),
             "offsets not contiguous: overlap");
}

TEST_F(SafetensorsTest, RejectsBeginAfterEnd) {
  ExpectRule(RawFile(R"({"w":{"dtype":"U8","shape":[4],"data_offsets":[8,4]}})", std::string(8, 'x')),
             "data_offsets begin > end", "[8, 4)");
}

TEST_F(SafetensorsTest, RejectsTrailingBytesAfterLastTensor) {
  ExpectRule(RawFile("{" + F32Entry("a", 1, 0) + "}", std::string(5, 'x')), "buffer end != file end",
             "1 trailing bytes");
  ExpectRule(RawFile("{}", "x"), "buffer end != file end");
}

TEST_F(SafetensorsTest, RejectsTruncatedDataBuffer) {
  ExpectRule(RawFile("{" + F32Entry("a", 1, 0) + "," + F32Entry("b", 1, 4) + "}", std::string(6, 'x')),
             "buffer end != file end", "truncated");
}

TEST_F(SafetensorsTest, RejectsDuplicateTensorNames) {
  // nlohmann::json alone would keep only the second entry and accept the file.
  const std::string header = "{" + F32Entry("w", 1, 0) + "," + F32Entry("w", 1, 4) + "}";
  ExpectRule(RawFile(header, std::string(8, 'x')), "duplicate tensor name", "tensor 'w'");
}

TEST_F(SafetensorsTest, RejectsDuplicateKeysInsideAnEntry) {
  ExpectRule(RawFile(R"({"w":{"dtype":"F64","dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "abcd"),
             "duplicate key", "'dtype'");
  ExpectRule(RawFile(R"({"__metadata__":{},"__metadata__":{}})"), "duplicate key", "__metadata__");
}

TEST_F(SafetensorsTest, RejectsMetadataThatIsNotStringToString) {
  ExpectRule(RawFile(R"({"__metadata__":"pt"})"), "metadata not string to string");
  ExpectRule(RawFile(R"({"__metadata__":{"format":"pt","epoch":3}})"), "metadata not string to string",
             "'epoch'");
  ExpectRule(RawFile(R"({"__metadata__":{"nested":{"a":"b"}}})"), "metadata not string to string");
}

// --- SafetensorsFile ---

TEST_F(SafetensorsTest, OpenMapsAndFindsTensors) {
  ScopedTempDir dir;
  const std::string path = dir.File("model.safetensors");
  const std::vector<int16_t> a = {1, -2, 3};
  const std::vector<uint8_t> b = {9, 8};
  WriteSafetensors(path, {{"a", DType::kI16, {3}, a.data(), 6}, {"b", DType::kU8, {1, 2}, b.data(), 2}});

  const auto file = SafetensorsFile::Open(path);
  EXPECT_EQ(file->path(), path);
  ASSERT_EQ(file->tensors().size(), 2u);
  ASSERT_NE(file->Find("b"), nullptr);
  EXPECT_EQ(file->Find("c"), nullptr);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(file->Data(file->Get("b"))), 2), "\x09\x08");
  int16_t read[3];
  std::memcpy(read, file->Data(file->Get("a")), sizeof(read));
  EXPECT_EQ(std::vector<int16_t>(read, read + 3), a);
  EXPECT_EQ(test::ErrorOf([&] { file->Get("c"); }), path + ": no tensor named 'c'");
}

TEST_F(SafetensorsTest, OpenReportsMissingFileDirectoryAndBadContent) {
  ScopedTempDir dir;
  {
    const std::string error = test::ErrorOf([&] { SafetensorsFile::Open(dir.File("absent.safetensors")); });
    EXPECT_TRUE(test::HasText(error, "absent.safetensors: cannot open"));
    EXPECT_TRUE(test::HasText(error, "No such file"));
  }
  EXPECT_TRUE(test::HasText(test::ErrorOf([&] { SafetensorsFile::Open(dir.path().string()); }), "is a directory"));
  const std::string empty = dir.File("empty.safetensors");
  WriteFileBytes(empty, "");
  {
    const std::string error = test::ErrorOf([&] { SafetensorsFile::Open(empty); });
    EXPECT_EQ(error.rfind(empty + ": ", 0), 0u) << error;
    EXPECT_TRUE(test::HasText(error, "(rule: file too short)"));
  }
}

TEST_F(SafetensorsTest, OpenReportsPermissionDenied) {
  if (geteuid() == 0) GTEST_SKIP() << "root reads files regardless of permissions";
  ScopedTempDir dir;
  const std::string path = dir.File("locked.safetensors");
  WriteFileBytes(path, SerializeSafetensors({}));
  ASSERT_EQ(chmod(path.c_str(), 0), 0);
  EXPECT_TRUE(test::HasText(test::ErrorOf([&] { SafetensorsFile::Open(path); }), "Permission denied"));
}

// --- sharded checkpoints ---

class ShardedCheckpoint {
 public:
  ShardedCheckpoint() {
    for (int i = 0; i < 4; ++i) values_.push_back(static_cast<float>(i) + 0.5f);
  }
  // Writes shard `file` holding `names` (one float each).
  void WriteShard(const std::string& file, const std::vector<std::string>& names) const {
    std::vector<TensorToWrite> tensors;
    for (std::size_t i = 0; i < names.size(); ++i) {
      tensors.push_back({names[i], DType::kF32, {1}, &values_[i], sizeof(float)});
    }
    WriteSafetensors(dir_.File(file), tensors);
  }
  void WriteIndex(const std::string& weight_map_json) const {
    WriteFileBytes(dir_.File("model.safetensors.index.json"),
                   R"({"metadata": {"total_size": 16}, "weight_map": )" + weight_map_json + "}");
  }
  // The standard good layout: two shards, two tensors each.
  void WriteGood() const {
    WriteShard("model-00001-of-00002.safetensors", {"embed.weight", "layers.0.w"});
    WriteShard("model-00002-of-00002.safetensors", {"layers.1.w", "lm_head.weight"});
    WriteIndex(R"({"embed.weight": "model-00001-of-00002.safetensors",
                   "layers.0.w": "model-00001-of-00002.safetensors",
                   "layers.1.w": "model-00002-of-00002.safetensors",
                   "lm_head.weight": "model-00002-of-00002.safetensors"})");
  }
  std::string OpenError() const {
    return test::ErrorOf([&] { CheckpointReader::Open(dir()); });
  }
  std::string dir() const { return dir_.path().string(); }
  std::string File(const std::string& name) const { return dir_.File(name); }

 private:
  ScopedTempDir dir_;
  std::vector<float> values_;
};

// Every part occurs in `message`.
void ExpectContains(const std::string& message, std::initializer_list<std::string> parts) {
  for (const std::string& part : parts)
    EXPECT_NE(message.find(part), std::string::npos) << part << " in: " << message;
}

float FloatAt(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

TEST_F(SafetensorsTest, ReadsShardedCheckpointFromDirectoryAndIndex) {
  ShardedCheckpoint ckpt;
  ckpt.WriteGood();
  for (const std::string& path : {ckpt.dir(), ckpt.File("model.safetensors.index.json")}) {
    const auto reader = CheckpointReader::Open(path);
    EXPECT_EQ(reader->path(), path);
    EXPECT_EQ(reader->files().size(), 2u);
    EXPECT_EQ(reader->TensorNames(),
              (std::vector<std::string>{"embed.weight", "layers.0.w", "layers.1.w", "lm_head.weight"}));
    EXPECT_EQ(reader->Get("lm_head.weight").dtype, DType::kF32);
    EXPECT_EQ(FloatAt(reader->Data("layers.0.w")), 1.5f);
    EXPECT_EQ(FloatAt(reader->Data("lm_head.weight")), 1.5f);
    EXPECT_EQ(FloatAt(reader->Data("layers.1.w")), 0.5f);
    EXPECT_EQ(reader->Find("missing"), nullptr);
    {
      const std::string error = test::ErrorOf([&] { reader->Get("missing"); });
      EXPECT_TRUE(test::HasText(error, "'missing'"));
      EXPECT_TRUE(test::HasText(error, path));
    }
  }
}

TEST_F(SafetensorsTest, ReadsSingleFileCheckpointAndPrefersIt) {
  ShardedCheckpoint ckpt;
  ckpt.WriteGood();
  ckpt.WriteShard("model.safetensors", {"only"});
  const auto from_dir = CheckpointReader::Open(ckpt.dir());
  EXPECT_EQ(from_dir->TensorNames(), std::vector<std::string>{"only"});
  const auto from_file = CheckpointReader::Open(ckpt.File("model-00002-of-00002.safetensors"));
  EXPECT_EQ(from_file->TensorNames(), (std::vector<std::string>{"layers.1.w", "lm_head.weight"}));
}

TEST_F(SafetensorsTest, CheckpointReportsMissingPathsAndEmptyDirectory) {
  ScopedTempDir dir;
  EXPECT_THROW(CheckpointReader::Open(dir.File("nope")), Error);
  EXPECT_TRUE(test::HasText(test::ErrorOf([&] { CheckpointReader::Open(dir.path().string()); }),
                            "model.safetensors.index.json"));
}

TEST_F(SafetensorsTest, CheckpointReportsMissingShard) {
  ShardedCheckpoint ckpt;
  ckpt.WriteGood();
  fs::remove(ckpt.File("model-00002-of-00002.safetensors"));
  ExpectContains(ckpt.OpenError(),
                 {"'model-00002-of-00002.safetensors'", "'layers.1.w'", "(rule: missing shard)"});
}

TEST_F(SafetensorsTest, CheckpointReportsTensorMissingFromShard) {
  ShardedCheckpoint ckpt;
  ckpt.WriteGood();
  ckpt.WriteShard("model-00002-of-00002.safetensors", {"layers.1.w"});  // lm_head dropped
  ExpectContains(ckpt.OpenError(), {"'lm_head.weight'", "(rule: tensor missing from shard)"});
}

TEST_F(SafetensorsTest, CheckpointReportsTensorDuplicatedAcrossShards) {
  ShardedCheckpoint ckpt;
  ckpt.WriteGood();
  ckpt.WriteShard("model-00001-of-00002.safetensors", {"embed.weight", "layers.0.w", "lm_head.weight"});
  ExpectContains(ckpt.OpenError(),
                 {"'lm_head.weight'", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                  "(rule: duplicate tensor across shards)"});
}

TEST_F(SafetensorsTest, CheckpointReportsShardTensorAbsentFromWeightMap) {
  ShardedCheckpoint ckpt;
  ckpt.WriteGood();
  ckpt.WriteShard("model-00002-of-00002.safetensors", {"layers.1.w", "lm_head.weight", "stray"});
  ExpectContains(ckpt.OpenError(), {"'stray'", "(rule: tensor not in weight_map)"});
}

TEST_F(SafetensorsTest, CheckpointReportsBadIndex) {
  ShardedCheckpoint ckpt;
  ckpt.WriteGood();
  WriteFileBytes(ckpt.File("model.safetensors.index.json"), R"({"metadata": {}})");
  ExpectContains(ckpt.OpenError(), {"'weight_map'"});
  ckpt.WriteIndex(R"({"embed.weight": 1})");
  ExpectContains(ckpt.OpenError(), {"(rule: wrong type)"});
  WriteFileBytes(ckpt.File("model.safetensors.index.json"), R"({"weight_map": {)");
  ExpectContains(ckpt.OpenError(), {"invalid JSON"});
}

}  // namespace
}  // namespace promptsweep
