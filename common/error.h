// Errors for promptsweep. One rule for every boundary: code that a user's input
// can make fail throws promptsweep::Error whose message says what was wrong,
// where (file:line:col, tensor name, job id) and, where it helps, what to do.
// Broken internal invariants use PS_CHECK, which throws InternalError: a bug,
// never caught as an Error. Failed storage (disk full, I/O error) is IoError,
// an Error the caller may retry.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace promptsweep {

// An error the user can act on. The message is complete and printable as one line.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// The machine's storage failed (a write, fsync, a read of an open file, SQLite
// I/O): nothing was wrong with the request, so trying again later may work.
// The message names the path and the system's reason.
class IoError : public Error {
 public:
  using Error::Error;
};

// A broken invariant (PS_CHECK): a promptsweep bug, not the user's doing. Not
// an Error, so code that turns Errors into user messages lets it through: the
// CLI says "please report", a worker retries the job, the service says INTERNAL.
class InternalError : public std::logic_error {
 public:
  explicit InternalError(const std::string& message) : std::logic_error(message) {}
};

namespace internal {

// Concatenates streamable parts into one string: StrCat("x=", 3) == "x=3".
template <typename... Parts>
std::string StrCat(Parts&&... parts) {
  std::ostringstream out;
  ((out << std::forward<Parts>(parts)), ...);
  return out.str();
}

[[noreturn]] inline void CheckFailed(const char* condition, const char* file, int line,
                                     const std::string& detail) {
  throw InternalError(StrCat("internal error: check failed: ", condition, " at ", file, ":", line,
                     detail.empty() ? "" : ": ", detail));
}

// Evaluates the message parts only to build the message, i.e. on failure.
template <typename... Parts>
inline void Check(const char* file, int line, const char* text, bool ok, const Parts&... parts) {
  if (!ok) CheckFailed(text, file, line, StrCat(parts...));
}

}  // namespace internal

using internal::StrCat;

}  // namespace promptsweep

// PS_CHECK(cond) / PS_CHECK(cond, parts...): an invariant that must hold whatever
// the input; on failure throws InternalError naming the condition, file:line and
// parts. Never for user input (flags, files, config values): those throw Error.
// (C++17 has no __VA_OPT__, hence the function: the stringised text shows the
// condition followed by the message parts.)
#define PS_CHECK(...) ::promptsweep::internal::Check(__FILE__, __LINE__, #__VA_ARGS__, __VA_ARGS__)
