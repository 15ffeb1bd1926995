// A small shim over libjansson for the JSON benchmark (bench/json-bench).
//
// jansson is opened with dlopen at run time rather than linked, so the package builds
// without libjansson-dev: the project does not ship jansson (bench/RESULTS.md says why),
// the benchmark only measures it, and skips it where libjansson.so.4 is absent.
#ifndef JANSSON_SHIM_H
#define JANSSON_SHIM_H

#include <stddef.h>
#include <stdint.h>

/// jansson's json_type values.
enum {
    JSHIM_OBJECT = 0, JSHIM_ARRAY, JSHIM_STRING, JSHIM_INTEGER, JSHIM_REAL,
    JSHIM_TRUE, JSHIM_FALSE, JSHIM_NULL
};

/// Opens libjansson.so.4 once; 0 on success, else -1 with the reason in jshim_load_error().
int jshim_load(void);
const char *jshim_load_error(void);

/// Parses one JSON text (any value); NULL on error with jansson's message in `error`.
void *jshim_parse(const uint8_t *bytes, size_t length, char *error, size_t error_size);
/// Compact text of a value into `buffer`; returns the length needed (may exceed `size`).
size_t jshim_dump(const void *value, uint8_t *buffer, size_t size);
/// json_decref (an inline function in jansson.h, so not a symbol to dlsym).
void jshim_decref(void *value);

int jshim_type(const void *value);
const char *jshim_string(const void *value, size_t *length);
long long jshim_integer(const void *value);
double jshim_real(const void *value);
size_t jshim_array_size(const void *value);
void *jshim_array_get(const void *value, size_t index);
void *jshim_object_iter(void *object);
void *jshim_object_iter_next(void *object, void *iter);
const char *jshim_object_iter_key(void *iter);
void *jshim_object_iter_value(void *iter);

/// Builders; the set/append functions take over the reference to `value`.
void *jshim_new_object(void);
void *jshim_new_array(void);
void *jshim_new_string(const char *bytes, size_t length);
void *jshim_new_integer(long long value);
void *jshim_new_real(double value);
void *jshim_new_bool(int value);
void *jshim_new_null(void);
int jshim_object_set(void *object, const char *key, void *value);
int jshim_array_append(void *array, void *value);

#endif
