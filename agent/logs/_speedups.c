/*
 * The per-line loops of the log pipeline that are plain data shuffling, in C.
 *
 * - scan_records: Docker json-file records -> CompleteLine tuples, for the common record
 *   only (exactly {"log":"...\n","stream":"stdout|stderr","time":"...Z"}, short enough,
 *   well-formed). It stops at the first record it does not take, so the Python decoder
 *   (agent/logs/dockerjson.py) handles everything unusual with the same rules as before.
 * - encode_push_request: the logproto.PushRequest wire bytes of a batch, field for field
 *   what agent/logs/loki_encode.py's pure-Python encoder writes.
 * - walk_fields: the search of a JSON line's keys for level and ids (parse.py's _walk).
 * - find_pairs: the key=value pairs of a text line (parse.py's _PAIR.findall).
 * - redact_signs: which secret detectors could match in a line (redact.py's signs), the
 *   pre-check the redact stage runs on every line and every extracted value, and
 *   redact_needs_look: whether any extracted value still needs that look, and
 *   redact_pending: the entries of a chunk that need the stage at all.
 * - group_entries: staged entries into push groups by label dict, with sizes and lines
 *   by level (stages/grouping.py's python_group_entries).
 *
 * Optional: agent/logs/speedups.py falls back to the pure-Python code when this module was
 * not built (no compiler) or NEXO_AGENT_PURE_PYTHON=1 is set. Tests run both and compare.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* ---------------------------------------------------------------- scan_records */

static const char LOG_KEY[] = "{\"log\":\"";
static const char STREAM_KEY[] = "\",\"stream\":\"std";
static const char TIME_KEY[] = "\",\"time\":\"";

static int two_digits(const char *p, int *out) {
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9') return 0;
    *out = (p[0] - '0') * 10 + (p[1] - '0');
    return 1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return days[m - 1];
}

/* "YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z" (what Docker writes) -> Unix ns; 0 = not that shape. */
static int parse_time(const char *p, Py_ssize_t n, int64_t *out) {
    int c1, c2, mo, d, h, mi, s;
    if (n < 20 || p[n - 1] != 'Z') return 0;
    if (!two_digits(p, &c1) || !two_digits(p + 2, &c2) || p[4] != '-' ||
        !two_digits(p + 5, &mo) || p[7] != '-' || !two_digits(p + 8, &d) ||
        (p[10] != 'T' && p[10] != 't') || !two_digits(p + 11, &h) || p[13] != ':' ||
        !two_digits(p + 14, &mi) || p[16] != ':' || !two_digits(p + 17, &s))
        return 0;
    int y = c1 * 100 + c2;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
        mi > 59 || s > 59)
        return 0;
    int64_t frac = 0;
    if (n > 20) {
        Py_ssize_t digits = n - 21;
        if (p[19] != '.' || digits < 1 || digits > 9) return 0;
        for (Py_ssize_t i = 0; i < 9; i++) {
            int digit = 0;
            if (i < digits) {
                char c = p[20 + i];
                if (c < '0' || c > '9') return 0;
                digit = c - '0';
            }
            frac = frac * 10 + digit;
        }
    }
    int64_t seconds = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    *out = seconds * 1000000000LL + frac;
    return 1;
}

static int hex4(const unsigned char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return 0;
    }
    *out = v;
    return 1;
}

static char *put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* Unescape the JSON string body [p, end) into out (never longer than the input).
 * Returns the output length, or -1 for anything the Python decoder should judge
 * (a control character, a bad or lone-surrogate escape). */
static Py_ssize_t unescape(const unsigned char *p, const unsigned char *end, char *out) {
    char *o = out;
    while (p < end) {
        unsigned char c = *p;
        if (c != '\\') {
            if (c < 0x20) return -1;
            *o++ = (char)c;
            p++;
            continue;
        }
        if (end - p < 2) return -1;
        switch (p[1]) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (end - p < 6 || !hex4(p + 2, &cp)) return -1;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || !hex4(p + 8, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return -1;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return -1;
            }
            o = put_utf8(o, cp);
            p += 6;
            continue;
        }
        default: return -1;
        }
        p += 2;
    }
    return o - out;
}

/* The text of a record's "log" value without its trailing "\n" / "\r\n", or NULL with
 * no exception set when the record is not the common one. */
static PyObject *line_text(const unsigned char *s, const unsigned char *e, int escaped,
                           int ascii, char **scratch, Py_ssize_t *scratch_size) {
    const char *text = (const char *)s;
    Py_ssize_t n = e - s;
    if (escaped) {
        if (*scratch_size < n) {
            char *bigger = PyMem_Realloc(*scratch, (size_t)n);
            if (bigger == NULL) return PyErr_NoMemory();
            *scratch = bigger;
            *scratch_size = n;
        }
        n = unescape(s, e, *scratch);
        if (n < 0) return NULL;
        text = *scratch;
        for (Py_ssize_t i = 0; ascii && i < n; i++) /* a \u escape may be non-ASCII */
            if ((unsigned char)text[i] & 0x80) ascii = 0;
    }
    if (n < 1 || text[n - 1] != '\n') return NULL; /* a partial chunk: Python joins it */
    n -= 1;
    if (n > 0 && text[n - 1] == '\r') n -= 1;
    if (ascii) {
        PyObject *str = PyUnicode_New(n, 127);
        if (str == NULL) return NULL;
        memcpy(PyUnicode_DATA(str), text, (size_t)n);
        return str;
    }
    /* Docker replaces invalid UTF-8 by U+FFFD when writing; so do we when reading. */
    return PyUnicode_DecodeUTF8(text, n, "replace");
}

static PyObject *scan_records(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t start, limit;
    long long base;
    PyObject *cls, *out, *stdout_s, *stderr_s;
    if (!PyArg_ParseTuple(args, "y*nLnOO!", &view, &start, &base, &limit, &cls, &PyList_Type,
                          &out))
        return NULL;
    stdout_s = PyUnicode_InternFromString("stdout");
    stderr_s = PyUnicode_InternFromString("stderr");
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &PyTuple_Type) ||
        stdout_s == NULL || stderr_s == NULL) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "cls must be a tuple type");
        goto fail;
    }
    PyTypeObject *type = (PyTypeObject *)cls;
    const unsigned char *data = view.buf;
    const Py_ssize_t size = view.len;
    char *scratch = NULL;
    Py_ssize_t scratch_size = 0;
    Py_ssize_t pos = start < 0 ? 0 : start;
    while (pos < size) {
        const unsigned char *rec = data + pos;
        const unsigned char *nl = memchr(rec, '\n', (size_t)(size - pos));
        if (nl == NULL) break; /* an unfinished record: the next read completes it */
        const Py_ssize_t rec_len = nl - rec;
        if (rec_len < (Py_ssize_t)sizeof(LOG_KEY) - 1 ||
            memcmp(rec, LOG_KEY, sizeof(LOG_KEY) - 1) != 0)
            break;
        /* the log string: up to the first unescaped quote */
        const unsigned char *s = rec + sizeof(LOG_KEY) - 1, *p = s;
        int escaped = 0, ascii = 1, control = 0;
        while (p < nl && *p != '"') {
            if (*p == '\\') {
                escaped = 1;
                p += 2;
                continue;
            }
            if (*p & 0x80) ascii = 0;
            else if (*p < 0x20) control = 1; /* invalid JSON: Python counts it malformed */
            p++;
        }
        if (p >= nl || control) break;
        const unsigned char *log_end = p;
        if (nl - p < (Py_ssize_t)sizeof(STREAM_KEY) - 1 + 3 ||
            memcmp(p, STREAM_KEY, sizeof(STREAM_KEY) - 1) != 0)
            break;
        p += sizeof(STREAM_KEY) - 1;
        PyObject *stream;
        if (memcmp(p, "out", 3) == 0) stream = stdout_s;
        else if (memcmp(p, "err", 3) == 0) stream = stderr_s;
        else break;
        p += 3;
        if (nl - p < (Py_ssize_t)sizeof(TIME_KEY) - 1 ||
            memcmp(p, TIME_KEY, sizeof(TIME_KEY) - 1) != 0)
            break;
        p += sizeof(TIME_KEY) - 1;
        const unsigned char *t = p;
        while (p < nl && *p != '"') p++;
        if (nl - p != 2 || p[1] != '}') break;
        int64_t ts_ns;
        if (!parse_time((const char *)t, p - t, &ts_ns)) break;
        PyObject *line = line_text(s, log_end, escaped, ascii, &scratch, &scratch_size);
        if (line == NULL) {
            if (PyErr_Occurred()) goto fail_scratch;
            break;
        }
        if (PyUnicode_GET_LENGTH(line) > limit) { /* maybe over max_line_size: Python caps */
            Py_DECREF(line);
            break;
        }
        const Py_ssize_t end = pos + rec_len + 1;
        PyObject *item = type->tp_alloc(type, 6);
        PyObject *ts = PyLong_FromLongLong(ts_ns);
        PyObject *end_obj = PyLong_FromLongLong(base + end);
        if (item == NULL || ts == NULL || end_obj == NULL) {
            Py_XDECREF(item);
            Py_XDECREF(ts);
            Py_XDECREF(end_obj);
            Py_DECREF(line);
            goto fail_scratch;
        }
        Py_INCREF(stream);
        Py_INCREF(Py_False);
        Py_INCREF(Py_None);
        PyTuple_SET_ITEM(item, 0, ts);
        PyTuple_SET_ITEM(item, 1, stream);
        PyTuple_SET_ITEM(item, 2, line);
        PyTuple_SET_ITEM(item, 3, Py_False);
        PyTuple_SET_ITEM(item, 4, end_obj);
        PyTuple_SET_ITEM(item, 5, Py_None);
        int failed = PyList_Append(out, item);
        Py_DECREF(item);
        if (failed) goto fail_scratch;
        pos = end;
    }
    PyMem_Free(scratch);
    PyBuffer_Release(&view);
    Py_DECREF(stdout_s);
    Py_DECREF(stderr_s);
    return PyLong_FromSsize_t(pos);
