/* Indent compact JSON text as json.dumps(value, indent=2) writes it, in C.
 *
 * The standard library's C encoder runs only without `indent` (Lib/json/encoder.py,
 * JSONEncoder.iterencode); an indented report of many findings then goes through the
 * pure-Python encoder, a few microseconds per value. render/jsontext.py instead encodes each
 * finding with json.dumps(value, separators=(",", ":")) (the C encoder, ensure_ascii) and
 * lays the text out here. Outside strings compact JSON has no spaces, so the layout follows
 * from the punctuation alone: after "{" or "[" (unless the container is empty) and after ","
 * a newline and the indentation, after ":" a space. Strings are copied as they are (with
 * ensure_ascii they are ASCII, their quotes inside escaped).
 *
 * indent(text, depth) -> str: `text` compact ASCII JSON, `depth` the levels the value sits
 * at in a larger document (its inner lines get 2 * depth more spaces). ValueError if `text`
 * is not ASCII or its brackets do not balance. tests/render/test_jsontext.py checks the
 * result against json.dumps(value, indent=2). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

/* One walk over `in`: with `out` NULL, the length of the result; else the result written
 * to `out`. -1 if the brackets do not balance. */
static Py_ssize_t lay_out(const char *in, Py_ssize_t n, long depth, char *out) {
    Py_ssize_t w = 0;
    long level = depth;
    int in_string = 0;
/* `c` is evaluated only when writing: it must have no side effects. */
#define PUT(c)                       \
    do {                             \
        if (out) out[w] = (char)(c); \
        w++;                         \
    } while (0)
#define NEWLINE()                                          \
    do {                                                   \
        PUT('\n');                                         \
        if (out) memset(out + w, ' ', (size_t)(2 * level)); \
        w += 2 * level;                                    \
    } while (0)
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = in[i];
        if (in_string) {
            PUT(c);
            if (c == '\\' && i + 1 < n) {
                i++;
                PUT(in[i]);
            } else if (c == '"') in_string = 0;
            continue;
        }
        switch (c) {
        case '"':
            in_string = 1;
            PUT(c);
            break;
        case '{':
        case '[':
            PUT(c);
            if (i + 1 < n && in[i + 1] == (c == '{' ? '}' : ']')) {
                i++; /* json.dumps writes an empty container as {} or [] */
                PUT(in[i]);
            } else {
                level++;
                NEWLINE();
            }
            break;
        case '}':
        case ']':
            if (--level < depth) return -1;
            NEWLINE();
            PUT(c);
            break;
        case ',':
            PUT(c);
            NEWLINE();
            break;
        case ':':
            PUT(c);
            PUT(' ');
            break;
        default:
            PUT(c);
        }
    }
#undef PUT
#undef NEWLINE
    return level == depth && !in_string ? w : -1;
}

static PyObject *indent(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *text;
    long depth;
    if (!PyArg_ParseTuple(args, "Ul", &text, &depth)) return NULL;
    if (depth < 0 || depth > 1000) {
        PyErr_SetString(PyExc_ValueError, "depth out of range");
        return NULL;
    }
    if (!PyUnicode_IS_ASCII(text)) {
        PyErr_SetString(PyExc_ValueError, "not ASCII JSON text");
        return NULL;
    }
    const char *in = (const char *)PyUnicode_1BYTE_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    Py_ssize_t size = lay_out(in, n, depth, NULL);
    if (size < 0) {
        PyErr_SetString(PyExc_ValueError, "unbalanced JSON text");
        return NULL;
    }
    PyObject *out = PyUnicode_New(size, 127);
    if (!out) return NULL;
    lay_out(in, n, depth, (char *)PyUnicode_1BYTE_DATA(out));
    return out;
}

static PyMethodDef methods[] = {
    {"indent", indent, METH_VARARGS, "Compact ASCII JSON laid out as json.dumps(indent=2)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_jsonindent", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__jsonindent(void) { return PyModule_Create(&module); }
