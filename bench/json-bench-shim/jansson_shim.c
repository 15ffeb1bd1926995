#include "jansson_shim.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

// The parts of jansson.h (2.x ABI) the shim uses, declared here so no header is needed.
typedef struct json_t { int type; volatile size_t refcount; } json_t;
typedef struct {
    int line, column, position;
    char source[80];
    char text[160];
} json_error_t;
#define JSON_DECODE_ANY 0x4
#define JSON_COMPACT 0x20

static struct {
    json_t *(*loadb)(const char *, size_t, size_t, json_error_t *);
    size_t (*dumpb)(const json_t *, char *, size_t, size_t);
    void (*delete_)(json_t *);
    const char *(*string_value)(const json_t *);
    size_t (*string_length)(const json_t *);
    long long (*integer_value)(const json_t *);
    double (*real_value)(const json_t *);
    size_t (*array_size)(const json_t *);
    json_t *(*array_get)(const json_t *, size_t);
    void *(*object_iter)(json_t *);
    void *(*object_iter_next)(json_t *, void *);
    const char *(*object_iter_key)(void *);
    json_t *(*object_iter_value)(void *);
    json_t *(*object)(void);
    json_t *(*array)(void);
    json_t *(*stringn_nocheck)(const char *, size_t);
    json_t *(*integer)(long long);
    json_t *(*real)(double);
    json_t *(*true_)(void);
    json_t *(*false_)(void);
    json_t *(*null)(void);
    int (*object_set_new_nocheck)(json_t *, const char *, json_t *);
    int (*array_append_new)(json_t *, json_t *);
} J;

static int loaded = 0;
static char load_error[256];

int jshim_load(void) {
    if (loaded) return loaded > 0 ? 0 : -1;
    void *lib = dlopen("libjansson.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(load_error, sizeof load_error, "%s", dlerror());
        loaded = -1;
        return -1;
    }
#define SYM(field, name) \
    if (!(*(void **)&J.field = dlsym(lib, name))) { \
        snprintf(load_error, sizeof load_error, "libjansson.so.4 lacks %s", name); \
        loaded = -1; return -1; }
    SYM(loadb, "json_loadb") SYM(dumpb, "json_dumpb") SYM(delete_, "json_delete")
    SYM(string_value, "json_string_value") SYM(string_length, "json_string_length")
    SYM(integer_value, "json_integer_value") SYM(real_value, "json_real_value")
    SYM(array_size, "json_array_size") SYM(array_get, "json_array_get")
    SYM(object_iter, "json_object_iter") SYM(object_iter_next, "json_object_iter_next")
    SYM(object_iter_key, "json_object_iter_key") SYM(object_iter_value, "json_object_iter_value")
    SYM(object, "json_object") SYM(array, "json_array") SYM(stringn_nocheck, "json_stringn_nocheck")
    SYM(integer, "json_integer") SYM(real, "json_real") SYM(true_, "json_true")
    SYM(false_, "json_false") SYM(null, "json_null")
    SYM(object_set_new_nocheck, "json_object_set_new_nocheck") SYM(array_append_new, "json_array_append_new")
#undef SYM
    loaded = 1;
    return 0;
}

const char *jshim_load_error(void) { return load_error; }

void *jshim_parse(const uint8_t *bytes, size_t length, char *error, size_t error_size) {
    json_error_t e;
    json_t *value = J.loadb((const char *)bytes, length, JSON_DECODE_ANY, &e);
    if (!value && error_size > 0) snprintf(error, error_size, "%s at byte %d", e.text, e.position);
    return value;
}

size_t jshim_dump(const void *value, uint8_t *buffer, size_t size) {
    return J.dumpb((const json_t *)value, (char *)buffer, size, JSON_COMPACT);
}

void jshim_decref(void *value) {
    json_t *json = value;
    // As jansson.h's inline json_decref: singletons (true/false/null) have refcount -1.
    if (json && json->refcount != (size_t)-1 && __atomic_sub_fetch(&json->refcount, 1, __ATOMIC_ACQUIRE) == 0)
        J.delete_(json);
}

int jshim_type(const void *value) { return ((const json_t *)value)->type; }
const char *jshim_string(const void *value, size_t *length) {
    *length = J.string_length(value);
    return J.string_value(value);
}
long long jshim_integer(const void *value) { return J.integer_value(value); }
double jshim_real(const void *value) { return J.real_value(value); }
size_t jshim_array_size(const void *value) { return J.array_size(value); }
void *jshim_array_get(const void *value, size_t index) { return J.array_get(value, index); }
void *jshim_object_iter(void *object) { return J.object_iter(object); }
void *jshim_object_iter_next(void *object, void *iter) { return J.object_iter_next(object, iter); }
const char *jshim_object_iter_key(void *iter) { return J.object_iter_key(iter); }
void *jshim_object_iter_value(void *iter) { return J.object_iter_value(iter); }

void *jshim_new_object(void) { return J.object(); }
void *jshim_new_array(void) { return J.array(); }
void *jshim_new_string(const char *bytes, size_t length) { return J.stringn_nocheck(bytes, length); }
void *jshim_new_integer(long long value) { return J.integer(value); }
void *jshim_new_real(double value) { return J.real(value); }
void *jshim_new_bool(int value) { return value ? J.true_() : J.false_(); }
void *jshim_new_null(void) { return J.null(); }
int jshim_object_set(void *object, const char *key, void *value) { return J.object_set_new_nocheck(object, key, value); }
int jshim_array_append(void *array, void *value) { return J.array_append_new(array, value); }
