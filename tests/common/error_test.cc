// common/error.h and the error kinds common/file_util throws: PS_CHECK is an
// InternalError that no `catch (const Error&)` swallows; storage failures are
// IoError (an Error callers may retry); a wrong path is a plain Error.
#include "common/error.h"

#include <string>

#include <gtest/gtest.h>

#include "common/file_util.h"
#include "test_utils.h"

namespace promptsweep {
namespace {

using test::HasText;
using test::ScopedTempDir;

TEST(ErrorTest, CheckFailureIsAnInternalErrorNotAnError) {
  bool caught_as_error = false;
  bool caught_as_internal = false;
  try {
    try {
      PS_CHECK(1 + 1 == 3, "arithmetic ", 42);
    } catch (const Error&) {
      caught_as_error = true;
    }
  } catch (const InternalError& e) {
    caught_as_internal = true;
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("internal error: check failed: 1 + 1 == 3, \"arithmetic \", 42 at ", 0), 0u) << message;
    EXPECT_TRUE(HasText(message, "error_test.cc:")) << message;
    EXPECT_TRUE(HasText(message, ": arithmetic 42")) << message;
  }
  EXPECT_FALSE(caught_as_error);
  EXPECT_TRUE(caught_as_internal);
}

TEST(ErrorTest, PassingCheckDoesNotThrow) { EXPECT_NO_THROW(PS_CHECK(2 > 1, "never built")); }

TEST(ErrorTest, IoErrorIsAnError) {
  try {
    throw IoError("disk full");
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "disk full");
    return;
  }
  FAIL() << "IoError was not caught as Error";
}

TEST(ErrorTest, ReadingAMissingFileIsAUserErrorNotIoError) {
  ScopedTempDir dir;
  const std::string path = dir.File("absent.yaml");
  try {
    ReadFile(path, "the sweep file");
    FAIL() << "no error";
  } catch (const IoError& e) {
    FAIL() << "a missing file is the caller's to fix, not IoError: " << e.what();
  } catch (const Error& e) {
    EXPECT_TRUE(HasText(e.what(), path + ": cannot read the sweep file: No such file or directory")) << e.what();
  }
}

TEST(ErrorTest, FailedWriteIsIoError) {
  ScopedTempDir dir;
  const std::string path = dir.File("no-such-dir/out.json");
  try {
    WriteFileAtomically(path, "{}");
    FAIL() << "no error";
  } catch (const IoError& e) {
    EXPECT_TRUE(HasText(e.what(), path)) << e.what();
  }
}

TEST(ErrorTest, PemFileNotFoundNamesTheFile) {
  ScopedTempDir dir;
  const std::string path = dir.File("ca.pem");
  EXPECT_THROW(ReadPemFile(path, "CA certificate"), Error);
  test::WriteFileBytes(path, "not pem");
  try {
    ReadPemFile(path, "CA certificate");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_TRUE(HasText(e.what(), "not a PEM file")) << e.what();
  }
}

}  // namespace
}  // namespace promptsweep
