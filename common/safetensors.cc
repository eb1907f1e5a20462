#include "common/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>
#include <tuple>
#include <utility>

#include "common/error.h"
#include "common/file_util.h"
#include "common/json_util.h"

namespace promptsweep {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Same limit as the reference parser (safetensors/src/tensor.rs MAX_HEADER_SIZE).
constexpr uint64_t kMaxHeaderSize = 100'000'000;
constexpr std::size_t kLengthPrefix = 8;
constexpr std::string_view kMetadataKey = "__metadata__";

constexpr std::array<DType, 10> kAllDTypes = {DType::kF64, DType::kF32, DType::kF16, DType::kBF16,
                                              DType::kI64, DType::kI32, DType::kI16, DType::kI8,
                                              DType::kU8,  DType::kBool};

std::string SupportedDTypeList() {
  std::string out;
  for (DType d : kAllDTypes) {
    if (!out.empty()) out += ", ";
    out += DTypeName(d);
  }
  return out;
}

// Position of the dtype in the reference `Dtype` enum, which is declared in
// increasing alignment order; the reference writer sorts on it (descending),
// so I64 comes before F64 and BF16 before F16.
int ReferenceAlignmentRank(DType dtype) {
  switch (dtype) {
    case DType::kBool: return 0;
    case DType::kU8: return 1;
    case DType::kI8: return 2;
    case DType::kI16: return 3;
    case DType::kF16: return 4;
    case DType::kBF16: return 5;
    case DType::kI32: return 6;
    case DType::kF32: return 7;
    case DType::kF64: return 8;
    case DType::kI64: return 9;
  }
  return 0;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

uint64_t ReadLittleEndianU64(const uint8_t* p) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | p[i];
  return value;
}

void AppendLittleEndianU64(uint64_t value, std::string* out) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

// nlohmann::json keeps the last of duplicate keys without a word, so a header
// naming a tensor twice would silently lose one. This SAX pass over the
// (already validated) header finds the first key repeated in any object.
class DuplicateKeyFinder {
 public:
  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(json::number_integer_t) { return true; }
  bool number_unsigned(json::number_unsigned_t) { return true; }
  bool number_float(json::number_float_t, const json::string_t&) { return true; }
  bool string(json::string_t&) { return true; }
  bool binary(json::binary_t&) { return true; }
  bool start_object(std::size_t) {
    keys_.emplace_back();
    return true;
  }
  bool end_object() {
    keys_.pop_back();
    return true;
  }
  bool start_array(std::size_t) {
    keys_.emplace_back();  // placeholder so depth stays in step with objects
    return true;
  }
  bool end_array() {
    keys_.pop_back();
    return true;
  }
  bool key(json::string_t& key) {
    if (keys_.size() == 1) top_level_key_ = key;
    if (!keys_.back().insert(key).second) {
      duplicate_ = key;
      duplicate_depth_ = keys_.size();
      return false;  // stop at the first one
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }

  const std::optional<std::string>& duplicate() const { return duplicate_; }
  std::size_t duplicate_depth() const { return duplicate_depth_; }
  const std::string& top_level_key() const { return top_level_key_; }

 private:
  std::vector<std::set<std::string>> keys_;
  std::string top_level_key_;
  std::optional<std::string> duplicate_;
  std::size_t duplicate_depth_ = 0;
};

void CheckNoDuplicateKeys(std::string_view header_text, const std::string& where) {
  DuplicateKeyFinder finder;
  json::sax_parse(header_text.begin(), header_text.end(), &finder);
  if (!finder.duplicate()) return;
  const std::string& key = *finder.duplicate();
  if (finder.duplicate_depth() == 1) {
    if (key == kMetadataKey) {
      throw Error(StrCat(where, ": header has '__metadata__' twice (rule: duplicate key)"));
    }
    throw Error(
        StrCat(where, ": tensor '", key, "' appears twice in the header (rule: duplicate tensor name)"));
  }
  throw Error(StrCat(where, ": entry '", finder.top_level_key(), "' has key '", key,
                     "' twice (rule: duplicate key)"));
}

// Error prefix for one header entry.
std::string TensorWhere(const std::string& where, const std::string& name) {
  return StrCat(where, ": tensor '", name, "'");
}

// A JSON integer >= 0 that fits uint64; otherwise an Error citing `rule`.
uint64_t NonNegativeInteger(const json& value, const std::string& context, const char* field) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer()) {  // signed means negative here
    throw Error(StrCat(context, ": ", field, " ", value.dump(), " is negative (rule: negative value)"));
  }
  throw Error(StrCat(context, ": ", field, " must be a non-negative integer, found ", value.type_name(), " ",
                     value.dump(), " (rule: wrong type)"));
}

