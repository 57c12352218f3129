/*
 * Text exposition 0.0.4 sample lines in C: what agent/metrics/server.py's go_float and
 * agent/metrics/host/families.py's sample_lines write, character for character.
 *
 * - go_float(value): prometheus_client's floatToGoString (Go's 'g' formatting of floats,
 *   "+Inf", "-Inf", "NaN"; exact ints below 2**53 without a float repr).
 * - render_rows(name, order, openings, rows): one family's sample lines as one string:
 *   for each (label values, value) row, ``name{`` + for each k: openings[k] + the escaped
 *   label value at order[k] + ``"`` + ``} `` + go_float(value) + newline (no braces when
 *   there are no labels).
 *
 * A host scrape writes ~500 such lines; in Python they cost as much CPU as reading half
 * of /proc (issue 11). Optional: agent/native.py loads it, the Python code is the fallback
 * and the reference the tests compare with.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdio.h>
#include <string.h>

#define EXACT_INT (1LL << 53)

/* Writes floatToGoString(value) to the writer. */
static int write_go_float(_PyUnicodeWriter *w, PyObject *value) {
    char buf[48];
    if (PyLong_CheckExact(value)) {
        int overflow = 0;
        long long n = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (n == -1 && PyErr_Occurred()) return -1;
        if (!overflow && n > -EXACT_INT && n < EXACT_INT) {
            if (n < 1000000) {
                int len = snprintf(buf, sizeof buf, "%lld.0", n);
                return _PyUnicodeWriter_WriteASCIIString(w, buf, len);
            }
            /* Go's exponent form: 1234567 -> 1.234567e+06, 1000000 -> 1e+06. */
            char digits[24];
            int nd = snprintf(digits, sizeof digits, "%lld", n);
            int end = nd; /* digits[1:end] are the mantissa's decimals */
            while (end > 1 && digits[end - 1] == '0') end--;
            int len = 0;
            buf[len++] = digits[0];
            if (end > 1) {
                buf[len++] = '.';
                memcpy(buf + len, digits + 1, (size_t)(end - 1));
                len += end - 1;
            }
            len += snprintf(buf + len, sizeof buf - (size_t)len, "e+%02d", nd - 1);
            return _PyUnicodeWriter_WriteASCIIString(w, buf, len);
        }
    }
    PyObject *as_float = PyNumber_Float(value);
    if (as_float == NULL) return -1;
    double d = PyFloat_AS_DOUBLE(as_float);
    Py_DECREF(as_float);
    if (Py_IS_NAN(d)) return _PyUnicodeWriter_WriteASCIIString(w, "NaN", 3);
    if (Py_IS_INFINITY(d))
        return _PyUnicodeWriter_WriteASCIIString(w, d > 0 ? "+Inf" : "-Inf", 4);
    char *text = PyOS_double_to_string(d, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (text == NULL) return -1;
    int rc;
    const char *dot = strchr(text, '.');
    Py_ssize_t at = dot ? dot - text : -1;
    if (d > 0 && at > 6) {
        /* Go switches to exponent notation sooner than repr: 12345678.5 -> 1.23456785e+07 */
        Py_ssize_t tl = (Py_ssize_t)strlen(text);
        char mant[64];
        Py_ssize_t ml = 0;
        mant[ml++] = text[0];
        mant[ml++] = '.';
        for (Py_ssize_t i = 1; i < tl && ml < (Py_ssize_t)sizeof mant - 1; i++)
            if (i != at) mant[ml++] = text[i];
        while (ml > 0 && (mant[ml - 1] == '0' || mant[ml - 1] == '.')) ml--;
        ml += snprintf(mant + ml, sizeof mant - (size_t)ml, "e+%02d", (int)(at - 1));
        rc = _PyUnicodeWriter_WriteASCIIString(w, mant, ml);
    } else {
        rc = _PyUnicodeWriter_WriteASCIIString(w, text, (Py_ssize_t)strlen(text));
    }
    PyMem_Free(text);
    return rc;
}

/* Writes a label value escaped as server.escape_label_value does. */
static int write_escaped(_PyUnicodeWriter *w, PyObject *value) {
    if (!PyUnicode_Check(value)) {
        PyErr_Format(PyExc_TypeError, "label value must be str, not %.100s",
                     Py_TYPE(value)->tp_name);
        return -1;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(value);
    int kind = PyUnicode_KIND(value);
    const void *data = PyUnicode_DATA(value);
    Py_ssize_t i = 0;
    for (; i < n; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (ch == '\\' || ch == '"' || ch == '\n') break;
    }
    if (i == n) return _PyUnicodeWriter_WriteStr(w, value);
    if (i && _PyUnicodeWriter_WriteSubstring(w, value, 0, i) < 0) return -1;
    for (; i < n; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        int rc;
        if (ch == '\\')
            rc = _PyUnicodeWriter_WriteASCIIString(w, "\\\\", 2);
        else if (ch == '"')
            rc = _PyUnicodeWriter_WriteASCIIString(w, "\\\"", 2);
        else if (ch == '\n')
            rc = _PyUnicodeWriter_WriteASCIIString(w, "\\n", 2);
        else
            rc = _PyUnicodeWriter_WriteChar(w, ch);
        if (rc < 0) return -1;
    }
    return 0;
}

static PyObject *go_float(PyObject *self, PyObject *value) {
    _PyUnicodeWriter w;
    _PyUnicodeWriter_Init(&w);
    if (write_go_float(&w, value) < 0) {
        _PyUnicodeWriter_Dealloc(&w);
        return NULL;
    }
    return _PyUnicodeWriter_Finish(&w);
}

static int write_row(_PyUnicodeWriter *w, PyObject *name, PyObject *order, PyObject *openings,
                     PyObject *row) {
    if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != 2) {
        PyErr_SetString(PyExc_TypeError, "a row is a (label values, value) tuple");
        return -1;
    }
    PyObject *values = PyTuple_GET_ITEM(row, 0);
    if (_PyUnicodeWriter_WriteStr(w, name) < 0) return -1;
    Py_ssize_t labels = PyTuple_GET_SIZE(order);
    if (labels) {
        if (_PyUnicodeWriter_WriteChar(w, '{') < 0) return -1;
        for (Py_ssize_t k = 0; k < labels; k++) {
            Py_ssize_t at = PyLong_AsSsize_t(PyTuple_GET_ITEM(order, k));
            if (at == -1 && PyErr_Occurred()) return -1;
            PyObject *label = PySequence_GetItem(values, at);
            if (label == NULL) return -1;
            int rc = _PyUnicodeWriter_WriteStr(w, PyTuple_GET_ITEM(openings, k));
            if (rc == 0) rc = write_escaped(w, label);
            Py_DECREF(label);
            if (rc < 0 || _PyUnicodeWriter_WriteChar(w, '"') < 0) return -1;
        }
        if (_PyUnicodeWriter_WriteChar(w, '}') < 0) return -1;
    }
    if (_PyUnicodeWriter_WriteChar(w, ' ') < 0) return -1;
    if (write_go_float(w, PyTuple_GET_ITEM(row, 1)) < 0) return -1;
    return _PyUnicodeWriter_WriteChar(w, '\n');
}

static PyObject *render_rows(PyObject *self, PyObject *args) {
    PyObject *name, *order, *openings, *rows;
    if (!PyArg_ParseTuple(args, "UO!O!O!:render_rows", &name, &PyTuple_Type, &order,
                          &PyTuple_Type, &openings, &PyList_Type, &rows))
        return NULL;
    if (PyTuple_GET_SIZE(openings) != PyTuple_GET_SIZE(order)) {
        PyErr_SetString(PyExc_ValueError, "order and openings differ in length");
        return NULL;
    }
    _PyUnicodeWriter w;
    _PyUnicodeWriter_Init(&w);
    w.overallocate = 1;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(rows); i++) {
        if (write_row(&w, name, order, openings, PyList_GET_ITEM(rows, i)) < 0) {
            _PyUnicodeWriter_Dealloc(&w);
            return NULL;
        }
    }
    return _PyUnicodeWriter_Finish(&w);
}

static PyMethodDef methods[] = {
    {"go_float", go_float, METH_O, "go_float(value) -> server.go_float(value)."},
    {"render_rows", render_rows, METH_VARARGS,
     "render_rows(name, order, openings, rows) -> the family's sample lines as one string."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "agent.metrics._exposition",
    "C versions of the text exposition's per-sample formatting.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__exposition(void) { return PyModule_Create(&module); }