fail_scratch:
    PyMem_Free(scratch);
fail:
    PyBuffer_Release(&view);
    Py_XDECREF(stdout_s);
    Py_XDECREF(stderr_s);
    return NULL;
}

/* --------------------------------------------------------- encode_push_request */

static inline size_t varint_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline char *put_varint(char *p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = (char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (char)v;
    return p;
}

/* A string field (tag, length, bytes): proto3 leaves an empty one out. */
static inline size_t field_size(Py_ssize_t n) {
    return n ? 1 + varint_size((uint64_t)n) + (size_t)n : 0;
}

static inline char *put_field(char *p, char tag, const char *data, Py_ssize_t n) {
    if (!n) return p;
    *p++ = tag;
    p = put_varint(p, (uint64_t)n);
    memcpy(p, data, (size_t)n);
    return p + n;
}

static int utf8(PyObject *s, const char **data, Py_ssize_t *n) {
    if (!PyUnicode_Check(s)) {
        PyErr_SetString(PyExc_TypeError, "expected str");
        return -1;
    }
    *data = PyUnicode_AsUTF8AndSize(s, n);
    return *data ? 0 : -1;
}

/* Timestamp{seconds = 1, nanos = 2} of a ns count, floored like Python's divmod. */
static int split_ts(PyObject *obj, uint64_t *seconds, uint64_t *nanos) {
    long long ts = PyLong_AsLongLong(obj);
    if (ts == -1 && PyErr_Occurred()) return -1;
    long long s = ts / 1000000000LL, n = ts % 1000000000LL;
    if (n < 0) {
        n += 1000000000LL;
        s -= 1;
    }
    *seconds = (uint64_t)s;
    *nanos = (uint64_t)n;
    return 0;
}

static inline size_t ts_size(uint64_t seconds, uint64_t nanos) {
    return (seconds ? 1 + varint_size(seconds) : 0) + (nanos ? 1 + varint_size(nanos) : 0);
}

/* The size of one EntryAdapter body; -1 on a malformed entry (exception set). */
static Py_ssize_t entry_size(PyObject *entry) {
    if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) < 3) {
        PyErr_SetString(PyExc_TypeError, "an entry is (ts_ns, line, metadata)");
        return -1;
    }
    uint64_t seconds, nanos;
    const char *data;
    Py_ssize_t n;
    if (split_ts(PyTuple_GET_ITEM(entry, 0), &seconds, &nanos) < 0) return -1;
    if (utf8(PyTuple_GET_ITEM(entry, 1), &data, &n) < 0) return -1;
    size_t ts = ts_size(seconds, nanos);
    size_t size = 1 + varint_size(ts) + ts + field_size(n);
    PyObject *metadata = PyTuple_GET_ITEM(entry, 2);
    if (!PyTuple_Check(metadata)) {
        PyErr_SetString(PyExc_TypeError, "metadata is a tuple of (name, value)");
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(metadata); i++) {
        PyObject *pair = PyTuple_GET_ITEM(metadata, i);
        Py_ssize_t nn, vn;
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_TypeError, "metadata is a tuple of (name, value)");
            return -1;
        }
        if (utf8(PyTuple_GET_ITEM(pair, 0), &data, &nn) < 0) return -1;
        if (utf8(PyTuple_GET_ITEM(pair, 1), &data, &vn) < 0) return -1;
        size_t pair_size = field_size(nn) + field_size(vn);
        size += 1 + varint_size(pair_size) + pair_size;
    }
    return (Py_ssize_t)size;
}

static char *put_entry(char *p, PyObject *entry, Py_ssize_t size) {
    uint64_t seconds, nanos;
    const char *data;
    Py_ssize_t n;
    split_ts(PyTuple_GET_ITEM(entry, 0), &seconds, &nanos); /* checked by entry_size */
    *p++ = 0x12; /* StreamAdapter.entries */
    p = put_varint(p, (uint64_t)size);
    *p++ = 0x0a; /* EntryAdapter.timestamp */
    p = put_varint(p, ts_size(seconds, nanos));
    if (seconds) {
        *p++ = 0x08;
        p = put_varint(p, seconds);
    }
    if (nanos) {
        *p++ = 0x10;
        p = put_varint(p, nanos);
    }
    data = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(entry, 1), &n);
    p = put_field(p, 0x12, data, n); /* EntryAdapter.line */
    PyObject *metadata = PyTuple_GET_ITEM(entry, 2);
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(metadata); i++) {
        PyObject *pair = PyTuple_GET_ITEM(metadata, i);
        const char *name, *value;
        Py_ssize_t nn, vn;
        name = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(pair, 0), &nn);
        value = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(pair, 1), &vn);
        *p++ = 0x1a; /* EntryAdapter.structuredMetadata */
        p = put_varint(p, field_size(nn) + field_size(vn));
        p = put_field(p, 0x0a, name, nn);
        p = put_field(p, 0x12, value, vn);
    }
    return p;
}

/* encode_push_request([(labels: str, entries: list[PushEntry]), ...]) -> bytes */
static PyObject *encode_push_request(PyObject *self, PyObject *streams) {
    if (!PyList_Check(streams)) {
        PyErr_SetString(PyExc_TypeError, "streams is a list of (labels, entries)");
        return NULL;
    }
    const Py_ssize_t count = PyList_GET_SIZE(streams);
    Py_ssize_t entries_total = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *stream = PyList_GET_ITEM(streams, i);
        if (!PyTuple_Check(stream) || PyTuple_GET_SIZE(stream) != 2 ||
            !PyList_Check(PyTuple_GET_ITEM(stream, 1))) {
            PyErr_SetString(PyExc_TypeError, "streams is a list of (labels, entries)");
            return NULL;
        }
        entries_total += PyList_GET_SIZE(PyTuple_GET_ITEM(stream, 1));
    }
    /* pass 1: every size, kept so pass 2 writes without measuring again */
    Py_ssize_t *sizes = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(entries_total + count + 1));
    if (sizes == NULL) return PyErr_NoMemory();
    Py_ssize_t *entry_sizes = sizes + count;
    size_t total = 0;
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *stream = PyList_GET_ITEM(streams, i);
        const char *labels;
        Py_ssize_t labels_n;
        if (utf8(PyTuple_GET_ITEM(stream, 0), &labels, &labels_n) < 0) goto fail;
        size_t body = field_size(labels_n);
        PyObject *entries = PyTuple_GET_ITEM(stream, 1);
        for (Py_ssize_t j = 0; j < PyList_GET_SIZE(entries); j++, k++) {
            Py_ssize_t size = entry_size(PyList_GET_ITEM(entries, j));
            if (size < 0) goto fail;
            entry_sizes[k] = size;
            body += 1 + varint_size((uint64_t)size) + (size_t)size;
        }
        sizes[i] = (Py_ssize_t)body;
        total += 1 + varint_size(body) + body;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (out == NULL) goto fail;
    char *p = PyBytes_AS_STRING(out);
    k = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *stream = PyList_GET_ITEM(streams, i);
        const char *labels;
        Py_ssize_t labels_n;
        labels = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(stream, 0), &labels_n);
        *p++ = 0x0a; /* PushRequest.streams */
        p = put_varint(p, (uint64_t)sizes[i]);
        p = put_field(p, 0x0a, labels, labels_n); /* StreamAdapter.labels */
        PyObject *entries = PyTuple_GET_ITEM(stream, 1);
        for (Py_ssize_t j = 0; j < PyList_GET_SIZE(entries); j++, k++)
            p = put_entry(p, PyList_GET_ITEM(entries, j), entry_sizes[k]);
    }
    PyMem_Free(sizes);
    return out;
fail:
    PyMem_Free(sizes);
    return NULL;
}


/* ------------------------------------------------------------------- walk_fields */

