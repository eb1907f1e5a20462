#include "common/file_util.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.h"
#include "test_utils.h"

namespace promptsweep {
namespace {

using test::ErrorOf;
using test::HasText;
using test::ScopedTempDir;

std::vector<std::string> Names(const ScopedTempDir& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    names.push_back(entry.path().filename().string());
  }
  return names;
}

TEST(WriteFileAtomicallyTest, WritesThePartsAndLeavesNoTemporaryFile) {
  ScopedTempDir dir;
  const std::string path = dir.File("out.json");
  WriteFileAtomically(path, std::vector<std::string_view>{"{\"a\": ", "1", "}\n"});
  EXPECT_EQ(test::ReadFileBytes(path), "{\"a\": 1}\n");
  WriteFileAtomically(path, "replaced");
  EXPECT_EQ(test::ReadFileBytes(path), "replaced");
  EXPECT_EQ(Names(dir), std::vector<std::string>{"out.json"});
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0644u);
}

TEST(WriteFileAtomicallyTest, FailureNamesThePathAndLeavesNothing) {
  ScopedTempDir dir;
  const std::string path = dir.File("missing/out.json");
  const std::string message = ErrorOf([&] { WriteFileAtomically(path, "x"); });
  EXPECT_TRUE(HasText(message, path + ": cannot create a temporary file in " + dir.File("missing")));
  // A directory in the way of the rename: the temporary file is removed.
  std::filesystem::create_directory(dir.File("taken"));
  std::filesystem::create_directory(dir.File("taken/inner"));
  EXPECT_TRUE(HasText(ErrorOf([&] { WriteFileAtomically(dir.File("taken"), "x"); }),
                      dir.File("taken") + ": cannot rename temporary file into place"));
  EXPECT_EQ(Names(dir), std::vector<std::string>{"taken"});
}

TEST(ReadFileTest, ReadsBytesAsTheyAre) {
  ScopedTempDir dir;
  const std::string bytes("a\0b\r\n\xff", 6);
  test::WriteFileBytes(dir.File("f"), bytes);
  EXPECT_EQ(ReadFile(dir.File("f")), bytes);
  test::WriteFileBytes(dir.File("empty"), "");
  EXPECT_EQ(ReadFile(dir.File("empty"), "the empty file"), "");
}

TEST(ReadFileTest, ErrorNamesPathWhatAndReason) {
  ScopedTempDir dir;
  const std::string missing = dir.File("absent.yaml");
  EXPECT_EQ(ErrorOf([&] { ReadFile(missing, "the sweep file"); }),
            missing + ": cannot read the sweep file: No such file or directory");
  EXPECT_EQ(ErrorOf([&] { ReadFile(missing); }), missing + ": cannot read the file: No such file or directory");
  // A missing file is the caller's to fix (Error), not a disk failure (IoError).
  try {
    ReadFile(missing);
  } catch (const IoError&) {
    ADD_FAILURE() << "an IoError for a missing file";
  } catch (const Error&) {
  }
  EXPECT_TRUE(HasText(ErrorOf([&] { ReadFile(dir.path().string(), "the task file"); }),
                      dir.path().string() + ": cannot read the task file: "));
}

TEST(ReadPemFileTest, NeedsABeginLine) {
  ScopedTempDir dir;
  const std::string pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  test::WriteFileBytes(dir.File("ca.pem"), pem);
  EXPECT_EQ(ReadPemFile(dir.File("ca.pem"), "CA certificate"), pem);
  test::WriteFileBytes(dir.File("key.der"), "\x30\x82");
  EXPECT_EQ(ErrorOf([&] { ReadPemFile(dir.File("key.der"), "private key"); }),
            dir.File("key.der") + ": not a PEM file (the TLS private key must be PEM, with a -----BEGIN line)");
  EXPECT_EQ(ErrorOf([&] { ReadPemFile(dir.File("none.pem"), "CA certificate"); }),
            dir.File("none.pem") + ": cannot read the TLS CA certificate (PEM file): No such file or directory");
}

}  // namespace
}  // namespace promptsweep