TensorInfo ParseEntry(const std::string& name, const json& entry, const std::string& where) {
  const std::string context = TensorWhere(where, name);
  if (!entry.is_object()) {
    throw Error(StrCat(context, ": entry must be an object with dtype, shape and data_offsets, found ",
                       entry.type_name(), " (rule: entry not an object)"));
  }
  auto field = [&](const char* key) -> const json& {
    const auto it = entry.find(key);
    if (it == entry.end()) {
      throw Error(StrCat(context, ": missing field '", key, "' (rule: missing field)"));
    }
    return *it;
  };

  TensorInfo info;
  info.name = name;

  const json& dtype = field("dtype");
  if (!dtype.is_string()) {
    throw Error(
        StrCat(context, ": dtype must be a string, found ", dtype.type_name(), " (rule: wrong type)"));
  }
  const std::string& dtype_name = dtype.get_ref<const std::string&>();
  const std::optional<DType> parsed = ParseDType(dtype_name);
  if (!parsed) {
    throw Error(StrCat(context, ": dtype '", dtype_name, "' is not supported; supported: ",
                       SupportedDTypeList(), " (rule: unsupported dtype)"));
  }
  info.dtype = *parsed;

  const json& shape = field("shape");
  if (!shape.is_array()) {
    throw Error(StrCat(context, ": shape must be an array of integers, found ", shape.type_name(),
                       " (rule: wrong type)"));
  }
  // Element count x dtype size, checked like the reference (checked_mul in order).
  uint64_t num_bytes = DTypeSize(info.dtype);
  bool overflow = false;
  uint64_t num_elements = 1;
  for (const json& dim_json : shape) {
    const uint64_t dim = NonNegativeInteger(dim_json, context, "shape dimension");
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) overflow = true;
    if (!overflow && dim != 0 && num_elements > std::numeric_limits<uint64_t>::max() / dim) {
      overflow = true;
    }
    if (!overflow) num_elements *= dim;
    info.shape.push_back(static_cast<int64_t>(dim));
  }
  if (!overflow && num_elements > std::numeric_limits<uint64_t>::max() / num_bytes) overflow = true;
  if (overflow) {
    throw Error(StrCat(context, ": shape ", shape.dump(), " of ", dtype_name,
                       " needs more than 2^64 bytes (rule: size overflow)"));
  }
  num_bytes *= num_elements;

  const json& offsets = field("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2) {
    throw Error(StrCat(context, ": data_offsets must be an array [begin, end], found ", offsets.dump(),
                       " (rule: wrong type)"));
  }
  info.begin = NonNegativeInteger(offsets[0], context, "data_offsets begin");
  info.end = NonNegativeInteger(offsets[1], context, "data_offsets end");
  if (info.begin > info.end) {
    throw Error(StrCat(context, ": data_offsets [", info.begin, ", ", info.end,
                       ") begin is after end (rule: data_offsets begin > end)"));
  }
  if (info.end - info.begin != num_bytes) {
    throw Error(StrCat(context, ": data_offsets [", info.begin, ", ", info.end, ") hold ",
                       info.end - info.begin, " bytes but shape ", ShapeString(info.shape), " of ",
                       dtype_name, " needs ", num_bytes, " (rule: size mismatch)"));
  }
  return info;
}

