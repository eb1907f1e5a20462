#include "coordinator/sqlite_db.h"

#include <sqlite3.h>

#include <utility>

#include "common/error.h"

namespace promptsweep {

// --- SqliteStatement ---

SqliteStatement::~SqliteStatement() {
  if (statement_ != nullptr) sqlite3_finalize(statement_);
}

SqliteStatement::SqliteStatement(SqliteStatement&& other) noexcept
    : db_(other.db_), statement_(std::exchange(other.statement_, nullptr)), stepped_(other.stepped_) {}

SqliteStatement& SqliteStatement::operator=(SqliteStatement&& other) noexcept {
  if (this != &other) {
    if (statement_ != nullptr) sqlite3_finalize(statement_);
    db_ = other.db_;
    statement_ = std::exchange(other.statement_, nullptr);
    stepped_ = other.stepped_;
  }
  return *this;
}

void SqliteStatement::ResetIfStepped() {
  PS_CHECK(statement_ != nullptr, "statement used before Prepare");
  if (stepped_) Reset();
}

void SqliteStatement::CheckBind(int rc, int index) {
  if (rc != SQLITE_OK) db_->Fail(StrCat("cannot bind parameter ", index, " of ", sqlite3_sql(statement_)));
}

SqliteStatement& SqliteStatement::Bind(int index, int64_t value) {
  ResetIfStepped();
  CheckBind(sqlite3_bind_int64(statement_, index, value), index);
  return *this;
}

SqliteStatement& SqliteStatement::Bind(int index, double value) {
  ResetIfStepped();
  CheckBind(sqlite3_bind_double(statement_, index, value), index);
  return *this;
}

SqliteStatement& SqliteStatement::Bind(int index, std::string_view text) {
  ResetIfStepped();
  CheckBind(sqlite3_bind_text64(statement_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8),
            index);
  return *this;
}

SqliteStatement& SqliteStatement::Bind(int index, const std::optional<double>& value) {
  return value ? Bind(index, *value) : BindNull(index);
}

SqliteStatement& SqliteStatement::BindNull(int index) {
  ResetIfStepped();
  CheckBind(sqlite3_bind_null(statement_, index), index);
  return *this;
}

bool SqliteStatement::Step() {
  PS_CHECK(statement_ != nullptr, "statement used before Prepare");
  stepped_ = true;
  const int rc = sqlite3_step(statement_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) {
    Reset();
    return false;
  }
  // sqlite3_errmsg must be read before the reset below replaces it.
  const std::string message = StrCat(db_->path(), ": cannot run ", sqlite3_sql(statement_), ": ",
                                     sqlite3_errmsg(sqlite3_db_handle(statement_)));
  Reset();
  // The disk, not the statement: IoError, which callers may retry.
  if ((rc & 0xff) == SQLITE_IOERR || (rc & 0xff) == SQLITE_FULL || (rc & 0xff) == SQLITE_CANTOPEN) throw IoError(message);
  throw Error(message);
}

void SqliteStatement::Run() {
  if (Step()) {
    Reset();
    PS_CHECK(false, "statement returned rows where none were expected: ", sqlite3_sql(statement_));
  }
}

void SqliteStatement::Reset() {
  if (statement_ == nullptr) return;
  sqlite3_reset(statement_);  // its return code repeats the last step's error, already reported
  sqlite3_clear_bindings(statement_);
  stepped_ = false;
}

int64_t SqliteStatement::ColumnInt(int column) const { return sqlite3_column_int64(statement_, column); }

double SqliteStatement::ColumnDouble(int column) const { return sqlite3_column_double(statement_, column); }

std::string SqliteStatement::ColumnText(int column) const {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(statement_, column));
  if (text == nullptr) return "";
  return std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(statement_, column)));
}

bool SqliteStatement::ColumnIsNull(int column) const {
  return sqlite3_column_type(statement_, column) == SQLITE_NULL;
}

std::optional<double> SqliteStatement::ColumnOptionalDouble(int column) const {
  if (ColumnIsNull(column)) return std::nullopt;
  return ColumnDouble(column);
}

// --- SqliteDb ---

SqliteDb::SqliteDb(const std::string& path, Access access) : path_(path) {
  // NOMUTEX: the owner serialises every call, so sqlite3's own locking is waste.
  const int flags = access == Access::kReadOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  const int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    const std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error(StrCat(path, ": cannot open the database: ", message));
  }
  sqlite3_extended_result_codes(db_, 1);
}

SqliteDb::~SqliteDb() {
  // Statements must be finalized before the connection closes.
  begin_ = SqliteStatement();
  commit_ = SqliteStatement();
  sqlite3_close(db_);
}

void SqliteDb::Fail(const std::string& what) const {
  throw Error(StrCat(path_, ": ", what, ": ", sqlite3_errmsg(db_)));
}

void SqliteDb::Exec(const std::string& sql) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    const std::string text = message != nullptr ? message : sqlite3_errmsg(db_);
    sqlite3_free(message);
    throw Error(StrCat(path_, ": cannot run ", sql, ": ", text));
  }
}

SqliteStatement SqliteDb::Prepare(const std::string& sql) const {
  sqlite3_stmt* statement = nullptr;
  if (sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size() + 1), SQLITE_PREPARE_PERSISTENT, &statement,
                         nullptr) != SQLITE_OK) {
    Fail(StrCat("cannot prepare ", sql));
  }
  return SqliteStatement(this, statement);
}

std::optional<int64_t> SqliteDb::QueryInt(const std::string& sql) {
  SqliteStatement statement = Prepare(sql);
  if (!statement.Step()) return std::nullopt;
  const int64_t value = statement.ColumnInt(0);
  statement.Reset();
  return value;
}

void SqliteDb::Begin() {
  // IMMEDIATE takes the write lock at once: a transaction never fails half-way
  // for want of it.
  if (begin_.statement_ == nullptr) begin_ = Prepare("BEGIN IMMEDIATE");
  begin_.Run();
}

void SqliteDb::Commit() {
  if (commit_.statement_ == nullptr) commit_ = Prepare("COMMIT");
  commit_.Run();
}

void SqliteDb::Rollback() noexcept {
  // Best effort: after some errors sqlite3 has rolled back already, and a
  // destructor must not throw.
  if (sqlite3_get_autocommit(db_)) return;
  sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

}  // namespace promptsweep
