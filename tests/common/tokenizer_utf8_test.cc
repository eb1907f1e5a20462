#include "common/tokenizer_utf8.h"

#include <string>

#include <gtest/gtest.h>

namespace promptsweep {
namespace tokenizer_internal {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

TEST(TokenizerUtf8Test, WellFormedLengthFollowsTheUnicodeTable) {
  EXPECT_EQ(WellFormedLength("a", 0), 1u);
  EXPECT_EQ(WellFormedLength("\xC3\xA9", 0), 2u);
  EXPECT_EQ(WellFormedLength("\xE2\x82\xAC", 0), 3u);
  EXPECT_EQ(WellFormedLength("\xF0\x9F\x98\x80", 0), 4u);
  EXPECT_EQ(WellFormedLength("\xC0\x80", 0), 0u);          // overlong
  EXPECT_EQ(WellFormedLength("\xE0\x80\x80", 0), 0u);      // overlong
  EXPECT_EQ(WellFormedLength("\xED\xA0\x80", 0), 0u);      // surrogate U+D800
  EXPECT_EQ(WellFormedLength("\xF4\x90\x80\x80", 0), 0u);  // above U+10FFFF
  EXPECT_EQ(WellFormedLength("\xE2\x82", 0), 0u);          // truncated
  EXPECT_EQ(WellFormedLength("\x80", 0), 0u);              // lone continuation
}

TEST(TokenizerUtf8Test, FirstInvalidUtf8GivesTheOffset) {
  EXPECT_EQ(FirstInvalidUtf8("caf\xC3\xA9"), std::string::npos);
  EXPECT_EQ(FirstInvalidUtf8(""), std::string::npos);
  EXPECT_EQ(FirstInvalidUtf8("ab\xFF"), 2u);
  EXPECT_EQ(FirstInvalidUtf8("\xC3\xA9\xC3"), 2u);
}

TEST(TokenizerUtf8Test, LossyUtf8ReplacesMaximalPrefixes) {
  // As Rust's String::from_utf8_lossy: one U+FFFD per maximal prefix of a
  // well-formed sequence, one per other bad byte.
  EXPECT_EQ(LossyUtf8("ok"), "ok");
  EXPECT_EQ(LossyUtf8("a\xE2\x82" "b"), "a" + kFffd + "b");
  EXPECT_EQ(LossyUtf8("\xF0\x9F\x98"), kFffd);
  EXPECT_EQ(LossyUtf8("\xF0\x80\x80"), kFffd + kFffd + kFffd);  // F0 80 is no prefix
  EXPECT_EQ(LossyUtf8("\xED\xA0\x80"), kFffd + kFffd + kFffd);  // surrogates are no prefix
  EXPECT_EQ(LossyUtf8("\xFF\xC3\xA9"), kFffd + "\xC3\xA9");
}

TEST(TokenizerUtf8Test, CharStepping) {
  const std::string s = "a\xC3\xA9\xE2\x82\xAC";
  EXPECT_EQ(CharLength(s, 0), 1u);
  EXPECT_EQ(CharLength(s, 1), 2u);
  EXPECT_EQ(CharLength(s, 3), 3u);
  EXPECT_EQ(PreviousCharStart(s, s.size()), 3u);
  EXPECT_EQ(PreviousCharStart(s, 3), 1u);
  EXPECT_EQ(PreviousCharStart(s, 1), 0u);
}

TEST(TokenizerUtf8Test, ByteAlphabetMatchesGpt2) {
  const ByteAlphabet& alphabet = ByteAlphabet::Get();
  EXPECT_EQ(alphabet.CharOf(' '), "\xC4\xA0");   // Ġ U+0120
  EXPECT_EQ(alphabet.CharOf('\n'), "\xC4\x8A");  // Ċ U+010A
  EXPECT_EQ(alphabet.CharOf('a'), "a");
  EXPECT_EQ(alphabet.CharOf(0xE9), "\xC3\xA9");  // printable Latin-1 maps to itself
  EXPECT_EQ(alphabet.Encode(" the"), "\xC4\xA0the");
}

TEST(TokenizerUtf8Test, ByteAlphabetRoundTripsEveryByte) {
  const ByteAlphabet& alphabet = ByteAlphabet::Get();
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::string chars = alphabet.Encode(all);
  EXPECT_EQ(FirstInvalidUtf8(chars), std::string::npos);
  std::string back;
  ASSERT_TRUE(alphabet.Decode(chars, &back));
  EXPECT_EQ(back, all);
}

TEST(TokenizerUtf8Test, ByteAlphabetDecodeRefusesOtherCharacters) {
  std::string out = "keep";
  // ' ' itself and U+0144 are outside the alphabet (space is Ġ there).
  EXPECT_FALSE(ByteAlphabet::Get().Decode("a b", &out));
  EXPECT_FALSE(ByteAlphabet::Get().Decode("\xC5\x84", &out));
  EXPECT_FALSE(ByteAlphabet::Get().Decode("\xE2\x82\xAC", &out));
  EXPECT_EQ(out, "keep");  // nothing appended on failure
}

}  // namespace
}  // namespace tokenizer_internal
}  // namespace promptsweep