std::map<std::string, std::string> ParseMetadata(const json& value, const std::string& where) {
  if (!value.is_object()) {
    throw Error(StrCat(where, ": __metadata__ must be an object of string to string, found ",
                       value.type_name(), " (rule: metadata not string to string)"));
  }
  std::map<std::string, std::string> metadata;
  for (const auto& [key, item] : value.items()) {
    if (!item.is_string()) {
      throw Error(StrCat(where, ": __metadata__ key '", key, "' must be a string, found ", item.type_name(),
                         " ", item.dump(), " (rule: metadata not string to string)"));
    }
    metadata.emplace(key, item.get<std::string>());
  }
  return metadata;
}


// Header text and tensor order for the writer, shared by SerializeSafetensors
// and WriteSafetensors (which streams the data instead of building a string).
struct PreparedWrite {
  std::string prefix;  // length + padded header
  std::vector<const TensorToWrite*> order;
};

PreparedWrite PrepareWrite(const std::vector<TensorToWrite>& tensors,
                           const std::map<std::string, std::string>& metadata) {
  std::set<std::string_view> names;
  for (const TensorToWrite& t : tensors) {
    const std::string context = StrCat("writing safetensors: tensor '", t.name, "'");
    if (t.name == kMetadataKey) {
      throw Error(StrCat(context, ": the name is reserved for metadata (rule: reserved name)"));
    }
    if (!names.insert(t.name).second) {
      throw Error(StrCat(context, ": given twice (rule: duplicate tensor name)"));
    }
    uint64_t expected = DTypeSize(t.dtype);
    for (int64_t dim : t.shape) {
      if (dim < 0) {
        throw Error(StrCat(context, ": shape ", ShapeString(t.shape),
                           " has a negative dimension (rule: negative value)"));
      }
      if (dim != 0 && expected > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(dim)) {
        throw Error(StrCat(context, ": shape ", ShapeString(t.shape), " is too large (rule: size overflow)"));
      }
      expected *= static_cast<uint64_t>(dim);
    }
    if (expected != t.num_bytes) {
      throw Error(StrCat(context, ": ", t.num_bytes, " bytes given but shape ", ShapeString(t.shape), " of ",
                         DTypeName(t.dtype), " needs ", expected, " (rule: size mismatch)"));
    }
    if (t.num_bytes > 0 && t.data == nullptr) {
      throw Error(StrCat(context, ": data is null (rule: missing data)"));
    }
  }

  PreparedWrite prepared;
  for (const TensorToWrite& t : tensors) prepared.order.push_back(&t);
  // Reference `prepare`: descending dtype alignment, then name.
  std::sort(prepared.order.begin(), prepared.order.end(), [](const TensorToWrite* a, const TensorToWrite* b) {
    const int ra = ReferenceAlignmentRank(a->dtype);
    const int rb = ReferenceAlignmentRank(b->dtype);
    if (ra != rb) return ra > rb;
    return a->name < b->name;
  });

  // Built by hand because nlohmann::json orders keys alphabetically, and the
  // reference puts __metadata__ first and tensors in data order.
  std::string header = "{";
  try {
    if (!metadata.empty()) {
      header += StrCat("\"", kMetadataKey, "\":", json(metadata).dump());
    }
    uint64_t offset = 0;
    for (const TensorToWrite* t : prepared.order) {
      if (header.size() > 1) header += ",";
      header += json(t->name).dump();
      header += StrCat(":{\"dtype\":\"", DTypeName(t->dtype), "\",\"shape\":", json(t->shape).dump(),
                       ",\"data_offsets\":[", offset, ",", offset + t->num_bytes, "]}");
      offset += t->num_bytes;
    }
  } catch (const json::type_error& e) {  // invalid UTF-8 in a name or metadata
    throw Error(StrCat("writing safetensors: ", e.what(), " (rule: header not valid UTF-8)"));
  }
  header += "}";
  // Pad so the data buffer starts 8-byte aligned, as the reference does.
  header.append((8 - header.size() % 8) % 8, ' ');

  prepared.prefix.reserve(kLengthPrefix + header.size());
  AppendLittleEndianU64(header.size(), &prepared.prefix);
  prepared.prefix += header;
  return prepared;
}


}  // namespace

std::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF64: return "F64";
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kI64: return "I64";
    case DType::kI32: return "I32";
    case DType::kI16: return "I16";
    case DType::kI8: return "I8";
    case DType::kU8: return "U8";
    case DType::kBool: return "BOOL";
  }
  return "?";
}