/* agent/logs/parse.py's _walk, statement for statement: fill the empty ``slots`` (a
 * list indexed by role) from ``obj``'s keys in order; nested objects under a key of
 * ``nests`` are searched after the object's own keys, ``depth`` levels down. */
static int walk(PyObject *obj, PyObject *slots, PyObject *id_role, long depth,
                PyObject *roles, PyObject *nests, long level_role, Py_ssize_t max_len) {
    PyObject *key, *value, *nested = NULL;
    Py_ssize_t pos = 0;
    const Py_ssize_t slot_count = PyList_GET_SIZE(slots);
    while (PyDict_Next(obj, &pos, &key, &value)) {
        if (PyDict_CheckExact(value)) {
            if (depth) {
                PyObject *nest_role = PyDict_GetItemWithError(nests, key);
                if (nest_role == NULL) {
                    if (PyErr_Occurred()) goto fail;
                    continue;
                }
                if (nested == NULL && (nested = PyList_New(0)) == NULL) goto fail;
                PyObject *pair = PyTuple_Pack(2, value, nest_role);
                if (pair == NULL || PyList_Append(nested, pair) < 0) {
                    Py_XDECREF(pair);
                    goto fail;
                }
                Py_DECREF(pair);
            }
            continue;
        }
        PyObject *role = PyDict_GetItemWithError(roles, key);
        if (role == NULL) {
            if (PyErr_Occurred()) goto fail;
            if (id_role == Py_None || !PyUnicode_Check(key) ||
                PyUnicode_CompareWithASCIIString(key, "id") != 0)
                continue;
            role = id_role;
        }
        long r = PyLong_AsLong(role);
        if (r == -1 && PyErr_Occurred()) goto fail;
        if (r < 0 || r >= slot_count) {
            PyErr_SetString(PyExc_IndexError, "role out of range");
            goto fail;
        }
        if (PyList_GET_ITEM(slots, r) != Py_None) continue;
        PyObject *found = NULL;
        if (PyUnicode_CheckExact(value)) {
            Py_ssize_t n = PyUnicode_GET_LENGTH(value);
            if (n && n <= max_len) {
                found = value;
                Py_INCREF(found);
            }
        } else if (PyLong_CheckExact(value)) {
            if (r == level_role) {
                found = value;
                Py_INCREF(found);
            } else if ((found = PyObject_Str(value)) == NULL) {
                goto fail;
            }
        } else if (PyFloat_CheckExact(value) && r != level_role) {
            if ((found = PyObject_Str(value)) == NULL) goto fail;
        }
        if (found != NULL) {
            PyObject *old = PyList_GET_ITEM(slots, r);
            PyList_SET_ITEM(slots, r, found);
            Py_DECREF(old);
        }
    }
    if (nested != NULL) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(nested); i++) {
            PyObject *pair = PyList_GET_ITEM(nested, i);
            if (walk(PyTuple_GET_ITEM(pair, 0), slots, PyTuple_GET_ITEM(pair, 1), depth - 1,
                     roles, nests, level_role, max_len) < 0)
                goto fail;
        }
        Py_DECREF(nested);
    }
    return 0;
fail:
    Py_XDECREF(nested);
    return -1;
}

/* walk_fields(obj, slots, id_role, depth, roles, nests, level_role, max_len) -> None */
static PyObject *walk_fields(PyObject *self, PyObject *args) {
    PyObject *obj, *slots, *id_role, *roles, *nests;
    long depth, level_role;
    Py_ssize_t max_len;
    if (!PyArg_ParseTuple(args, "O!O!OlO!O!ln", &PyDict_Type, &obj, &PyList_Type, &slots,
                          &id_role, &depth, &PyDict_Type, &roles, &PyDict_Type, &nests,
                          &level_role, &max_len))
        return NULL;
    if (walk(obj, slots, id_role, depth, roles, nests, level_role, max_len) < 0) return NULL;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------- json_fields */

/* parse.py's tables and helpers, handed over once by configure_json_fields. */
static PyObject *jf_roles, *jf_nests, *jf_message_keys, *jf_scan_pairs, *jf_spellings,
    *jf_normalize, *jf_cls;
static Py_ssize_t jf_max_len;
static PyObject *s_debug, *s_info, *s_warn, *s_error, *s_fatal;
static PyObject *s_unknown; /* defined with the group_entries strings below */

static PyObject *configure_json_fields(PyObject *self, PyObject *args) {
    PyObject *roles, *nests, *message_keys, *scan_pairs, *spellings, *normalize, *cls;
    Py_ssize_t max_len;
    if (!PyArg_ParseTuple(args, "O!O!nO!OO!OO", &PyDict_Type, &roles, &PyDict_Type, &nests,
                          &max_len, &PyTuple_Type, &message_keys, &scan_pairs, &PyDict_Type,
                          &spellings, &normalize, &cls))
        return NULL;
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "cls must be a tuple type");
        return NULL;
    }
    PyObject *const given[] = {roles, nests, message_keys, scan_pairs, spellings, normalize, cls};
    PyObject **const kept[] = {&jf_roles,      &jf_nests,     &jf_message_keys, &jf_scan_pairs,
                               &jf_spellings, &jf_normalize, &jf_cls};
    for (size_t i = 0; i < sizeof(given) / sizeof(given[0]); i++) {
        Py_INCREF(given[i]);
        Py_XSETREF(*kept[i], given[i]);
    }
    jf_max_len = max_len;
    Py_RETURN_NONE;
}

/* parse.py's normalize_level for a value the exact-spelling table does not hold. */
static PyObject *level_of(PyObject *value) {
    if (value == Py_None) {
        Py_INCREF(s_unknown);
        return s_unknown;
    }
    if (PyUnicode_CheckExact(value)) {
        PyObject *found = PyDict_GetItemWithError(jf_spellings, value);
        if (found != NULL) {
            Py_INCREF(found);
            return found;
        }
        if (PyErr_Occurred()) return NULL;
    } else if (PyLong_CheckExact(value)) { /* pino/bunyan numbers: _numeric_level */
        int overflow = 0;
        const long long n = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (n == -1 && !overflow && PyErr_Occurred()) return NULL;
        PyObject *level = overflow > 0 || n >= 60 ? s_fatal
                          : overflow < 0          ? s_unknown
                          : n >= 50               ? s_error
                          : n >= 40               ? s_warn
                          : n >= 30               ? s_info
                          : n >= 10               ? s_debug
                                                  : s_unknown;
        Py_INCREF(level);
        return level;
    }
    return PyObject_CallOneArg(jf_normalize, value); /* odd spellings, other types */
}

/* json_fields(obj) -> parse.py's _python_parse_json(obj): level and ids of a JSON line. */
static PyObject *json_fields(PyObject *self, PyObject *obj) {
    if (jf_cls == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure_json_fields was not called");
        return NULL;
    }
    if (!PyDict_Check(obj)) {
        PyErr_SetString(PyExc_TypeError, "a JSON object (dict) is expected");
        return NULL;
    }
    PyObject *slots = PyList_New(5), *result = NULL, *level = NULL;
    if (slots == NULL) return NULL;
    for (Py_ssize_t i = 0; i < 5; i++) {
        Py_INCREF(Py_None);
        PyList_SET_ITEM(slots, i, Py_None);
    }
    if (walk(obj, slots, Py_None, 2, jf_roles, jf_nests, 0, jf_max_len) < 0) goto done;
    if (PyList_GET_ITEM(slots, 1) == Py_None || PyList_GET_ITEM(slots, 2) == Py_None ||
        PyList_GET_ITEM(slots, 3) == Py_None) {
        /* NestJS and many services put "account=acc-1" inside the message text. */
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(jf_message_keys); k++) {
            PyObject *message = PyDict_GetItemWithError(obj, PyTuple_GET_ITEM(jf_message_keys, k));
            if (message == NULL) {
                if (PyErr_Occurred()) goto done;
                continue;
            }
            if (!PyUnicode_CheckExact(message)) continue;
            const Py_ssize_t at =
                PyUnicode_FindChar(message, '=', 0, PyUnicode_GET_LENGTH(message), 1);
            if (at == -2) goto done;
            if (at >= 0) {
                PyObject *none = PyObject_CallFunctionObjArgs(jf_scan_pairs, message, slots, NULL);
                if (none == NULL) goto done;
                Py_DECREF(none);
            }
            break;
        }
    }
    level = level_of(PyList_GET_ITEM(slots, 0));
    if (level == NULL) goto done;
    PyObject *request = PyList_GET_ITEM(slots, 3);
    if (request == Py_None) request = PyList_GET_ITEM(slots, 4);
    result = ((PyTypeObject *)jf_cls)->tp_alloc((PyTypeObject *)jf_cls, 4);
    if (result == NULL) goto done;
    PyObject *const values[] = {level, PyList_GET_ITEM(slots, 1), PyList_GET_ITEM(slots, 2),
                                request};
    for (Py_ssize_t i = 0; i < 4; i++) {
        Py_INCREF(values[i]);
        PyTuple_SET_ITEM(result, i, values[i]);
    }
