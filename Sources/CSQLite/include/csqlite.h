#ifndef CSQLITE_H
#define CSQLITE_H
#include <sqlite3.h>

/* SQLITE_TRANSIENT is a macro casting -1 to a function pointer; Swift cannot import it. */
int csqlite_bind_text(sqlite3_stmt *stmt, int index, const char *text, int bytes);
int csqlite_bind_blob(sqlite3_stmt *stmt, int index, const void *data, int bytes);
#endif