std::size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kF64:
    case DType::kI64: return 8;
    case DType::kF32:
    case DType::kI32: return 4;
    case DType::kF16:
    case DType::kBF16:
    case DType::kI16: return 2;
    case DType::kI8:
    case DType::kU8:
    case DType::kBool: return 1;
  }
  return 1;
}

std::optional<DType> ParseDType(std::string_view name) {
  for (DType d : kAllDTypes) {
    if (DTypeName(d) == name) return d;
  }
  return std::nullopt;
}

int64_t TensorInfo::NumElements() const {
  // A zero dimension first: the reference accepts [2^31, 2^32, 0], whose
  // running product would overflow int64 before reaching the 0.
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  int64_t n = 1;
  for (int64_t dim : shape) n *= dim;  // bounded by the validated byte size
  return n;
}

SafetensorsHeader ParseSafetensors(const uint8_t* data, std::size_t size, const std::string& where) {
  if (size < kLengthPrefix) {
    throw Error(StrCat(where, ": file is ", size,
                       " bytes, too short for the 8-byte header length (rule: file too short)"));
  }
  const uint64_t header_size = ReadLittleEndianU64(data);
  if (header_size > kMaxHeaderSize) {
    throw Error(StrCat(where, ": header length ", header_size, " exceeds the limit of ", kMaxHeaderSize,
                       " bytes (rule: header too large)"));
  }
  if (header_size > size - kLengthPrefix) {
    throw Error(StrCat(where, ": header of ", header_size, " bytes runs past the end of the ", size,
                       "-byte file (rule: header past end of file)"));
  }
  const std::string_view text(reinterpret_cast<const char*>(data) + kLengthPrefix, header_size);
  if (text.empty() || text.front() != '{') {
    throw Error(StrCat(where, ": header must be a JSON object starting with '{' (rule: header start)"));
  }
  // nlohmann's lexer takes a NUL byte for end of input and would accept
  // "{}\0junk"; raw NUL is never valid JSON (inside strings it is \u0000).
  if (const std::size_t nul = text.find('\0'); nul != std::string_view::npos) {
    const auto [line, column] = LineColumn(text, nul);
    throw Error(
        StrCat(where, " header:", line, ":", column, ": invalid JSON: NUL byte (rule: header not JSON)"));
  }
  json header_json;
  try {
    header_json = ParseJson(text, StrCat(where, " header"));
  } catch (const Error& e) {
    // JSON allows bytes >= 0x80 only inside strings, where nlohmann checks
    // UTF-8 as strictly as the reference's str::from_utf8 (no overlong forms,
    // surrogates or code points past U+10FFFF), so its verdict is reused.
    const bool utf8 = std::string_view(e.what()).find("ill-formed UTF-8") != std::string_view::npos;
    throw Error(StrCat(e.what(), utf8 ? " (rule: header not UTF-8)" : " (rule: header not JSON)"));
  }
  // A text starting with '{' that parses is an object; kept as a guard.
  PS_CHECK(header_json.is_object(), where);
  CheckNoDuplicateKeys(text, where);

  SafetensorsHeader header;
  header.data_start = kLengthPrefix + header_size;
  for (const auto& [name, entry] : header_json.items()) {
    if (name == kMetadataKey) {
      header.metadata = ParseMetadata(entry, where);
    } else {
      header.tensors.push_back(ParseEntry(name, entry, where));
    }
  }

  // Offsets must tile the buffer from 0: sorted by (begin, end) as the
  // reference does, each tensor starts where the previous one ended.
  std::sort(header.tensors.begin(), header.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  uint64_t expected = 0;
  const TensorInfo* previous = nullptr;
  for (const TensorInfo& info : header.tensors) {
    if (info.begin > expected) {
      throw Error(StrCat(TensorWhere(where, info.name), ": data_offsets [", info.begin, ", ", info.end,
                         ") leave bytes [", expected, ", ", info.begin,
                         ") of the buffer unused (rule: offsets not contiguous: hole)"));
    }
    if (info.begin < expected) {
      throw Error(StrCat(TensorWhere(where, info.name), ": data_offsets [", info.begin, ", ", info.end,
                         ") overlap tensor '", previous->name, "' which ends at ", expected,
                         " (rule: offsets not contiguous: overlap)"));
    }
    expected = info.end;
    previous = &info;
  }
  const uint64_t buffer_size = size - header.data_start;
  if (expected != buffer_size) {
    if (expected < buffer_size) {
      throw Error(StrCat(where, ": tensors end at buffer offset ", expected, " but the data buffer has ",
                         buffer_size, " bytes; ", buffer_size - expected,
                         " trailing bytes (rule: buffer end != file end)"));
    }
    throw Error(StrCat(TensorWhere(where, previous->name), ": data_offsets end ", expected,
                       " lies past the end of the ", buffer_size,
                       "-byte data buffer; the file is truncated (rule: buffer end != file end)"));
  }
  return header;
}

SafetensorsFile::SafetensorsFile(std::string path, const uint8_t* data, std::size_t size)
    : path_(std::move(path)), data_(data), size_(size) {}

SafetensorsFile::~SafetensorsFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    const char* hint = error == ENOENT   ? " (check the path)"
                       : error == EACCES ? " (check the file permissions)"
                                         : "";
    throw Error(StrCat(path, ": cannot open safetensors file: ", ErrnoText(error), hint));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int error = errno;
    ::close(fd);
    throw Error(StrCat(path, ": cannot stat: ", ErrnoText(error)));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw Error(StrCat(path, ": is a directory, expected a .safetensors file"));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(StrCat(path, ": is not a regular file, expected a .safetensors file"));
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  const uint8_t* data = nullptr;
  if (size > 0) {  // mmap rejects length 0; an empty file fails the parse below
    void* mapped = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapped == MAP_FAILED) {
      const int error = errno;
      ::close(fd);
      throw Error(StrCat(path, ": cannot memory-map ", size, " bytes: ", ErrnoText(error)));
    }
    data = static_cast<const uint8_t*>(mapped);
  }
  ::close(fd);  // the mapping stays valid without the descriptor
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile(path, data, size));
  file->header_ = ParseSafetensors(data, size, path);  // on throw, ~SafetensorsFile unmaps
  for (std::size_t i = 0; i < file->header_.tensors.size(); ++i) {
    file->index_.emplace(file->header_.tensors[i].name, i);
  }
  return file;
}

