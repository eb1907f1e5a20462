#include "common/tokenizer_post_processor.h"

#include <limits>
#include <string>
#include <utility>

#include "common/error.h"

namespace promptsweep {
namespace tokenizer_internal {

PostProcessor::PostProcessor(const JsonNode& node, const std::function<bool(int32_t)>& id_exists) {
  Add(node, id_exists);
}

std::vector<int32_t> PostProcessor::Apply(std::vector<int32_t> ids) const {
  for (const Template& single : templates_) {
    std::vector<int32_t> out;
    out.reserve(ids.size() + 4);
    for (const Template::Piece& piece : single.pieces) {
      const std::vector<int32_t>& part = piece.is_sequence ? ids : piece.ids;
      out.insert(out.end(), part.begin(), part.end());
    }
    ids = std::move(out);
  }
  return ids;
}

void PostProcessor::Add(const JsonNode& node, const std::function<bool(int32_t)>& id_exists) {
  if (node.IsNull()) return;
  const std::string type = node.Object().String("type");
  if (type == "ByteLevel") return;  // only trims offsets
  if (type == "TemplateProcessing") {
    templates_.push_back(LoadTemplate(node, id_exists));
  } else if (type == "Sequence") {
    const JsonNode list = node.Child("processors");
    for (size_t i = 0; i < list.Array().size(); ++i) Add(list.At(i), id_exists);
  } else {
    node.Fail(StrCat("unsupported type ", JsonQuoted(type), " (supported: ByteLevel, TemplateProcessing, Sequence)"));
  }
}

PostProcessor::Template PostProcessor::LoadTemplate(const JsonNode& node,
                                                   const std::function<bool(int32_t)>& id_exists) {
  const JsonNode special_tokens = node.Child("special_tokens");
  const JsonNode single = node.Child("single");
  Template result;
  for (size_t i = 0; i < single.Array().size(); ++i) {
    const JsonNode piece = single.At(i);
    const JsonObject fields = piece.Object();
    Template::Piece out;
    if (fields.Has("Sequence")) {
      const JsonNode sequence = piece.Child("Sequence");
      const std::string id = sequence.Object().String("id");
      if (id != "A") sequence.Fail(StrCat("sequence ", JsonQuoted(id), " in the single template (only A exists)"));
      out.is_sequence = true;
    } else if (fields.Has("SpecialToken")) {
      const std::string name = piece.Child("SpecialToken").Object().String("id");
      const JsonNode entry = special_tokens.Child(name);
      if (entry.IsNull()) {
        piece.Fail(StrCat("special token ", JsonQuoted(name), " is missing from post_processor.special_tokens"));
      }
      const JsonNode ids = entry.Child("ids");
      for (size_t k = 0; k < ids.Array().size(); ++k) {
        const nlohmann::json& id = ids.json()[k];
        if (!id.is_number_integer() || id.get<int64_t>() > std::numeric_limits<int32_t>::max() ||
            !id_exists(static_cast<int32_t>(id.get<int64_t>()))) {
          ids.At(k).Fail(StrCat("id ", id.dump(), " is not in the vocabulary"));
        }
        out.ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
      }
    } else {
      piece.Fail("expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
    }
    result.pieces.push_back(std::move(out));
  }
  return result;
}

}  // namespace tokenizer_internal
}  // namespace promptsweep