done:
    Py_XDECREF(level);
    Py_DECREF(slots);
    return result;
}

/* -------------------------------------------------------------------- find_pairs */

#define CH(i) PyUnicode_READ(kind, data, (i))

static inline int is_key_char(Py_UCS4 c) { /* [\w.\-] of a str pattern */
    return Py_UNICODE_ISALNUM(c) || c == '_' || c == '.' || c == '-';
}

static inline int is_bare_char(Py_UCS4 c) { /* [^\s"',;&] of a str pattern */
    return !Py_UNICODE_ISSPACE(c) && c != '"' && c != '\'' && c != ',' && c != ';' && c != '&';
}

/* find_pairs(text) -> parse.py's _PAIR.findall(text), without the regex engine's
 * per-position cost: a key ends at an "=", so each "=" has at most one key start. */
static PyObject *find_pairs(PyObject *self, PyObject *text) {
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "text must be str");
        return NULL;
    }
    const int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    const Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    Py_ssize_t pos = 0; /* where the previous match ended */
    for (Py_ssize_t e = 0; e < n; e++) {
        if (CH(e) != '=' || e < pos) continue;
        /* the run of key characters just before "=" (65 is enough to know it is too long) */
        Py_ssize_t r = e;
        while (r > 0 && e - r < 65 && is_key_char(CH(r - 1))) r--;
        const Py_ssize_t run = e - r;
        Py_ssize_t s = -1;
        if (r > 0 && CH(r - 1) == '@') {
            /* "@" starts the key: it may not follow a key character or another "@" */
            Py_UCS4 before = r >= 2 ? CH(r - 2) : ' ';
            if (run <= 63 && !(r >= 2 && (is_key_char(before) || before == '@'))) s = r - 1;
        } else if (run >= 1 && run <= 64) {
            Py_UCS4 first = CH(r);
            if ((first >= 'A' && first <= 'Z') || (first >= 'a' && first <= 'z') || first == '_')
                s = r;
        }
        if (s < pos) continue; /* no key here (or it would start inside the last match) */
        Py_ssize_t v = e + 1, end = -1, value_start = v, value_end = v;
        int group = 0; /* 1: "double", 2: 'single', 3: bare */
        if (v < n && CH(v) == '"') {
            Py_ssize_t i = v + 1;
            while (i < n) {
                Py_UCS4 c = CH(i);
                if (c == '"') break;
                if (c == '\\') {
                    if (i + 1 < n && CH(i + 1) != '\n') {
                        i += 2;
                        continue;
                    }
                    i = n; /* a backslash before a newline or the end: no closing quote */
                    break;
                }
                i++;
            }
            if (i < n) {
                group = 1;
                value_start = v + 1;
                value_end = i;
                end = i + 1;
            }
        } else if (v < n && CH(v) == '\'') {
            Py_ssize_t i = v + 1;
            while (i < n && CH(i) != '\'') i++;
            if (i < n) {
                group = 2;
                value_start = v + 1;
                value_end = i;
                end = i + 1;
            }
        } else {
            Py_ssize_t i = v;
            while (i < n && is_bare_char(CH(i))) i++;
            if (i > v) {
                group = 3;
                value_start = v;
                value_end = i;
                end = i;
            }
        }
        if (!group) continue;
        PyObject *key = PyUnicode_Substring(text, s, e);
        PyObject *value = PyUnicode_Substring(text, value_start, value_end);
        PyObject *empty = PyUnicode_New(0, 0);
        PyObject *item = NULL;
        if (key && value && empty)
            item = PyTuple_Pack(4, key, group == 1 ? value : empty, group == 2 ? value : empty,
                                group == 3 ? value : empty);
        Py_XDECREF(key);
        Py_XDECREF(value);
        Py_XDECREF(empty);
        if (item == NULL || PyList_Append(out, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(item);
        pos = end;
        e = end - 1; /* the loop's e++ resumes the search right after the value */
    }
    return out;
}

#undef CH

/* ---------------------------------------------------------------- redact_signs */

/* redact.py's detector bits, in the order of its DETECTORS. */
enum { SIGN_EMAIL = 1, SIGN_CARD = 2, SIGN_JWT = 4, SIGN_BEARER = 8, SIGN_AWS = 16,
       SIGN_SECRETS = 32 };

/* Folding of one byte (or code point below 256): ASCII letters lower-cased, space and dash
 * deleted (0), anything beyond ASCII 0x80, the rest as it is. Filled at import. */
static unsigned char FOLD[256];

static void init_fold(void) {
    for (int c = 0; c < 256; c++)
        FOLD[c] = c >= 128 ? 0x80 : (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : (unsigned char)c;
    FOLD[' '] = 0;
    FOLD['-'] = 0;
    FOLD[0] = 1; /* NUL is no sign either; anything but 0 keeps the position */
}

/* The signs read on the folded text, as one Aho-Corasick automaton over folded bytes: a
 * single pass finds every word wherever it starts, without a folded copy of the text.
 * SIGN_WORD_SECRET stands for "secret" (a sign of both secrets and AWS keys). */
enum { SIGN_WORD_SECRET = 64, SIGN_STATES = 64 };
static const struct {
    const char *word;
    unsigned char sign;
} SIGN_WORDS[] = {
    {"@", SIGN_EMAIL},      {"secret", SIGN_WORD_SECRET}, {"passw", SIGN_SECRETS},
    {"pwd", SIGN_SECRETS},  {"token", SIGN_SECRETS},      {"key", SIGN_SECRETS},
    {"bearer", SIGN_BEARER}, {"authorization", SIGN_BEARER},
};
static unsigned char SIGN_NEXT[SIGN_STATES][256]; /* state, folded byte -> next state */
static unsigned char SIGN_FOUND[SIGN_STATES];     /* the signs a state completes */

static void init_sign_automaton(void) {
    static signed char trie[SIGN_STATES][256];
    unsigned char fail[SIGN_STATES] = {0}, queue[SIGN_STATES];
    memset(trie, -1, sizeof(trie));
    int states = 1;
    for (size_t w = 0; w < sizeof(SIGN_WORDS) / sizeof(SIGN_WORDS[0]); w++) {
        int state = 0;
        for (const char *c = SIGN_WORDS[w].word; *c; c++) {
            const unsigned char b = (unsigned char)*c;
            if (trie[state][b] < 0) trie[state][b] = (signed char)states++;
            state = trie[state][b];
        }
        SIGN_FOUND[state] |= SIGN_WORDS[w].sign;
    }
    int head = 0, tail = 0;
    for (int b = 0; b < 256; b++) {
        const int child = trie[0][b];
        SIGN_NEXT[0][b] = child > 0 ? (unsigned char)child : 0;
        if (child > 0) queue[tail++] = (unsigned char)child; /* fail[child] = 0 */
    }
    while (head < tail) { /* breadth first: a state's fallback is always done before it */
        const int state = queue[head++];
        SIGN_FOUND[state] |= SIGN_FOUND[fail[state]];
        for (int b = 0; b < 256; b++) {
            const int child = trie[state][b];
            if (child < 0) {
                SIGN_NEXT[state][b] = SIGN_NEXT[fail[state]][b];
                continue;
            }
            SIGN_NEXT[state][b] = (unsigned char)child;
            fail[child] = SIGN_NEXT[fail[state]][b];
            queue[tail++] = (unsigned char)child;
        }
    }
}

static int is_ascii_digit(Py_UCS4 c) { return c >= '0' && c <= '9'; }

/* Whether a card number could start somewhere in the text: redact.py's _CARD_START, what
 * the card rule needs before its own \b and Luhn check. A 2-6 digit not preceded by an
 * ASCII letter, digit or underscore, one more digit, then eleven digits each perhaps
 * after one space or dash. Hex ids (8ff34741-00000008) and epoch times are no start. */
#define DEFINE_CARD_START(NAME, T)                                                        \
    static int NAME(const T *s, Py_ssize_t n) {                                           \
        for (Py_ssize_t i = 0; i + 13 <= n; i++) {                                        \
            if ((Py_UCS4)s[i] - '2' > 4) continue; /* most characters: not 2-6 */        \
            if (i > 0) {                                                                  \
                const Py_UCS4 p = s[i - 1];                                               \
                if (p < 128 &&                                                            \
                    (is_ascii_digit(p) || p == '_' || ((p | 32) >= 'a' && (p | 32) <= 'z'))) \
                    continue;                                                             \
            }                                                                             \
            if (!is_ascii_digit(s[i + 1])) continue;                                      \
            int digits = 2;                                                               \
            Py_ssize_t j = i + 2;                                                         \
            while (digits < 13 && j < n) {                                                \
                if (is_ascii_digit(s[j])) {                                               \
                    digits++;                                                             \
                    j++;                                                                  \
                } else if ((s[j] == ' ' || s[j] == '-') && j + 1 < n &&                   \
                           is_ascii_digit(s[j + 1])) {                                    \
                    digits++;                                                             \
                    j += 2;                                                               \
                } else {                                                                  \
                    break;                                                                \
                }                                                                         \
            }                                                                             \
            if (digits == 13) return 1;                                                   \
        }                                                                                 \
        return 0;                                                                         \
    }
DEFINE_CARD_START(card_start_1, Py_UCS1)
DEFINE_CARD_START(card_start_2, Py_UCS2)
DEFINE_CARD_START(card_start_4, Py_UCS4)
#undef DEFINE_CARD_START

/* One loop per string width: the character reads stay plain array reads. */
static int card_start(int kind, const void *data, Py_ssize_t n) {
    switch (kind) {
    case PyUnicode_1BYTE_KIND: return card_start_1(data, n);
    case PyUnicode_2BYTE_KIND: return card_start_2(data, n);
    default: return card_start_4(data, n);
    }
}

/* redact_signs(text, enabled) -> redact.py's _python_signs(text, enabled): the detectors among
 * ``enabled`` whose cheap sign the text shows. The text is folded as there: ASCII letters
 * lower-cased, spaces and dashes deleted; anything beyond ASCII can be part of no sign.
 * One pass folds the text, looks for the case-sensitive signs and runs the automaton. */
static long signs_of(PyObject *text, long enabled) {
    const int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    const Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    long bits = 0;
    unsigned state = 0, found = 0;
    if (kind == PyUnicode_1BYTE_KIND) { /* most lines: a table per byte, memchr for the rest */
        const unsigned char *s = data, *end = s + n;
        /* "eyJ", "AKIA", "ASIA": found from their rarest letter (upper-case J, I) by memchr,
         * much cheaper than a substring search each. */
        for (const unsigned char *p = s + 2; p < end && (p = memchr(p, 'J', (size_t)(end - p)));
             p++)
            if (p[-2] == 'e' && p[-1] == 'y') {
                bits |= SIGN_JWT;
                break;
            }
        for (const unsigned char *p = s + 2; p + 1 < end && (p = memchr(p, 'I', (size_t)(end - p)));
             p++)
            if (p + 1 < end && p[-2] == 'A' && (p[-1] == 'K' || p[-1] == 'S') && p[1] == 'A') {
                bits |= SIGN_AWS;
                break;
            }
        for (Py_ssize_t i = 0; i < n; i++) {
            const unsigned char f = FOLD[s[i]];
            if (f == 0) continue; /* a space or dash: words are read across them */
            state = SIGN_NEXT[state][f];
            found |= SIGN_FOUND[state];
        }
    } else {
        Py_UCS4 p1 = 0, p2 = 0, p3 = 0; /* the three characters before this one */
        for (Py_ssize_t i = 0; i < n; i++) {
            const Py_UCS4 c = PyUnicode_READ(kind, data, i);
            if (c == 'J' && p1 == 'y' && p2 == 'e') bits |= SIGN_JWT;
            if (c == 'A' && p1 == 'I' && (p2 == 'K' || p2 == 'S') && p3 == 'A') bits |= SIGN_AWS;
            p3 = p2;
            p2 = p1;
            p1 = c;
            const unsigned char f = c >= 128 ? 0x80 : FOLD[c];
            if (f == 0) continue;
            state = SIGN_NEXT[state][f];
            found |= SIGN_FOUND[state];
        }
    }
    bits &= enabled; /* AWS stays only if enabled; secret below may add it */
    bits |= found & (SIGN_EMAIL | SIGN_SECRETS | SIGN_BEARER);
    if (found & SIGN_WORD_SECRET) bits |= SIGN_SECRETS | SIGN_AWS;
    if (enabled & SIGN_CARD && card_start(kind, data, n)) bits |= SIGN_CARD;
    return bits & enabled;
}

static PyObject *redact_signs(PyObject *self, PyObject *args) {
    PyObject *text;
    long enabled;
    if (!PyArg_ParseTuple(args, "Ul", &text, &enabled)) return NULL;
    return PyLong_FromLong(signs_of(text, enabled));
}


/* redact_needs_look(kinds, min_length, clean, customs, values, clean_line) -> redact.py's
 * Redact.needs_look: whether some key names a secret (or is not known yet) or some value
 * is long enough, not known clean, and (with no custom patterns and a clean line) not
 * part of that line. Anything but str keys and values: True, Python decides. */
/* ``passed``: a dict whose pairs already passed this test (NULL if none): the same value
 * object under the same name is not looked at twice (an id in both fields and metadata). */
static int needs_look(PyObject *kinds, Py_ssize_t min_length, PyObject *clean, int customs,
                      PyObject *values, PyObject *clean_line, PyObject *passed) {
    Py_ssize_t pos = 0;
    PyObject *name, *value;
    while (PyDict_Next(values, &pos, &name, &value)) {
        if (passed != NULL && PyDict_GetItemWithError(passed, name) == value) continue;
        if (PyErr_Occurred()) return -1;
        PyObject *kind = PyDict_GetItemWithError(kinds, name);
        if (kind == NULL) return PyErr_Occurred() ? -1 : 1; /* a key not seen yet */
        if (!PyUnicode_Check(kind) || PyUnicode_GET_LENGTH(kind) != 0) return 1;
        if (!PyUnicode_Check(value)) return 1;
        if (PyUnicode_GET_LENGTH(value) < min_length) continue;
        int known = PySet_Contains(clean, value);
        if (known < 0) return -1;
        if (known) continue;
        if (customs || clean_line == Py_None) return 1;
        int inside = PyUnicode_Contains(clean_line, value);
        if (inside < 0) return -1;
        if (!inside) return 1;
    }
    return 0;
}

static PyObject *redact_needs_look(PyObject *self, PyObject *args) {
    PyObject *values, *kinds, *clean, *clean_line;
    Py_ssize_t min_length;
    int customs;
    if (!PyArg_ParseTuple(args, "O!nO!pO!O", &PyDict_Type, &kinds, &min_length, &PySet_Type,
                          &clean, &customs, &PyDict_Type, &values, &clean_line))
        return NULL;
    const int look = needs_look(kinds, min_length, clean, customs, values, clean_line, NULL);
    if (look < 0) return NULL;
    return PyBool_FromLong(look);
}

static PyObject *s_line, *s_fields, *s_metadata;

/* Whether the redact stage has anything to do for one entry: its line shows a sign, or
 * its fields or metadata need a look (redact.py's Redact.apply, the test before any work).
 * 1 yes, 0 no, -1 error. Anything unexpected is a yes: Python decides. */
static int redact_wanted(PyObject *entry, long enabled, PyObject *kinds, Py_ssize_t min_length,
                         PyObject *clean) {
    PyObject *line = PyObject_GetAttr(entry, s_line);
    if (line == NULL) return -1;
    int wanted = !PyUnicode_Check(line) || (enabled && signs_of(line, enabled));
    PyObject *fields = NULL;
    PyObject *const names[2] = {s_fields, s_metadata};
    for (int i = 0; i < 2 && !wanted; i++) {
        PyObject *values = PyObject_GetAttr(entry, names[i]);
        if (values == NULL) {
            wanted = -1;
        } else if (!PyDict_Check(values)) {
            wanted = 1;
        } else if (PyDict_GET_SIZE(values)) {
            wanted = needs_look(kinds, min_length, clean, 0, values, line, fields);
        }
        if (i == 0 && values != NULL && PyDict_Check(values)) {
            fields = values; /* passed when the loop goes on to the metadata */
            continue;
        }
        Py_XDECREF(values);
    }
    Py_XDECREF(fields);
    Py_DECREF(line);
    return wanted;
}

/* redact_pending(entries, enabled, kinds, min_length, clean) -> the indexes of the entries
 * the redact stage has work for (with no custom patterns: those run on every line). The
 * others it would pass untouched; the stage's Python loop runs on the rest only. */
static PyObject *redact_pending(PyObject *self, PyObject *args) {
    PyObject *entries, *kinds, *clean;
    long enabled;
    Py_ssize_t min_length;
    if (!PyArg_ParseTuple(args, "O!lO!nO!", &PyList_Type, &entries, &enabled, &PyDict_Type,
                          &kinds, &min_length, &PySet_Type, &clean))
        return NULL;
    PyObject *pending = PyList_New(0);
    if (pending == NULL) return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(entries); i++) {
        const int wanted =
            redact_wanted(PyList_GET_ITEM(entries, i), enabled, kinds, min_length, clean);
        if (wanted == 0) continue;
        PyObject *index = wanted > 0 ? PyLong_FromSsize_t(i) : NULL;
        if (index == NULL || PyList_Append(pending, index) < 0) {
            Py_XDECREF(index);
            Py_DECREF(pending);
            return NULL;
        }
        Py_DECREF(index);
    }
    return pending;
}

/* ---------------------------------------------------------------- group_entries */

/* Attribute names of stages/base.py's Entry and the strings the loop compares, interned
 * at import. */
static PyObject *s_ts_ns, *s_labels, *s_level, *s_unknown;

/* Add n to counts[key]. */
static int count_into(PyObject *counts, PyObject *key, Py_ssize_t n) {
    PyObject *had = PyDict_GetItemWithError(counts, key);
    if (had == NULL && PyErr_Occurred()) return -1;
    PyObject *total = PyLong_FromSsize_t((had ? PyLong_AsSsize_t(had) : 0) + n);
    if (total == NULL) return -1;
    const int rc = PyDict_SetItem(counts, key, total);
    Py_DECREF(total);
    return rc;
}

/* The metadata dict's (key, value) pairs as a tuple, and their length in characters. */
static PyObject *metadata_pairs(PyObject *md, Py_ssize_t *chars) {
    PyObject *pairs = PyTuple_New(PyDict_GET_SIZE(md));
    if (pairs == NULL) return NULL;
    Py_ssize_t pos = 0, i = 0, total = 0;
    PyObject *k, *v;
    while (PyDict_Next(md, &pos, &k, &v)) {
        const Py_ssize_t klen = PyObject_Length(k), vlen = PyObject_Length(v);
        PyObject *pair = PyTuple_Pack(2, k, v);
        if (klen < 0 || vlen < 0 || pair == NULL) {
            Py_XDECREF(pair);
            Py_DECREF(pairs);
            return NULL;
        }
        PyTuple_SET_ITEM(pairs, i++, pair);
        total += klen + vlen;
    }
    *chars = total;
    return pairs;
}

/* group_entries(entries, min_ts, cls) -> stages/grouping.py's python_group_entries. */
static PyObject *group_entries(PyObject *self, PyObject *args) {
    PyObject *entries, *cls;
    long long min_ts;
    if (!PyArg_ParseTuple(args, "O!LO", &PyList_Type, &entries, &min_ts, &cls)) return NULL;
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "cls must be a tuple type");
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)cls;
    PyObject *by_labels = PyDict_New(); /* id(labels) -> [labels, pushed, level label] */
    PyObject *order = PyList_New(0);    /* those lists, in first-seen order */
    PyObject *md_cache = PyDict_New();  /* id(metadata) -> (pairs, chars) */
    PyObject *levels = PyDict_New();
    PyObject *result = NULL;
    if (by_labels == NULL || order == NULL || md_cache == NULL || levels == NULL) goto done;
    Py_ssize_t size = 0, count = 0, too_old = 0;
    long long oldest = 0;
    PyObject *last_labels = NULL, *last_group = NULL; /* borrowed: runs of one stream */
    const Py_ssize_t n = PyList_GET_SIZE(entries);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *e = PyList_GET_ITEM(entries, i);
        PyObject *ts = PyObject_GetAttr(e, s_ts_ns);
        if (ts == NULL) goto done;
        const long long ts_ns = PyLong_AsLongLong(ts);
        if (ts_ns == -1 && PyErr_Occurred()) {
            Py_DECREF(ts);
            goto done;
        }
        if (ts_ns < min_ts) {
            Py_DECREF(ts);
            too_old++;
            continue;
        }
        PyObject *labels = PyObject_GetAttr(e, s_labels);
        if (labels == NULL || !PyDict_Check(labels)) {
            if (labels != NULL) PyErr_SetString(PyExc_TypeError, "labels must be a dict");
            Py_XDECREF(labels);
            Py_DECREF(ts);
            goto done;
        }
        PyObject *group = last_group;
        if (labels != last_labels) {
            PyObject *key = PyLong_FromVoidPtr(labels);
            if (key == NULL) {
                Py_DECREF(labels);
                Py_DECREF(ts);
                goto done;
            }
            group = PyDict_GetItemWithError(by_labels, key);
            if (group == NULL) {
                PyObject *level = NULL, *pushed = PyList_New(0);
                int truthy = 0;
                if (pushed != NULL) {
                    level = PyDict_GetItemWithError(labels, s_level);
                    truthy = level != NULL ? PyObject_IsTrue(level) : 0;
                }
                if (pushed != NULL && !PyErr_Occurred() && truthy >= 0)
                    group = PyList_New(3);
                if (group == NULL) {
                    Py_XDECREF(pushed);
                    Py_DECREF(key);
                    Py_DECREF(labels);
                    Py_DECREF(ts);
                    goto done;
                }
                if (!truthy) level = Py_None;
                Py_INCREF(labels);
                Py_INCREF(level);
                PyList_SET_ITEM(group, 0, labels);
                PyList_SET_ITEM(group, 1, pushed);
                PyList_SET_ITEM(group, 2, level);
                const int rc = PyDict_SetItem(by_labels, key, group) < 0 ||
                               PyList_Append(order, group) < 0;
                Py_DECREF(group); /* the dict and the list hold it */
                if (rc) {
                    Py_DECREF(key);
                    Py_DECREF(labels);
                    Py_DECREF(ts);
                    goto done;
                }
            }
            Py_DECREF(key);
            last_labels = labels; /* the entry (in the list) keeps it alive */
            last_group = group;
        }
        Py_DECREF(labels);
        PyObject *md = PyObject_GetAttr(e, s_metadata);
        PyObject *line = md != NULL ? PyObject_GetAttr(e, s_line) : NULL;
        PyObject *md_key = line != NULL ? PyLong_FromVoidPtr(md) : NULL;
        PyObject *known = md_key != NULL ? PyDict_GetItemWithError(md_cache, md_key) : NULL;
        const Py_ssize_t line_chars = line != NULL ? PyObject_Length(line) : -1;
        if (md_key == NULL || line_chars < 0 || (known == NULL && PyErr_Occurred()) ||
            !PyDict_Check(md)) {
            if (md != NULL && !PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "metadata must be a dict");
            Py_XDECREF(md_key);
            Py_XDECREF(line);
            Py_XDECREF(md);
            Py_DECREF(ts);
            goto done;
        }
        if (known == NULL) {
            Py_ssize_t chars = 0;
            PyObject *pairs = metadata_pairs(md, &chars);
            PyObject *chars_obj = pairs != NULL ? PyLong_FromSsize_t(chars) : NULL;
            known = chars_obj != NULL ? PyTuple_Pack(2, pairs, chars_obj) : NULL;
            Py_XDECREF(pairs);
            Py_XDECREF(chars_obj);
            if (known == NULL || PyDict_SetItem(md_cache, md_key, known) < 0) {
                Py_XDECREF(known);
                Py_DECREF(md_key);
                Py_DECREF(line);
                Py_DECREF(md);
                Py_DECREF(ts);
                goto done;
            }
            Py_DECREF(known); /* the cache holds it */
        }
        Py_DECREF(md_key);
        Py_DECREF(md); /* the entry keeps it alive, and so its id in the cache */
        PyObject *pairs = PyTuple_GET_ITEM(known, 0);
        PyObject *item = type->tp_alloc(type, 3);
        if (item == NULL) {
            Py_DECREF(line);
            Py_DECREF(ts);
            goto done;
        }
        Py_INCREF(pairs);
        PyTuple_SET_ITEM(item, 0, ts);
        PyTuple_SET_ITEM(item, 1, line);
        PyTuple_SET_ITEM(item, 2, pairs);
        const int appended = PyList_Append(PyList_GET_ITEM(group, 1), item);
        Py_DECREF(item);
        if (appended < 0) goto done;
        size += line_chars + PyLong_AsSsize_t(PyTuple_GET_ITEM(known, 1));
        if (!count || ts_ns < oldest) oldest = ts_ns;
        count++;
        if (PyList_GET_ITEM(group, 2) == Py_None) {
            PyObject *fields = PyObject_GetAttr(e, s_fields);
            if (fields == NULL) goto done;
            PyObject *level = PyDict_Check(fields) ? PyDict_GetItemWithError(fields, s_level) : NULL;
            const int truthy = level != NULL ? PyObject_IsTrue(level) : 0;
            const int rc = PyErr_Occurred() || truthy < 0 ||
                           count_into(levels, truthy ? level : s_unknown, 1) < 0;
            Py_DECREF(fields);
            if (rc) {
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "fields must be a dict");
                goto done;
            }
        }
    }
    const Py_ssize_t groups = PyList_GET_SIZE(order);
    for (Py_ssize_t g = 0; g < groups; g++) {
        PyObject *group = PyList_GET_ITEM(order, g);
        PyObject *level = PyList_GET_ITEM(group, 2);
        PyObject *pushed = PyList_GET_ITEM(group, 1);
        if (level != Py_None && count_into(levels, level, PyList_GET_SIZE(pushed)) < 0) goto done;
        PyObject *pair = PyTuple_Pack(2, PyList_GET_ITEM(group, 0), pushed);
        if (pair == NULL) goto done;
        PyList_SET_ITEM(order, g, pair); /* drops the group list, which the dict still holds */
        Py_DECREF(group);
    }
    result = Py_BuildValue("(OnnLnO)", order, size, count, oldest, too_old, levels);