const TensorInfo* SafetensorsFile::Find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

const TensorInfo& SafetensorsFile::Get(std::string_view name) const {
  const TensorInfo* info = Find(name);
  if (info == nullptr) throw Error(StrCat(path_, ": no tensor named '", name, "'"));
  return *info;
}

const uint8_t* SafetensorsFile::Data(const TensorInfo& info) const {
  PS_CHECK(header_.data_start + info.end <= size_, path_, ": tensor '", info.name, "'");
  return data_ + header_.data_start + info.begin;
}

std::string SerializeSafetensors(const std::vector<TensorToWrite>& tensors,
                                 const std::map<std::string, std::string>& metadata) {
  PreparedWrite prepared = PrepareWrite(tensors, metadata);
  std::string out = std::move(prepared.prefix);
  for (const TensorToWrite* t : prepared.order) {
    out.append(static_cast<const char*>(t->data), t->num_bytes);
  }
  return out;
}

void WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const PreparedWrite prepared = PrepareWrite(tensors, metadata);
  std::vector<std::string_view> parts = {prepared.prefix};
  for (const TensorToWrite* t : prepared.order) {
    parts.emplace_back(static_cast<const char*>(t->data), t->num_bytes);
  }
  WriteFileAtomically(path, parts);
}

namespace {

constexpr const char* kSingleFileName = "model.safetensors";
constexpr const char* kIndexFileName = "model.safetensors.index.json";

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

std::unique_ptr<CheckpointReader> CheckpointReader::Open(const std::string& path) {
  auto reader = std::unique_ptr<CheckpointReader>(new CheckpointReader());
  reader->path_ = path;
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) {
    throw Error(StrCat(path,
                       ": checkpoint not found (expected a model directory, a .safetensors "
                       "file or ",
                       kIndexFileName, ")"));
  }

