// File helpers shared by every writer of results (safetensors, adapters,
// metrics): nothing half-written is ever visible under the final name.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace promptsweep {

// Writes the concatenation of `parts` to `path` through a temporary file in the
// same directory, fsync and rename(), so readers (and a crash) see the old
// file or the new one, never half of one. Mode 0644. Throws IoError naming the
// path and the failed system call (the machine's storage, whoever chose the path).
void WriteFileAtomically(const std::string& path, const std::vector<std::string_view>& parts);
inline void WriteFileAtomically(const std::string& path, std::string_view text) {
  WriteFileAtomically(path, std::vector<std::string_view>{text});
}

// The whole file at `path`, bytes as they are. Throws
// "<path>: cannot read <what>: <reason>" (what: "the sweep file", ...): an
// Error when the path cannot be opened for the path's sake (missing, a
// directory, no permission), an IoError when the disk failed (EIO, a read
// error after opening, too many open files).
std::string ReadFile(const std::string& path, std::string_view what = "the file");

// ReadFile of a PEM file (TLS key, certificate, CA): ReadFile's errors, and
// Error when it has no -----BEGIN line; `what` names it ("CA certificate").
std::string ReadPemFile(const std::string& path, const std::string& what);

// strerror(error) as a string.
std::string ErrnoText(int error);

}  // namespace promptsweep