done:
    Py_XDECREF(by_labels);
    Py_XDECREF(order);
    Py_XDECREF(md_cache);
    Py_XDECREF(levels);
    return result;
}

/* ---------------------------------------------------------------- group_lines */

static PyObject *s_empty, *s_account_id, *s_user_id, *s_request_id;

/* (name, value) appended to the metadata pairs in *md (a new reference replaces it). */
static int add_pair(PyObject **md, PyObject *name, PyObject *value, Py_ssize_t *size,
                    Py_ssize_t name_chars) {
    const Py_ssize_t value_chars = PyObject_Length(value);
    if (value_chars < 0) return -1;
    const Py_ssize_t n = PyTuple_GET_SIZE(*md);
    PyObject *grown = PyTuple_New(n + 1);
    PyObject *pair = grown != NULL ? PyTuple_Pack(2, name, value) : NULL;
    if (pair == NULL) {
        Py_XDECREF(grown);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *old = PyTuple_GET_ITEM(*md, i);
        Py_INCREF(old);
        PyTuple_SET_ITEM(grown, i, old);
    }
    PyTuple_SET_ITEM(grown, n, pair);
    Py_SETREF(*md, grown);
    *size += name_chars + value_chars;
    return 0;
}

/* group_lines(lines, parse, base_md, base_md_size, want_account, want_user, want_request,
 * by_stream, min_ts, cls) -> line_groups.py's python_group_lines. */
