#include "coordinator/sqlite_db.h"

#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "common/error.h"
#include "test_utils.h"

namespace promptsweep {
namespace {

using test::ErrorOf;
using test::HasText;
using test::ScopedTempDir;

class SqliteDbTest : public ::testing::Test {
 protected:
  SqliteDbTest() : path_(dir_.File("test.db")), db_(path_) {
    db_.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, value REAL)");
  }
  int64_t Rows() { return db_.QueryInt("SELECT count(*) FROM t").value_or(-1); }

  ScopedTempDir dir_;
  std::string path_;
  SqliteDb db_;
};

TEST_F(SqliteDbTest, TransactionCommitsOrRollsBack) {
  SqliteStatement insert = db_.Prepare("INSERT INTO t(name, value) VALUES(?1, ?2)");
  {
    SqliteTransaction transaction(db_);
    insert.Bind(1, "a").Bind(2, 0.5).Run();
    transaction.Commit();
  }
  EXPECT_EQ(Rows(), 1);
  {
    SqliteTransaction transaction(db_);
    insert.Bind(1, "b").Bind(2, 1.5).Run();
  }  // not committed
  EXPECT_EQ(Rows(), 1);
  // An exception between Begin and Commit leaves the database as it was.
  EXPECT_THROW(
      {
        SqliteTransaction transaction(db_);
        insert.Bind(1, "c").BindNull(2).Run();
        insert.Bind(1, "a").Bind(2, 2.0).Run();  // UNIQUE
        transaction.Commit();
      },
      Error);
  EXPECT_EQ(Rows(), 1);
  // The statement is reusable after the failure.
  insert.Bind(1, "d").Bind(2, std::optional<double>()).Run();
  EXPECT_EQ(Rows(), 2);
}

TEST_F(SqliteDbTest, ReadsWhatItWrote) {
  db_.Exec("INSERT INTO t(name, value) VALUES('x', NULL); INSERT INTO t(name, value) VALUES('y', 0.25)");
  SqliteStatement query = db_.Prepare("SELECT name, value FROM t ORDER BY id");
  ASSERT_TRUE(query.Step());
  EXPECT_EQ(query.ColumnText(0), "x");
  EXPECT_TRUE(query.ColumnIsNull(1));
  EXPECT_FALSE(query.ColumnOptionalDouble(1));
  ASSERT_TRUE(query.Step());
  EXPECT_EQ(query.ColumnOptionalDouble(1), 0.25);
  EXPECT_FALSE(query.Step());
  EXPECT_TRUE(query.Step());  // reset at the end: the same statement runs again
  query.Reset();
  EXPECT_FALSE(db_.QueryInt("SELECT id FROM t WHERE name = 'none'"));
}

TEST_F(SqliteDbTest, BindStepAndPrepareErrorsNameTheFileAndTheStatement) {
  SqliteStatement insert = db_.Prepare("INSERT INTO t(name, value) VALUES(?1, ?2)");
  std::string message = ErrorOf([&] { insert.Bind(3, 1.0); });
  EXPECT_TRUE(HasText(message, path_ + ": cannot bind parameter 3 of INSERT INTO t(name, value)"));
  EXPECT_TRUE(HasText(message, "column index out of range"));

  insert.Bind(1, "a").Bind(2, 1.0).Run();
  message = ErrorOf([&] { insert.Bind(1, "a").Bind(2, 1.0).Run(); });
  EXPECT_TRUE(HasText(message, path_ + ": cannot run INSERT INTO t(name, value)"));
  EXPECT_TRUE(HasText(message, "UNIQUE constraint failed: t.name"));
  message = ErrorOf([&] { insert.BindNull(1).Run(); });
  EXPECT_TRUE(HasText(message, "NOT NULL constraint failed: t.name"));

  message = ErrorOf([&] { db_.Prepare("SELECT nope FROM t"); });
  EXPECT_TRUE(HasText(message, path_ + ": cannot prepare SELECT nope FROM t: no such column: nope"));
  EXPECT_TRUE(HasText(ErrorOf([&] { db_.Exec("DROP TABLE missing"); }), "no such table: missing"));
}

TEST(SqliteDbFileTest, CorruptOrUnopenableFileIsAnError) {
  ScopedTempDir dir;
  const std::string path = dir.File("garbage.db");
  test::WriteFileBytes(path, std::string(4096, 'x'));
  SqliteDb db(path);  // sqlite3 reads nothing at open
  const std::string message = ErrorOf([&] { db.Exec("PRAGMA journal_mode=WAL"); });
  EXPECT_TRUE(HasText(message, path));
  EXPECT_TRUE(HasText(message, "file is not a database"));

  const std::string missing = dir.File("no/such/dir/x.db");
  EXPECT_TRUE(HasText(ErrorOf([&] { SqliteDb unopenable(missing); }), missing + ": cannot open the database"));
}

}  // namespace
}  // namespace promptsweep
