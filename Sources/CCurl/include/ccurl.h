#ifndef CCURL_H
#define CCURL_H
#include <curl/curl.h>

/* curl_easy_setopt / curl_easy_getinfo are variadic: typed wrappers for Swift. */
CURLcode ccurl_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode ccurl_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode ccurl_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode ccurl_getinfo_long(CURL *handle, CURLINFO info, long *value);

/* CURLOPT_WRITEFUNCTION / CURLOPT_HEADERFUNCTION: (data, size, count, userdata). */
typedef size_t (*ccurl_data_callback)(char *data, size_t size, size_t count, void *userdata);
CURLcode ccurl_setopt_callback(CURL *handle, CURLoption option, ccurl_data_callback value);
/* Options that take a curl_off_t (CURLOPT_POSTFIELDSIZE_LARGE). */
CURLcode ccurl_setopt_off(CURL *handle, CURLoption option, curl_off_t value);
#endif