static PyObject *group_lines(PyObject *self, PyObject *args) {
    PyObject *lines, *parse, *base_md, *cls;
    Py_ssize_t base_md_size;
    int want_account, want_user, want_request, by_stream;
    long long min_ts;
    if (!PyArg_ParseTuple(args, "O!OO!nppppLO", &PyList_Type, &lines, &parse, &PyTuple_Type,
                          &base_md, &base_md_size, &want_account, &want_user, &want_request,
                          &by_stream, &min_ts, &cls))
        return NULL;
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "cls must be a tuple type");
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)cls;
    PyObject *by_key = PyDict_New();
    if (by_key == NULL) return NULL;
    Py_ssize_t size = 0, count = 0, truncated = 0, too_old = 0;
    long long oldest = 0;
    PyObject *last_stream = NULL, *last_level = NULL; /* held: identity of the last run */
    PyObject *last_group = NULL;                      /* borrowed from by_key */
    const Py_ssize_t n = PyList_GET_SIZE(lines);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *line = PyList_GET_ITEM(lines, i);
        if (!PyTuple_Check(line) || PyTuple_GET_SIZE(line) < 4) {
            PyErr_SetString(PyExc_TypeError, "a line must be a CompleteLine");
            goto fail;
        }
        PyObject *ts = PyTuple_GET_ITEM(line, 0), *stream = PyTuple_GET_ITEM(line, 1);
        PyObject *text = PyTuple_GET_ITEM(line, 2);
        const int cut = PyObject_IsTrue(PyTuple_GET_ITEM(line, 3));
        if (cut < 0) goto fail;
        truncated += cut;
        const long long ts_ns = PyLong_AsLongLong(ts);
        if (ts_ns == -1 && PyErr_Occurred()) goto fail;
        if (ts_ns < min_ts) {
            too_old++;
            continue;
        }
        PyObject *md = base_md, *level = s_unknown, *parsed = NULL;
        Py_ssize_t md_size = base_md_size;
        Py_INCREF(md);
        if (parse != Py_None) {
            parsed = PyObject_CallOneArg(parse, text);
            if (parsed == NULL) {
                Py_DECREF(md);
                goto fail;
            }
            if (!PyTuple_Check(parsed) || PyTuple_GET_SIZE(parsed) != 4) {
                PyErr_SetString(PyExc_TypeError, "parse must return ParsedFields");
                Py_DECREF(parsed);
                Py_DECREF(md);
                goto fail;
            }
            level = PyTuple_GET_ITEM(parsed, 0);
            PyObject *account = PyTuple_GET_ITEM(parsed, 1), *user = PyTuple_GET_ITEM(parsed, 2);
            PyObject *request = PyTuple_GET_ITEM(parsed, 3);
            if ((account != Py_None && want_account &&
                 add_pair(&md, s_account_id, account, &md_size, 9) < 0) ||
                (user != Py_None && want_user && add_pair(&md, s_user_id, user, &md_size, 6) < 0) ||
                (request != Py_None && want_request &&
                 add_pair(&md, s_request_id, request, &md_size, 9) < 0)) {
                Py_DECREF(parsed);
                Py_DECREF(md);
                goto fail;
            }
        }
        PyObject *group = last_group;
        PyObject *grouped_stream = by_stream ? stream : s_empty;
        if (grouped_stream != last_stream || level != last_level) {
            /* a new run of (stream, level): look its group up; runs share the objects */
            PyObject *key = PyTuple_Pack(2, grouped_stream, level);
            group = key != NULL ? PyDict_GetItemWithError(by_key, key) : NULL;
            if (key != NULL && group == NULL && !PyErr_Occurred()) {
                group = PyList_New(0);
                if (group != NULL) {
                    const int rc = PyDict_SetItem(by_key, key, group);
                    Py_DECREF(group); /* the dict holds it */
                    if (rc < 0) group = NULL;
                }
            }
            Py_XDECREF(key);
            if (group != NULL) {
                Py_INCREF(grouped_stream);
                Py_INCREF(level);
                Py_XSETREF(last_stream, grouped_stream);
                Py_XSETREF(last_level, level);
                last_group = group;
            }
        }
        Py_XDECREF(parsed); /* last_level holds the level */
        if (group == NULL) {
            Py_DECREF(md);
            goto fail;
        }
        const Py_ssize_t text_chars = PyObject_Length(text);
        PyObject *entry = text_chars >= 0 ? type->tp_alloc(type, 3) : NULL;
        if (entry == NULL) {
            Py_DECREF(md);
            goto fail;
        }
        Py_INCREF(ts);
        Py_INCREF(text);
        PyTuple_SET_ITEM(entry, 0, ts);
        PyTuple_SET_ITEM(entry, 1, text);
        PyTuple_SET_ITEM(entry, 2, md); /* takes the reference */
        const int appended = PyList_Append(group, entry);
        Py_DECREF(entry);
        if (appended < 0) goto fail;
        size += text_chars + md_size;
        if (!count || ts_ns < oldest) oldest = ts_ns;
        count++;
    }
    PyObject *result = Py_BuildValue("(OnnLnn)", by_key, size, count, oldest, truncated, too_old);
    Py_XDECREF(last_stream);
    Py_XDECREF(last_level);
    Py_DECREF(by_key);
    return result;
