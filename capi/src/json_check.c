/* Syntax checks done in C so that a bad request is refused at submission
 * without waiting for the interpreter: UTF-8 validity and JSON well-formedness. */
#include "dyn_internal.h"

int dyn_utf8_valid(const char* str, size_t n) {
    const unsigned char* s = (const unsigned char*)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned min;
        if (c < 0x80) { i++; continue; }
        if ((c & 0xE0) == 0xC0) { len = 2; min = 0x80; c &= 0x1F; }
        else if ((c & 0xF0) == 0xE0) { len = 3; min = 0x800; c &= 0x0F; }
        else if ((c & 0xF8) == 0xF0) { len = 4; min = 0x10000; c &= 0x07; }
        else return 0;
        if (i + len > n) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            c = (c << 6) | (s[i + k] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
        i += len;
    }
    return 1;
}

typedef struct { const char* s; size_t n; size_t i; int depth; } json_cursor;

enum { JSON_MAX_DEPTH = 128 };

static void skip_ws(json_cursor* c) {
    while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\n' || c->s[c->i] == '\r'))
        c->i++;
}

static int is_hex(char ch) {
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

static int parse_string(json_cursor* c) {
    if (c->i >= c->n || c->s[c->i] != '"') return 0;
    c->i++;
    while (c->i < c->n) {
        unsigned char ch = (unsigned char)c->s[c->i++];
        if (ch == '"') return 1;
        if (ch < 0x20) return 0;
        if (ch == '\\') {
            if (c->i >= c->n) return 0;
            char e = c->s[c->i++];
            if (e == 'u') {
                if (c->i + 4 > c->n) return 0;
                for (int k = 0; k < 4; k++) if (!is_hex(c->s[c->i + k])) return 0;
                c->i += 4;
            } else if (!(e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't')) {
                return 0;
            }
        }
    }
    return 0;
}

static int parse_digits(json_cursor* c) {
    size_t start = c->i;
    while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') c->i++;
    return c->i > start;
}

static int parse_number(json_cursor* c) {
    if (c->i < c->n && c->s[c->i] == '-') c->i++;
    if (c->i < c->n && c->s[c->i] == '0') c->i++;
    else if (!parse_digits(c)) return 0;
    if (c->i < c->n && c->s[c->i] == '.') { c->i++; if (!parse_digits(c)) return 0; }
    if (c->i < c->n && (c->s[c->i] == 'e' || c->s[c->i] == 'E')) {
        c->i++;
        if (c->i < c->n && (c->s[c->i] == '+' || c->s[c->i] == '-')) c->i++;
        if (!parse_digits(c)) return 0;
    }
    return 1;
}

static int parse_literal(json_cursor* c, const char* word, size_t len) {
    if (c->n - c->i < len) return 0;
    for (size_t k = 0; k < len; k++) if (c->s[c->i + k] != word[k]) return 0;
    c->i += len;
    return 1;
}

static int parse_value(json_cursor* c);

static int parse_container(json_cursor* c, char close, int is_object) {
    if (++c->depth > JSON_MAX_DEPTH) return 0;
    c->i++;
    skip_ws(c);
    if (c->i < c->n && c->s[c->i] == close) { c->i++; c->depth--; return 1; }
    for (;;) {
        skip_ws(c);
        if (is_object) {
            if (!parse_string(c)) return 0;
            skip_ws(c);
            if (c->i >= c->n || c->s[c->i] != ':') return 0;
            c->i++;
        }
        if (!parse_value(c)) return 0;
        skip_ws(c);
        if (c->i >= c->n) return 0;
        if (c->s[c->i] == ',') { c->i++; continue; }
        if (c->s[c->i] == close) { c->i++; c->depth--; return 1; }
        return 0;
    }
}

static int parse_value(json_cursor* c) {
    skip_ws(c);
    if (c->i >= c->n) return 0;
    switch (c->s[c->i]) {
    case '{': return parse_container(c, '}', 1);
    case '[': return parse_container(c, ']', 0);
    case '"': return parse_string(c);
    case 't': return parse_literal(c, "true", 4);
    case 'f': return parse_literal(c, "false", 5);
    case 'n': return parse_literal(c, "null", 4);
    default: return parse_number(c);
    }
}

int dyn_json_valid_object(const char* s, size_t n) {
    json_cursor c = {s, n, 0, 0};
    skip_ws(&c);
    if (c.i >= n || s[c.i] != '{') return 0;
    if (!parse_value(&c)) return 0;
    skip_ws(&c);
    return c.i == n;
}
