#include "common/task_data.h"

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.h"
#include "common/json_util.h"
#include "common/tokenizer.h"
#include "test_utils.h"

namespace promptsweep {
namespace {

const std::string kDataDir = PROMPTSWEEP_TEST_DATA_DIR;
const std::string kTasksDir = kDataDir + "/tasks";

using test::HasText;

using test::TinyTokenizerWithBos;

std::vector<int32_t> Concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

class TaskDataTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tokenizer_ = Tokenizer::FromFile(kDataDir + "/models/tiny-llama/tokenizer.json").release();
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    tokenizer_ = nullptr;
  }

  static const Tokenizer& tok() { return *tokenizer_; }

  static TaskSpec SpamSpec() {
    TaskSpec spec;
    spec.kind = TaskKind::kClassification;
    spec.template_text = "{text}\nLabel:";
    spec.verbalizer = {{"spam", " spam"}, {"ham", " ham"}};
    return spec;
  }

  static TaskSpec GenerationSpec() {
    TaskSpec spec;
    spec.kind = TaskKind::kGeneration;
    return spec;
  }

  // A JSONL file in the test's temp dir holding `text`.
  std::string Write(const std::string& text) {
    const std::string path = dir_.File("task.jsonl");
    test::WriteFileBytes(path, text);
    return path;
  }

