#include "common/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace promptsweep {

namespace fs = std::filesystem;

std::string ErrnoText(int error) { return std::strerror(error); }

namespace {

// Whether a failed read is about the path the caller gave (Error: fix the
// name or the permissions) rather than about the machine (IoError: retry).
bool IsPathErrno(int error) {
  return error == ENOENT || error == ENOTDIR || error == EACCES || error == EPERM || error == EISDIR ||
         error == ENAMETOOLONG || error == ELOOP;
}

[[noreturn]] void ThrowReadError(const std::string& path, std::string_view what, int error) {
  const std::string message = StrCat(path, ": cannot read ", what, ": ", ErrnoText(error));
  if (error == 0 || IsPathErrno(error)) throw Error(message);
  throw IoError(message);
}

}  // namespace

std::string ReadFile(const std::string& path, std::string_view what) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) ThrowReadError(path, what, errno);
  // A directory opens, and its read fails only on the copy below, unseen.
  std::error_code ignored;
  if (fs::is_directory(path, ignored)) ThrowReadError(path, what, EISDIR);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) ThrowReadError(path, what, errno);
  return std::move(text).str();
}

std::string ReadPemFile(const std::string& path, const std::string& what) {
  const std::string text = ReadFile(path, StrCat("the TLS ", what, " (PEM file)"));
  if (text.find("-----BEGIN") == std::string::npos) {
    throw Error(StrCat(path, ": not a PEM file (the TLS ", what, " must be PEM, with a -----BEGIN line)"));
  }
  return text;
}

void WriteFileAtomically(const std::string& path, const std::vector<std::string_view>& parts) {
  // The temp file sits next to the target so rename() is atomic (same file system).
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string temp = (dir / ("." + target.filename().string() + ".tmp.XXXXXX")).string();
  const int fd = ::mkstemp(temp.data());
  if (fd < 0) {
    throw IoError(StrCat(path, ": cannot create a temporary file in ", dir.string(), ": ", ErrnoText(errno)));
  }
  auto fail = [&](const std::string& what) {
    const int error = errno;
    ::close(fd);
    ::unlink(temp.c_str());
    throw IoError(StrCat(path, ": ", what, ": ", ErrnoText(error)));
  };
  // mkstemp creates 0600; a saved result should be readable like any other file.
  if (::fchmod(fd, 0644) != 0) fail("cannot set permissions");
  for (const std::string_view part : parts) {
    std::size_t written = 0;
    while (written < part.size()) {
      const ssize_t n = ::write(fd, part.data() + written, part.size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) fail("write failed");
      written += static_cast<std::size_t>(n);
    }
  }
  if (::fsync(fd) != 0) fail("fsync failed");
  if (::close(fd) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    throw IoError(StrCat(path, ": close failed: ", ErrnoText(error)));
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    throw IoError(StrCat(path, ": cannot rename temporary file into place: ", ErrnoText(error)));
  }
}

}  // namespace promptsweep
