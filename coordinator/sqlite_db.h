// A small RAII layer over the sqlite3 C API for the coordinator's state:
// one connection, prepared statements that are kept and reused, and a
// transaction guard. Every failure is a promptsweep::Error that names the
// database file and carries sqlite3_errmsg.
//
// Thread safety: none; the owner serialises access (the scheduler's mutex).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace promptsweep {

class SqliteDb;

// A prepared statement, reusable: binding after a step (or Step() reaching
// the end) resets it, so the same object serves call after call without
// being prepared again. Parameters are 1-based, columns 0-based (sqlite3's).
class SqliteStatement {
 public:
  SqliteStatement() = default;
  ~SqliteStatement();
  SqliteStatement(SqliteStatement&& other) noexcept;
  SqliteStatement& operator=(SqliteStatement&& other) noexcept;
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  SqliteStatement& Bind(int index, int64_t value);
  SqliteStatement& Bind(int index, double value);
  SqliteStatement& Bind(int index, std::string_view text);  // copied (SQLITE_TRANSIENT)
  SqliteStatement& Bind(int index, const std::optional<double>& value);  // nullopt: NULL
  SqliteStatement& BindNull(int index);
  // Disambiguate literals and other integer types.
  SqliteStatement& Bind(int index, int value) { return Bind(index, static_cast<int64_t>(value)); }
  SqliteStatement& Bind(int index, const char* text) { return Bind(index, std::string_view(text)); }
  SqliteStatement& Bind(int index, const std::string& text) { return Bind(index, std::string_view(text)); }

  // Advances: true when a row is available, false when done (and then the
  // statement is reset for the next use). Error on failure.
  bool Step();
  // Runs a statement that returns no rows (INSERT, UPDATE, ...) to its end.
  void Run();
  // Resets and clears the bindings (call after reading only part of a result).
  void Reset();

  int64_t ColumnInt(int column) const;
  double ColumnDouble(int column) const;
  std::string ColumnText(int column) const;
  bool ColumnIsNull(int column) const;
  std::optional<double> ColumnOptionalDouble(int column) const;

 private:
  friend class SqliteDb;
  SqliteStatement(const SqliteDb* db, sqlite3_stmt* statement) : db_(db), statement_(statement) {}
  void ResetIfStepped();
  void CheckBind(int rc, int index);

  const SqliteDb* db_ = nullptr;
  sqlite3_stmt* statement_ = nullptr;
  bool stepped_ = false;  // stepped since the last reset
};

// One open database connection.
class SqliteDb {
 public:
  enum class Access { kReadWrite, kReadOnly };

  // Opens or creates `path` (kReadOnly: opens an existing one, and every
  // write fails). Error naming the path when it cannot be opened. (A file
  // that is not a database is only noticed by the first statement.)
  explicit SqliteDb(const std::string& path, Access access = Access::kReadWrite);
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  // Runs one or more `;`-separated statements that return no rows we need.
  void Exec(const std::string& sql);
  SqliteStatement Prepare(const std::string& sql) const;
  // A single-row, single-column integer query ("PRAGMA user_version"); nullopt when no row.
  std::optional<int64_t> QueryInt(const std::string& sql);

  // BEGIN IMMEDIATE / COMMIT on statements prepared once; ROLLBACK if a
  // transaction is open.
  void Begin();
  void Commit();
  void Rollback() noexcept;

  const std::string& path() const { return path_; }
  // "PATH: WHAT: <sqlite3_errmsg>" as an Error.
  [[noreturn]] void Fail(const std::string& what) const;

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
  SqliteStatement begin_, commit_;
};

// Begins a transaction; rolls it back on destruction unless committed (so an
// exception between Begin and Commit leaves the database unchanged).
class SqliteTransaction {
 public:
  explicit SqliteTransaction(SqliteDb& db) : db_(db) { db_.Begin(); }
  ~SqliteTransaction() {
    if (!done_) db_.Rollback();
  }
  SqliteTransaction(const SqliteTransaction&) = delete;
  SqliteTransaction& operator=(const SqliteTransaction&) = delete;

  void Commit() {
    db_.Commit();
    done_ = true;
  }

 private:
  SqliteDb& db_;
  bool done_ = false;
};

}  // namespace promptsweep