  // The message LoadTaskData throws for a file holding `text`.
  std::string ErrorFor(const std::string& text, const TaskSpec& spec) {
    const std::string path = Write(text);
    try {
      LoadTaskData(path, spec, tok());
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "no error for: " << text;
    return "";
  }

  test::ScopedTempDir dir_;
  static const Tokenizer* tokenizer_;
};

const Tokenizer* TaskDataTest::tokenizer_ = nullptr;

TEST_F(TaskDataTest, ReadsGenerationExamples) {
  const std::string path = kTasksDir + "/gen.jsonl";
  const TaskData data = LoadTaskData(path, GenerationSpec(), tok());
  EXPECT_EQ(data.path, path);
  ASSERT_EQ(data.examples.size(), 3u);
  EXPECT_TRUE(data.label_ids.empty());
  // Blank lines are skipped, but line numbers stay those of the file.
  EXPECT_EQ(data.examples[0].line, 1);
  EXPECT_EQ(data.examples[1].line, 3);
  EXPECT_EQ(data.examples[2].line, 5);
  EXPECT_EQ(data.examples[1].input_ids, tok().Encode("caf\xC3\xA9 au lait"));
  EXPECT_EQ(data.examples[1].target_ids, tok().Encode(" is hot", /*add_special_tokens=*/false));
  EXPECT_EQ(data.examples[1].target_text, " is hot");
  EXPECT_EQ(data.examples[1].label_index, -1);
  EXPECT_EQ(MajorityLabel(data).first, -1);
}

TEST_F(TaskDataTest, GenerationTargetsEndWithEosWhenSet) {
  TaskSpec spec = GenerationSpec();
  spec.eos_token_id = 319;
  const TaskData data = LoadTaskData(kTasksDir + "/gen.jsonl", spec, tok());
  std::vector<int32_t> expected = tok().Encode(" jumps over the lazy dog", false);
  expected.push_back(319);
  EXPECT_EQ(data.examples[0].target_ids, expected);
}

TEST_F(TaskDataTest, ReadsClassificationWithTemplateAndVerbalizer) {
  const TaskData data = LoadTaskData(kTasksDir + "/spam.jsonl", SpamSpec(), tok());
  ASSERT_EQ(data.examples.size(), 4u);
  ASSERT_EQ(data.label_ids.size(), 2u);
  // Verbatim words: the leading space is part of the label's tokens.
  EXPECT_EQ(data.label_ids[0], tok().Encode(" spam", false));
  EXPECT_EQ(data.label_ids[1], tok().Encode(" ham", false));
  EXPECT_NE(data.label_ids[0], tok().Encode("spam", false));
  EXPECT_EQ(data.examples[1].input_ids, tok().Encode("the dog sleeps in the sun\nLabel:"));
  EXPECT_EQ(data.examples[1].label_index, 1);
  EXPECT_EQ(data.examples[1].target_ids, data.label_ids[1]);
  EXPECT_EQ(data.examples[0].label_index, 0);
  EXPECT_TRUE(data.examples[0].target_text.empty());

  const auto [label, share] = MajorityLabel(data);
  EXPECT_EQ(label, 0);
  EXPECT_DOUBLE_EQ(share, 0.75);
}

TEST_F(TaskDataTest, IntegerLabelsMatchByTheirJsonText) {
  TaskSpec spec = SpamSpec();
  spec.template_text = "{text} sentiment:";
  spec.verbalizer = {{"0", " bad"}, {"1", " good"}};
  const TaskData data = LoadTaskData(kTasksDir + "/sentiment_int_labels.jsonl", spec, tok());
  ASSERT_EQ(data.examples.size(), 3u);
  EXPECT_EQ(data.examples[0].label_index, 1);  // 1
  EXPECT_EQ(data.examples[1].label_index, 0);  // 0
  EXPECT_EQ(data.examples[2].label_index, 1);  // "1"
}

TEST_F(TaskDataTest, TemplateFillsSeveralFieldsAndKeepsEscapedBraces) {
  TaskSpec spec = GenerationSpec();
  spec.template_text = "Q: {question} {{not a field}} C: {context}\nA:";
  const std::string path = Write(R"({"question": "who", "context": "the fox", "target": " a fox"})" "\n");
  const TaskData data = LoadTaskData(path, spec, tok());
  EXPECT_EQ(data.examples[0].input_ids, tok().Encode("Q: who {not a field} C: the fox\nA:"));
}

TEST_F(TaskDataTest, AddSpecialTokensFollowsTheSpec) {
  const std::unique_ptr<Tokenizer> bos_tokenizer = TinyTokenizerWithBos();
  const std::vector<int32_t> plain = bos_tokenizer->Encode("the quick brown fox", false);
  const std::vector<int32_t> target = bos_tokenizer->Encode(" jumps over the lazy dog", false);
  TaskSpec spec = GenerationSpec();
  const TaskData with_bos = LoadTaskData(kTasksDir + "/gen.jsonl", spec, *bos_tokenizer);
  EXPECT_EQ(with_bos.examples[0].input_ids, Concat({319}, plain));
  // Only the input gets special tokens; targets never do.
  EXPECT_EQ(with_bos.examples[0].target_ids, target);
  spec.add_special_tokens = false;
  const TaskData without = LoadTaskData(kTasksDir + "/gen.jsonl", spec, *bos_tokenizer);
  EXPECT_EQ(without.examples[0].input_ids, plain);
  EXPECT_EQ(without.examples[0].target_ids, target);
}

TEST_F(TaskDataTest, TruncationCutsTheLongestFieldAndKeepsTemplateAndTarget) {
  TaskSpec spec = GenerationSpec();
  const std::string suffix = "\nSummary:";
  spec.template_text = "Title: {title}\nBody: {body}" + suffix;
  // Non-ASCII body: the cut must fall on a character boundary.
  std::string body;
  for (int i = 0; i < 40; ++i) body += "the caf\xC3\xA9 dog ";
  const std::string title = "the fox";
  const std::string target = " the fox sleeps";
  const std::string line =
      R"({"title": ")" + title + R"(", "body": ")" + body + R"(", "target": ")" + target + R"("})" "\n";
  const std::vector<int32_t> target_ids = tok().Encode(target, false);
  const std::vector<int32_t> full = tok().Encode("Title: " + title + "\nBody: " + body + suffix);
  spec.max_length = static_cast<int64_t>(full.size() / 2);
  const TaskData data = LoadTaskData(Write(line), spec, tok());
  const Example& example = data.examples[0];

  EXPECT_EQ(example.target_ids, target_ids);
  const int64_t total = static_cast<int64_t>(example.input_ids.size() + example.target_ids.size());
  EXPECT_LE(total, spec.max_length);

  // The input is the template with a prefix of the body; the title is whole.
  const std::string text = tok().Decode(example.input_ids);
  const std::string head = "Title: " + title + "\nBody: ";
  ASSERT_EQ(text.rfind(head, 0), 0u) << text;
  ASSERT_GE(text.size(), head.size() + suffix.size());
  ASSERT_EQ(text.substr(text.size() - suffix.size()), suffix) << text;
  const std::string kept = text.substr(head.size(), text.size() - head.size() - suffix.size());
  EXPECT_LT(kept.size(), body.size());
  EXPECT_EQ(body.rfind(kept, 0), 0u) << "kept part is not a prefix of the body: " << kept;
  EXPECT_EQ(example.input_ids, tok().Encode(head + kept + suffix));
  // Largest prefix: one more character does not fit.
  std::size_t next = kept.size() + 1;
  while (next < body.size() && (static_cast<unsigned char>(body[next]) & 0xC0) == 0x80) ++next;
  const std::vector<int32_t> longer = tok().Encode(head + body.substr(0, next) + suffix);
  EXPECT_GT(static_cast<int64_t>(longer.size() + target_ids.size()), spec.max_length);
}

TEST_F(TaskDataTest, ExamplesThatFitAreNotTouched) {
  TaskSpec spec = GenerationSpec();
  const std::vector<int32_t> input = tok().Encode("the quick brown fox");
  const std::vector<int32_t> target = tok().Encode(" jumps over the lazy dog", false);
  spec.max_length = static_cast<int64_t>(input.size() + target.size());
  const TaskData data = LoadTaskData(kTasksDir + "/gen.jsonl", spec, tok());
  EXPECT_EQ(Concat(data.examples[0].input_ids, data.examples[0].target_ids), Concat(input, target));
}

TEST_F(TaskDataTest, ErrorWhenEvenAnEmptyFieldDoesNotFit) {
  TaskSpec spec = GenerationSpec();
  spec.template_text = "a long fixed instruction for the model to follow: {input}";
  spec.max_length = 6;
  const std::string message = ErrorFor(R"({"input": "the fox", "target": " the dog"})" "\n", spec);
  EXPECT_TRUE(HasText(message, "task.jsonl:1: "));
  EXPECT_TRUE(HasText(message, "field 'input' emptied"));
  EXPECT_TRUE(HasText(message, "max_length 6"));
}

TEST_F(TaskDataTest, MalformedLinesNameFileAndLine) {
  const std::string good = R"({"text": "the fox", "label": "spam"})" "\n";
  struct Case {
    std::string bad_line;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {R"({"text": "the fox", "label": "spam",})", "task.jsonl:3:37: invalid JSON"},
      {R"(["text", "spam"])", "task.jsonl:3: expected a JSON object, found array"},
      {R"({"text": "the fox"})", "task.jsonl:3: missing field 'label'"},
      {R"({"text": "the fox", "label": "eggs"})", "task.jsonl:3: label \"eggs\" is not in the verbalizer"},
      {R"({"text": "the fox", "label": ["spam"]})", "task.jsonl:3: field 'label': expected a string or a number"},
      {R"({"label": "spam"})", "task.jsonl:3: missing field 'text' (used by the template as {text})"},
      {R"({"text": 12, "label": "spam"})", "task.jsonl:3: field 'text': expected a string, found number 12"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.bad_line);
    EXPECT_TRUE(HasText(ErrorFor(good + "\n" + c.bad_line + "\n" + good, SpamSpec()), c.expected));
  }
}

TEST_F(TaskDataTest, MalformedGenerationLines) {
  EXPECT_TRUE(HasText(ErrorFor(R"({"input": "the fox"})" "\n", GenerationSpec()),
                      "task.jsonl:1: missing field 'target'"));
  EXPECT_TRUE(HasText(ErrorFor(R"({"input": "the fox", "target": ""})" "\n", GenerationSpec()),
                      "task.jsonl:1: field 'target' is empty"));
  EXPECT_TRUE(HasText(ErrorFor(R"({"input": "the fox", "target": 3})" "\n", GenerationSpec()),
                      "task.jsonl:1: field 'target': expected a string"));
  // A placeholder naming a field the line does not have.
  TaskSpec spec = GenerationSpec();
  spec.template_text = "{question}";
  EXPECT_TRUE(HasText(ErrorFor(R"({"input": "the fox", "target": " a"})" "\n", spec),
                      "task.jsonl:1: missing field 'question'"));
}

TEST_F(TaskDataTest, BadTemplatesAndVerbalizersAreRejected) {
  const std::string line = R"({"text": "the fox", "label": "spam"})" "\n";
  TaskSpec spec = SpamSpec();
  spec.template_text = "{text} {";
  EXPECT_TRUE(HasText(ErrorFor(line, spec), "is never closed"));
  spec.template_text = "{text} }";
  EXPECT_TRUE(HasText(ErrorFor(line, spec), "unmatched '}'"));
  spec.template_text = "{the text}";
  EXPECT_TRUE(HasText(ErrorFor(line, spec), "placeholder {the text} is not a field name"));
  spec.template_text = "{text} is {label}";
  EXPECT_TRUE(HasText(ErrorFor(line, spec), "would put the answer into the input"));
  spec.template_text = "no fields";
  EXPECT_TRUE(HasText(ErrorFor(line, spec), "no placeholder"));

  spec = SpamSpec();
  spec.verbalizer = {{"spam", " spam"}, {"spam", " junk"}};
  EXPECT_TRUE(HasText(ErrorFor(line, spec), "lists label \"spam\" twice"));
  spec.verbalizer = {{"spam", ""}};
  EXPECT_TRUE(HasText(ErrorFor(line, spec), "words for label \"spam\" are empty"));
  spec.verbalizer.clear();
  EXPECT_TRUE(HasText(ErrorFor(line, spec), "needs a verbalizer"));
  spec = SpamSpec();
  spec.max_length = 0;
  EXPECT_TRUE(HasText(ErrorFor(line, spec), "max_length must be positive"));
}

TEST_F(TaskDataTest, EmptyAndMissingFilesAreErrors) {
  EXPECT_TRUE(HasText(ErrorFor("\n  \n", SpamSpec()), "no examples"));
  EXPECT_TRUE(test::HasText(test::ErrorOf([&] { LoadTaskData(dir_.File("absent.jsonl"), SpamSpec(), tok()); }),
                            "absent.jsonl: cannot open"));
}

TEST_F(TaskDataTest, MajorityLabelBreaksTiesTowardsTheFirstLabel) {
  TaskData data;
  for (int64_t label : {2, 1, 1, 2, 0}) {
    Example example;
    example.label_index = label;
    data.examples.push_back(example);
  }
  const auto [label, share] = MajorityLabel(data);
  EXPECT_EQ(label, 1);
  EXPECT_DOUBLE_EQ(share, 0.4);
}

}  // namespace
}  // namespace promptsweep