fail:
    Py_XDECREF(last_stream);
    Py_XDECREF(last_level);
    Py_DECREF(by_key);
    return NULL;
}

/* ---------------------------------------------------------------- line_entries */

static PyObject *s_stream, *s_resume, *s_parsed, *s_raw;

/* fields[name] = value, and metadata[name] too when wanted. */
static int put_id(PyObject *fields, PyObject *metadata, PyObject *name, PyObject *value,
                  int wanted) {
    if (value == Py_None) return 0;
    if (PyDict_SetItem(fields, name, value) < 0) return -1;
    return wanted ? PyDict_SetItem(metadata, name, value) : 0;
}

/* line_entries(lines, parse, parse_json, json_object, reuse_json, base_md, want_account,
 * want_user, want_request, by_stream, base_labels, labels_for, cls, seq, resume_offset,
 * resume_file, file_id) -> stages/line_entries.py's python_line_entries. */
static PyObject *line_entries(PyObject *self, PyObject *args) {
    PyObject *lines, *parse, *parse_json, *json_object, *base_md, *base_labels, *labels_for;
    PyObject *cls, *resume_file, *file_id;
    int reuse_json, want_account, want_user, want_request, by_stream;
    Py_ssize_t seq, resume_offset;
    if (!PyArg_ParseTuple(args, "O!OOOpO!ppppO!OOnnOO", &PyList_Type, &lines, &parse,
                          &parse_json, &json_object, &reuse_json, &PyDict_Type, &base_md,
                          &want_account, &want_user, &want_request, &by_stream, &PyDict_Type,
                          &base_labels, &labels_for, &cls, &seq, &resume_offset, &resume_file,
                          &file_id))
        return NULL;
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "cls must be a type");
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)cls;
    const Py_ssize_t n = PyList_GET_SIZE(lines);
    PyObject *entries = PyList_New(0);
    if (entries == NULL) return NULL;
    Py_ssize_t truncated = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *line = PyList_GET_ITEM(lines, i);
        if (!PyTuple_Check(line) || PyTuple_GET_SIZE(line) < 5 ||
            !PyUnicode_Check(PyTuple_GET_ITEM(line, 2))) {
            PyErr_SetString(PyExc_TypeError, "a line must be a CompleteLine");
            goto fail;
        }
        PyObject *ts = PyTuple_GET_ITEM(line, 0), *stream = PyTuple_GET_ITEM(line, 1);
        PyObject *text = PyTuple_GET_ITEM(line, 2), *end = PyTuple_GET_ITEM(line, 4);
        const int cut = PyObject_IsTrue(PyTuple_GET_ITEM(line, 3));
        if (cut < 0) goto fail;
        truncated += cut;
        PyObject *fields = PyDict_New(), *metadata = base_md, *obj = NULL, *parsed = NULL;
        PyObject *labels = NULL, *resume = NULL, *entry = NULL, *level = s_unknown;
        Py_INCREF(metadata);
        if (fields == NULL) goto line_failed;
        if (reuse_json && PyUnicode_GET_LENGTH(text) > 0) {
            const Py_UCS4 first = PyUnicode_READ_CHAR(text, 0);
            if (first == '{' || first == ' ' || first == '\t') {
                obj = PyObject_CallOneArg(json_object, text);
                if (obj == NULL) goto line_failed;
                if (obj == Py_None) Py_CLEAR(obj);
            }
        }
        if (parse != Py_None) {
            parsed = obj != NULL ? PyObject_CallOneArg(parse_json, obj)
                                 : PyObject_CallOneArg(parse, text);
            if (parsed == NULL) goto line_failed;
            if (!PyTuple_Check(parsed) || PyTuple_GET_SIZE(parsed) != 4) {
                PyErr_SetString(PyExc_TypeError, "parse must return ParsedFields");
                goto line_failed;
            }
            level = PyTuple_GET_ITEM(parsed, 0);
            PyObject *account = PyTuple_GET_ITEM(parsed, 1), *user = PyTuple_GET_ITEM(parsed, 2);
            PyObject *request = PyTuple_GET_ITEM(parsed, 3);
            if (PyDict_SetItem(fields, s_level, level) < 0) goto line_failed;
            if (account != Py_None || user != Py_None || request != Py_None) {
                Py_SETREF(metadata, PyDict_Copy(base_md));
                if (metadata == NULL ||
                    put_id(fields, metadata, s_account_id, account, want_account) < 0 ||
                    put_id(fields, metadata, s_user_id, user, want_user) < 0 ||
                    put_id(fields, metadata, s_request_id, request, want_request) < 0)
                    goto line_failed;
            }
        }
        PyObject *key_stream = by_stream ? stream : s_empty;
        PyObject *key = PyTuple_Pack(2, key_stream, level);
        if (key == NULL) goto line_failed;
        labels = PyDict_GetItemWithError(base_labels, key);
        Py_DECREF(key);
        if (labels != NULL) {
            Py_INCREF(labels);
        } else if (!PyErr_Occurred()) {
            labels = PyObject_CallFunctionObjArgs(labels_for, key_stream, level, NULL);
        }
        if (labels == NULL) goto line_failed;
        resume = Py_BuildValue("(nnO)", seq, resume_offset, resume_file);
        entry = resume != NULL ? type->tp_alloc(type, 0) : NULL;
        if (entry == NULL) goto line_failed;
        PyObject *const names[] = {s_ts_ns,  s_line,   s_stream, s_labels, s_fields,
                                   s_metadata, s_resume, s_parsed, s_raw};
        PyObject *const values[] = {ts,       text,   stream, labels, fields, metadata,
                                    resume, obj != NULL ? Py_True : Py_False,
                                    obj != NULL ? obj : Py_None};
        for (size_t a = 0; a < sizeof(names) / sizeof(names[0]); a++)
            if (PyObject_SetAttr(entry, names[a], values[a]) < 0) goto line_failed;
        if (PyList_Append(entries, entry) < 0) goto line_failed;
        Py_DECREF(entry);
        Py_DECREF(resume);
        Py_DECREF(labels);
        Py_XDECREF(parsed);
        Py_XDECREF(obj);
        Py_DECREF(metadata);
        Py_DECREF(fields);
        resume_file = file_id;
        const int moved = PyObject_IsTrue(end);
        if (moved < 0) goto fail;
        if (moved) {
            resume_offset = PyLong_AsSsize_t(end);
            if (resume_offset == -1 && PyErr_Occurred()) goto fail;
        }
        continue;
    line_failed:
        Py_XDECREF(entry);
        Py_XDECREF(resume);
        Py_XDECREF(labels);
        Py_XDECREF(parsed);
        Py_XDECREF(obj);
        Py_XDECREF(metadata);
        Py_XDECREF(fields);
        goto fail;
    }
    PyObject *result = Py_BuildValue("(On)", entries, truncated);
    Py_DECREF(entries);
    return result;