  fs::path file_path = path;
  if (fs::is_directory(status)) {
    const fs::path single = fs::path(path) / kSingleFileName;
    const fs::path index = fs::path(path) / kIndexFileName;
    if (fs::exists(single, ec)) {
      file_path = single;
    } else if (fs::exists(index, ec)) {
      file_path = index;
    } else {
      throw Error(StrCat(path, ": directory has neither ", kSingleFileName, " nor ", kIndexFileName));
    }
  }

  if (!EndsWith(file_path.string(), ".json")) {
    reader->files_.push_back(SafetensorsFile::Open(file_path.string()));
    for (const TensorInfo& info : reader->files_.back()->tensors()) {
      reader->owner_.emplace(info.name, reader->files_.back().get());
    }
    return reader;
  }

  // Sharded: weight_map names, for every tensor, the shard file that holds it.
  const std::string index_path = file_path.string();
  const json index = ReadJsonFile(index_path);
  const JsonObject root(index, index_path);
  const JsonObject weight_map = root.Object("weight_map");
  std::map<std::string, std::vector<std::string>> tensors_by_shard;
  for (const auto& [name, shard] : weight_map.json().items()) {
    if (!shard.is_string()) {
      throw Error(StrCat(index_path, ": weight_map entry '", name, "' must be a shard file name, found ",
                         shard.type_name(), " (rule: wrong type)"));
    }
    tensors_by_shard[shard.get<std::string>()].push_back(name);
  }
  const fs::path dir = file_path.parent_path();
  std::map<std::string, const SafetensorsFile*> shard_files;
  for (const auto& [shard, names] : tensors_by_shard) {
    const fs::path shard_path = dir / shard;
    if (!fs::exists(shard_path, ec)) {
      throw Error(StrCat(index_path, ": shard '", shard, "' (holding e.g. '", names.front(),
                         "') does not exist in ", dir.string(), " (rule: missing shard)"));
    }
    reader->files_.push_back(SafetensorsFile::Open(shard_path.string()));
    const SafetensorsFile* file = reader->files_.back().get();
    shard_files.emplace(shard, file);
    for (const std::string& name : names) {
      if (file->Find(name) == nullptr) {
        throw Error(StrCat(index_path, ": tensor '", name, "' is mapped to shard '", shard,
                           "' but that shard does not contain it (rule: tensor missing from shard)"));
      }
      reader->owner_.emplace(name, file);
    }
  }
  // Every mapped tensor is in its own shard now, so a shard holding a tensor
  // the map assigns elsewhere means the tensor exists twice.
  for (const auto& [shard, file] : shard_files) {
    for (const TensorInfo& info : file->tensors()) {
      const auto it = reader->owner_.find(info.name);
      if (it == reader->owner_.end()) {
        throw Error(StrCat(index_path, ": shard '", shard, "' holds tensor '", info.name,
                           "' which weight_map does not list (rule: tensor not in weight_map)"));
      }
      if (it->second != file) {
        throw Error(StrCat(index_path, ": tensor '", info.name, "' is in both '", shard, "' and '",
                           fs::path(it->second->path()).filename().string(),
                           "', which weight_map assigns it to (rule: duplicate tensor across shards)"));
      }
    }
  }
  return reader;
}

std::vector<std::string> CheckpointReader::TensorNames() const {
  std::vector<std::string> names;
  names.reserve(owner_.size());
  for (const auto& entry : owner_) names.push_back(entry.first);
  return names;
}

const TensorInfo* CheckpointReader::Find(std::string_view name) const {
  const auto it = owner_.find(name);
  return it == owner_.end() ? nullptr : it->second->Find(name);
}

const TensorInfo& CheckpointReader::Get(std::string_view name) const {
  const TensorInfo* info = Find(name);
  if (info == nullptr) {
    throw Error(StrCat(path_, ": checkpoint has no tensor named '", name, "' (", owner_.size(), " tensors)"));
  }
  return *info;
}

const uint8_t* CheckpointReader::Data(std::string_view name) const {
  const TensorInfo& info = Get(name);
  return owner_.find(name)->second->Data(info);
}

}  // namespace promptsweep