fail:
    Py_DECREF(entries);
    return NULL;
}

static PyMethodDef methods[] = {
    {"scan_records", scan_records, METH_VARARGS,
     "scan_records(data, start, base_offset, limit, cls, out) -> index of the first record "
     "not taken; appends cls(ts_ns, stream, line, False, end_offset, None) to out."},
    {"encode_push_request", encode_push_request, METH_O,
     "encode_push_request([(labels, entries)]) -> logproto.PushRequest bytes."},
    {"find_pairs", find_pairs, METH_O, "find_pairs(text) -> parse.py's _PAIR.findall(text)."},
    {"redact_signs", redact_signs, METH_VARARGS,
     "redact_signs(text, enabled) -> redact.py's _python_signs(text, enabled)."},
    {"redact_needs_look", redact_needs_look, METH_VARARGS,
     "redact_needs_look(kinds, min_length, clean, customs, values, clean_line) -> "
     "redact.py's Redact.needs_look."},
    {"redact_pending", redact_pending, METH_VARARGS,
     "redact_pending(entries, enabled, kinds, min_length, clean) -> indexes of the entries "
     "the redact stage has work for."},
    {"group_entries", group_entries, METH_VARARGS,
     "group_entries(entries, min_ts, cls) -> stages/grouping.py's python_group_entries."},
    {"group_lines", group_lines, METH_VARARGS,
     "group_lines(lines, parse, base_md, base_md_size, want_account, want_user, want_request, "
     "by_stream, min_ts, cls) -> line_groups.py's python_group_lines."},
    {"line_entries", line_entries, METH_VARARGS,
     "line_entries(lines, parse, parse_json, json_object, reuse_json, base_md, want_account, "
     "want_user, want_request, by_stream, base_labels, labels_for, cls, seq, resume_offset, "
     "resume_file, file_id) -> stages/line_entries.py's python_line_entries."},
    {"configure_json_fields", configure_json_fields, METH_VARARGS,
     "configure_json_fields(roles, nests, max_len, message_keys, scan_pairs, spellings, "
     "normalize, cls): parse.py's tables for json_fields."},
    {"json_fields", json_fields, METH_O,
     "json_fields(obj) -> parse.py's _python_parse_json(obj)."},
    {"walk_fields", walk_fields, METH_VARARGS,
     "walk_fields(obj, slots, id_role, depth, roles, nests, level_role, max_len): "
     "parse.py's _walk."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "agent.logs._speedups",
    "C versions of the log pipeline's per-line loops.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    init_fold();
    init_sign_automaton();
    s_ts_ns = PyUnicode_InternFromString("ts_ns");
    s_labels = PyUnicode_InternFromString("labels");
    s_metadata = PyUnicode_InternFromString("metadata");
    s_line = PyUnicode_InternFromString("line");
    s_fields = PyUnicode_InternFromString("fields");
    s_level = PyUnicode_InternFromString("level");
    s_unknown = PyUnicode_InternFromString("unknown");
    s_empty = PyUnicode_InternFromString("");
    s_account_id = PyUnicode_InternFromString("accountId");
    s_user_id = PyUnicode_InternFromString("userId");
    s_request_id = PyUnicode_InternFromString("requestId");
    s_debug = PyUnicode_InternFromString("debug");
    s_info = PyUnicode_InternFromString("info");
    s_warn = PyUnicode_InternFromString("warn");
    s_error = PyUnicode_InternFromString("error");
    s_fatal = PyUnicode_InternFromString("fatal");
    if (!s_debug || !s_info || !s_warn || !s_error || !s_fatal) return NULL;
    s_stream = PyUnicode_InternFromString("stream");
    s_resume = PyUnicode_InternFromString("resume");
    s_parsed = PyUnicode_InternFromString("parsed");
    s_raw = PyUnicode_InternFromString("raw");
    if (!s_ts_ns || !s_labels || !s_metadata || !s_line || !s_fields || !s_level || !s_unknown ||
        !s_empty || !s_account_id || !s_user_id || !s_request_id || !s_stream || !s_resume ||
        !s_parsed || !s_raw)
        return NULL;
    return PyModule_Create(&module);
}
